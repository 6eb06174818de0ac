import { MemoryStore } from '@cairn/store';
import { storeSuite } from '@cairn/store/suite';
import { MemoryLevel } from 'memory-level';
import { describe } from 'vitest';

storeSuite({
  factory: ({ reuse, ...options } = {}) =>
    new MemoryStore({
      ...options,
      ...(reuse === undefined ? {} : { db: (reuse as MemoryStore).memory }),
    }),
  supports: new MemoryStore().supports,
});

/** A memory database that, like some level backends, cannot read a key synchronously. */
function withoutGetSync(): MemoryLevel<string, Uint8Array> {
  const db = new MemoryLevel<string, Uint8Array>({ keyEncoding: 'utf8', valueEncoding: 'view' });
  Object.defineProperty(db, 'supports', { value: { ...db.supports, getSync: false } });
  db.getSync = () => {
    throw new Error('getSync used on a backend that does not have it');
  };
  return db;
}

describe('on a backend without a synchronous get', () => {
  storeSuite({
    factory: ({ reuse, ...options } = {}) =>
      new MemoryStore({
        ...options,
        db: reuse === undefined ? withoutGetSync() : (reuse as MemoryStore).memory,
      }),
    supports: new MemoryStore().supports,
  });
});
