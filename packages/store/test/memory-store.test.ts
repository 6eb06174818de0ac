import { MemoryStore } from '@cairn/store';
import { storeSuite } from '@cairn/store/suite';

storeSuite({
  factory: ({ reuse, ...options } = {}) =>
    new MemoryStore({
      ...options,
      ...(reuse === undefined ? {} : { db: (reuse as MemoryStore).memory }),
    }),
  supports: new MemoryStore().supports,
});
