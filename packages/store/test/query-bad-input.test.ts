import { describe, expect, it } from 'vitest';
import { MemoryStore, diagnose, runDetail } from '@cairn/store';

/** The store-only queries fed garbage: a stable code, never a crash. */
describe('runDetail and diagnose with bad arguments', () => {
  const cases: [string, (store: MemoryStore) => Promise<unknown>, string][] = [
    ['runDetail with a number id', (s) => runDetail(s, 42 as never), 'INVALID_ARGUMENT'],
    ['runDetail with a control character', (s) => runDetail(s, 'a\u0000b'), 'INVALID_ARGUMENT'],
    ['runDetail with no store', () => runDetail({} as never, 'r'), 'INVALID_ARGUMENT'],
    [
      'runDetail with a bad logLimit',
      (s) => runDetail(s, 'r', { logLimit: -3 }),
      'INVALID_ARGUMENT',
    ],
    ['diagnose with a number id', (s) => diagnose(s, 42 as never), 'INVALID_ARGUMENT'],
    ['diagnose with no store', () => diagnose(null as never, 'r'), 'INVALID_ARGUMENT'],
    [
      'diagnose with versions that are not strings',
      (s) => diagnose(s, 'r', { registeredVersions: [1] as never }),
      'INVALID_ARGUMENT',
    ],
    ['diagnose with a bad now', (s) => diagnose(s, 'r', { now: Number.NaN }), 'INVALID_ARGUMENT'],
  ];
  for (const [name, call, code] of cases) {
    it(`${name} is refused with ${code}`, async () => {
      const store = new MemoryStore();
      await store.open();
      await expect(call(store)).rejects.toMatchObject({ code });
      await store.close();
    });
  }
});
