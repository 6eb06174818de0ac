import { beforeAll, describe, expect, it } from 'vitest';
import type { Store } from '../store.js';
import type { SuiteContext } from './context.js';
import { makeLog, makeRun, makeTask } from './fixtures.js';
import { exportLines } from './export-import.js';
import { expectRefused, seedStore, type BadCall, type Seed } from './seeded.js';

class Money {
  constructor(readonly amount: number) {}
}
class List extends Array<number> {}
class Day extends Date {}
class Bytes extends Uint8Array {}

function cycle(): unknown {
  const a: { self?: unknown; list: unknown[] } = { list: [] };
  a.list.push({ back: a });
  return a;
}

/** Values that cannot be stored and read back as the same data. */
const UNSTORABLE: [string, () => unknown][] = [
  ['a function', () => ({ callback: () => 1 })],
  ['a symbol', () => ({ tag: Symbol('x') })],
  ['a bigint', () => ({ big: 10n })],
  ['a class instance', () => ({ price: new Money(5) })],
  ['a Map', () => ({ map: new Map([[1, 2]]) })],
  ['a Set', () => [new Set([1])]],
  ['an Error', () => ({ error: new Error('boom') })],
  ['a promise', () => ({ later: Promise.resolve(1) })],
  ['a cycle', cycle],
  ['a bare function', () => () => 1],
  ['a RegExp match (an array with index, input, groups)', () => ({ m: /b/.exec('abc') })],
  ['a subclass of Array', () => ({ list: new List() })],
  ['a subclass of Date', () => ({ at: new Day(0) })],
  ['a subclass of Uint8Array', () => [new Bytes(2)]],
];

function unstorable(label: string, value: () => unknown): BadCall[] {
  const e = 'NOT_SERIALIZABLE' as const;
  return [
    {
      name: `createRun: input holds ${label}`,
      expected: e,
      call: (s) => s.createRun(makeRun({ input: value() })),
    },
    {
      name: `createRun: output holds ${label}`,
      expected: e,
      call: (s) => s.createRun(makeRun({ status: 'completed', output: value() })),
    },
    {
      name: `createRun: error.details holds ${label}`,
      expected: e,
      call: (s) =>
        s.createRun(
          makeRun({ status: 'failed', error: { message: 'x', details: { v: value() } } }),
        ),
    },
    {
      name: `checkpoint: a run's input holds ${label}`,
      expected: e,
      call: (s, seed) => s.checkpoint({ runs: [{ ...seed.run, input: value() }] }),
    },
    {
      name: `checkpoint: a task's output holds ${label}, next to a valid run`,
      expected: e,
      call: (s, seed) =>
        s.checkpoint({
          runs: [{ ...seed.done, recoveries: 3 }],
          tasks: [makeTask(seed.run), { ...seed.task, output: value() }],
        }),
    },
    {
      name: `checkpoint: a task's meta holds ${label}`,
      expected: e,
      call: (s, seed) => s.checkpoint({ tasks: [{ ...seed.task, meta: { v: value() } }] }),
    },
    {
      name: `checkpoint: a wait's schema holds ${label}`,
      expected: e,
      call: (s, seed) => s.checkpoint({ tasks: [{ ...seed.wait, schema: value() }] }),
    },
    {
      name: `putInbox: data holds ${label}`,
      expected: e,
      call: (s, seed) => s.putInbox(seed.run.id, 'later', value()),
    },
    {
      name: `appendLogs: data holds ${label}`,
      expected: e,
      call: (s, seed) =>
        s.appendLogs([makeLog(seed.run.id), makeLog(seed.run.id, { data: value() })]),
    },
    {
      name: `putMeta: value holds ${label}`,
      expected: e,
      call: (s) => s.putMeta('owner', value()),
    },
  ];
}

/** Far over the 4 KiB limit the store is made with, once encoded. */
const BIG = 'x'.repeat(8 * 1024);
const LIMIT = 4 * 1024;

const TOO_LARGE: BadCall[] = [
  {
    name: 'createRun with a large input',
    expected: 'VALUE_TOO_LARGE',
    call: (s) => s.createRun(makeRun({ input: BIG })),
  },
  {
    name: 'checkpoint of a valid run and a task with a large output',
    expected: 'VALUE_TOO_LARGE',
    call: (s, seed) =>
      s.checkpoint({
        runs: [{ ...seed.done, recoveries: 1 }],
        tasks: [makeTask(seed.run), { ...seed.task, output: { text: BIG } }],
        inboxTaken: [{ runId: seed.run.id, taskId: 'later' }],
      }),
  },
  {
    name: 'checkpoint of a run with large tags and input',
    expected: 'VALUE_TOO_LARGE',
    call: (s, seed) =>
      s.checkpoint({
        runs: [
          { ...seed.run, tags: Array.from({ length: 64 }, () => 'y'.repeat(200)), input: BIG },
        ],
      }),
  },
  {
    name: 'putInbox of large data',
    expected: 'VALUE_TOO_LARGE',
    call: (s, seed) => s.putInbox(seed.run.id, 'later', BIG),
  },
  {
    name: 'appendLogs of a small line and a large one writes neither',
    expected: 'VALUE_TOO_LARGE',
    call: (s, seed) => s.appendLogs([makeLog(seed.run.id), makeLog(seed.run.id, { message: BIG })]),
  },
  {
    name: 'putMeta of a large value',
    expected: 'VALUE_TOO_LARGE',
    call: (s) => s.putMeta('owner', [BIG]),
  },
];

export function badValueTests(ctx: SuiteContext): void {
  describe('values that cannot be stored are NOT_SERIALIZABLE', () => {
    let store: Store;
    let seed: Seed;
    beforeAll(async () => {
      store = await ctx.open();
      seed = await seedStore(store);
    });
    for (const bad of UNSTORABLE.flatMap(([label, value]) => unstorable(label, value))) {
      it(`${bad.name}; nothing changes`, async () => {
        await expectRefused(store, seed, bad);
      });
    }
  });

  describe(`records over maxRecordBytes (${LIMIT}) are VALUE_TOO_LARGE`, () => {
    let store: Store;
    let seed: Seed;
    beforeAll(async () => {
      store = await ctx.open({ maxRecordBytes: LIMIT });
      seed = await seedStore(store);
    });
    for (const bad of TOO_LARGE) {
      it(`${bad.name}; nothing changes`, async () => {
        await expectRefused(store, seed, bad);
      });
    }
    it('an import with a record over the limit is INVALID_IMPORT naming its line; nothing changes', async () => {
      // Exported from a store without the limit: a small run, then one too large here.
      const source = await ctx.open();
      await source.createRun(makeRun({ createdAt: 2_000 }));
      await source.createRun(makeRun({ createdAt: 1_000, input: 'x'.repeat(LIMIT * 2) }));
      const lines = await exportLines(source);
      await expectRefused(store, seed, {
        name: 'importRuns',
        expected: 'INVALID_IMPORT',
        call: (s) => s.importRuns(lines),
      });
      const error = await store.importRuns(lines).catch((e: unknown) => e);
      expect(error).toMatchObject({ details: { lines: [{ line: 3 }] } });
    });

    it('a record just under the limit is accepted', async () => {
      const run = makeRun({ input: 'x'.repeat(LIMIT - 1024) });
      await store.createRun(run);
      expect(await store.getRun(run.id)).toEqual(run);
      expect(await store.deleteRun(run.id)).toBe(true);
    });
  });
}
