import { beforeAll, expect, it } from 'vitest';
import { MemoryStore } from '../level-store.js';
import type { Store } from '../store.js';
import type { SuiteContext } from './context.js';
import { makeLog, makeRun, makeTask } from './fixtures.js';
import { expectRefused, seedStore, type BadCall, type Seed } from './seeded.js';
import { snapshot } from './snapshot.js';

const fn = () => 1;

/** Arguments of the wrong type: a `TypeError` with code `INVALID_ARGUMENT`. */
const WRONG_TYPES: BadCall[] = [
  ...[undefined, null, 'run', 42, true, fn].map((arg): BadCall => ({
    name: `createRun(${String(arg)})`,
    expected: 'TypeError',
    call: (s) => s.createRun(arg),
  })),
  ...[undefined, null, 42, {}, ['id']].map((arg): BadCall => ({
    name: `getRun(${JSON.stringify(arg)})`,
    expected: 'TypeError',
    call: (s) => s.getRun(arg),
  })),
  ...[undefined, null, 'checkpoint', 7].map((arg): BadCall => ({
    name: `checkpoint(${String(arg)})`,
    expected: 'TypeError',
    call: (s) => s.checkpoint(arg),
  })),
  {
    name: 'checkpoint({ runs: "x" })',
    expected: 'TypeError',
    call: (s) => s.checkpoint({ runs: 'x' }),
  },
  {
    name: 'checkpoint({ tasks: {} })',
    expected: 'TypeError',
    call: (s) => s.checkpoint({ tasks: {} }),
  },
  {
    name: 'checkpoint({ inboxTaken: 5 })',
    expected: 'TypeError',
    call: (s) => s.checkpoint({ inboxTaken: 5 }),
  },
  {
    name: 'checkpoint({ runs: [null] })',
    expected: 'TypeError',
    call: (s) => s.checkpoint({ runs: [null] }),
  },
  {
    name: 'checkpoint({ tasks: ["t"] })',
    expected: 'TypeError',
    call: (s) => s.checkpoint({ tasks: ['t'] }),
  },
  {
    name: 'checkpoint({ inboxTaken: [null] })',
    expected: 'TypeError',
    call: (s) => s.checkpoint({ inboxTaken: [null] }),
  },
  {
    name: 'checkpoint({ inboxTaken: [{ runId: 5 }] })',
    expected: 'TypeError',
    call: (s, seed) =>
      s.checkpoint({ inboxTaken: [{ runId: 5, taskId: 'later' }], runs: [seed.run] }),
  },
  {
    name: 'checkpoint(valid, null)',
    expected: 'TypeError',
    call: (s, seed) => s.checkpoint({ runs: [seed.done] }, null),
  },
  {
    name: 'checkpoint(valid, "durable")',
    expected: 'TypeError',
    call: (s, seed) => s.checkpoint({ runs: [seed.done] }, 'durable'),
  },
  {
    name: 'checkpoint(valid, { durable: "yes" })',
    expected: 'TypeError',
    call: (s, seed) => s.checkpoint({ runs: [seed.done] }, { durable: 'yes' }),
  },
  { name: 'getTask(1, "a")', expected: 'TypeError', call: (s) => s.getTask(1, 'a') },
  {
    name: 'getTask(run, null)',
    expected: 'TypeError',
    call: (s, seed) => s.getTask(seed.run.id, null),
  },
  { name: 'getTask()', expected: 'TypeError', call: (s) => s.getTask() },
  { name: 'listTasks()', expected: 'TypeError', call: (s) => s.listTasks() },
  { name: 'listTasks(5)', expected: 'TypeError', call: (s) => s.listTasks(5) },
  { name: 'listRuns("all")', expected: 'TypeError', call: (s) => s.listRuns('all') },
  { name: 'listRuns(null)', expected: 'TypeError', call: (s) => s.listRuns(null) },
  {
    name: 'listRuns({ status: 5 })',
    expected: 'TypeError',
    call: (s) => s.listRuns({ status: 5 }),
  },
  {
    name: 'listRuns({ workflow: 5 })',
    expected: 'TypeError',
    call: (s) => s.listRuns({ workflow: 5 }),
  },
  {
    name: 'listRuns({ namespace: {} })',
    expected: 'TypeError',
    call: (s) => s.listRuns({ namespace: {} }),
  },
  {
    name: 'listRuns({ limit: "10" })',
    expected: 'TypeError',
    call: (s) => s.listRuns({ limit: '10' }),
  },
  {
    name: 'listRuns({ cursor: 5 })',
    expected: 'TypeError',
    call: (s) => s.listRuns({ cursor: 5 }),
  },
  { name: 'listWaiting("x")', expected: 'TypeError', call: (s) => s.listWaiting('x') },
  { name: 'listWaiting(null)', expected: 'TypeError', call: (s) => s.listWaiting(null) },
  {
    name: 'listWaiting({ runId: 5 })',
    expected: 'TypeError',
    call: (s) => s.listWaiting({ runId: 5 }),
  },
  {
    name: 'listWaiting({ limit: "1" })',
    expected: 'TypeError',
    call: (s) => s.listWaiting({ limit: '1' }),
  },
  {
    name: 'listWaiting({ cursor: {} })',
    expected: 'TypeError',
    call: (s) => s.listWaiting({ cursor: {} }),
  },
  ...[undefined, null, 'now', Number.NaN, new Date(0)].map((arg): BadCall => ({
    name: `dueTimers(${String(arg)})`,
    expected: 'TypeError',
    call: (s) => s.dueTimers(arg),
  })),
  { name: 'dueTimers(0, "5")', expected: 'TypeError', call: (s) => s.dueTimers(0, '5') },
  { name: 'putInbox(5, "t", 1)', expected: 'TypeError', call: (s) => s.putInbox(5, 't', 1) },
  {
    name: 'putInbox(run, null, 1)',
    expected: 'TypeError',
    call: (s, seed) => s.putInbox(seed.run.id, null, 1),
  },
  { name: 'getInbox(5, "t")', expected: 'TypeError', call: (s) => s.getInbox(5, 't') },
  { name: 'getInbox(run)', expected: 'TypeError', call: (s, seed) => s.getInbox(seed.run.id) },
  {
    name: 'takeInbox(null, "later")',
    expected: 'TypeError',
    call: (s) => s.takeInbox(null, 'later'),
  },
  {
    name: 'takeInbox(run, 5)',
    expected: 'TypeError',
    call: (s, seed) => s.takeInbox(seed.run.id, 5),
  },
  { name: 'listInbox(null)', expected: 'TypeError', call: (s) => s.listInbox(null) },
  ...[undefined, null, 'line', { runId: 'r' }].map((arg): BadCall => ({
    name: `appendLogs(${JSON.stringify(arg)})`,
    expected: 'TypeError',
    call: (s) => s.appendLogs(arg),
  })),
  { name: 'readLogs(5)', expected: 'TypeError', call: (s) => s.readLogs(5) },
  {
    name: 'readLogs(run, null)',
    expected: 'TypeError',
    call: (s, seed) => s.readLogs(seed.run.id, null),
  },
  {
    name: 'readLogs(run, "all")',
    expected: 'TypeError',
    call: (s, seed) => s.readLogs(seed.run.id, 'all'),
  },
  {
    name: 'readLogs(run, { afterSeq: "1" })',
    expected: 'TypeError',
    call: (s, seed) => s.readLogs(seed.run.id, { afterSeq: '1' }),
  },
  {
    name: 'readLogs(run, { limit: "1" })',
    expected: 'TypeError',
    call: (s, seed) => s.readLogs(seed.run.id, { limit: '1' }),
  },
  { name: 'deleteRun(5)', expected: 'TypeError', call: (s) => s.deleteRun(5) },
  { name: 'deleteRun()', expected: 'TypeError', call: (s) => s.deleteRun() },
  { name: 'getMeta(5)', expected: 'TypeError', call: (s) => s.getMeta(5) },
  { name: 'putMeta(null, 1)', expected: 'TypeError', call: (s) => s.putMeta(null, 1) },
];

const BAD_IDS: [string, string][] = [
  ['empty', ''],
  ['NUL', 'a\u0000b'],
  ['newline', 'a\nb'],
  ['\\x01', '\u0001'],
  ['DEL', 'a\u007f'],
  ['201 characters', 'x'.repeat(201)],
];

const BAD_CURSORS: [string, string][] = [
  ['empty', ''],
  ['not base64url', 'not a cursor!'],
  ['decoding to nothing', '!!!'],
  ['over 1024 characters', 'A'.repeat(1025)],
  ['not canonical', 'YWJjZA=='],
];

const BAD_LIMITS: unknown[] = [0, -1, 1.5, 1001, Number.NaN, Number.POSITIVE_INFINITY];

/** Values of the right type that are invalid: a `CairnError` with code `INVALID_ARGUMENT`. */
const INVALID_VALUES: BadCall[] = [
  ...BAD_IDS.flatMap(([label, id]): BadCall[] => [
    { name: `getRun(${label} id)`, expected: 'INVALID_ARGUMENT', call: (s) => s.getRun(id) },
    {
      name: `createRun with a ${label} id`,
      expected: 'INVALID_ARGUMENT',
      call: (s) => s.createRun(makeRun({ id })),
    },
    {
      name: `createRun with a ${label} workflow`,
      expected: 'INVALID_ARGUMENT',
      call: (s) => s.createRun(makeRun({ workflow: id })),
    },
    {
      name: `checkpoint of a task with a ${label} taskId`,
      expected: 'INVALID_ARGUMENT',
      call: (s, seed) => s.checkpoint({ tasks: [makeTask(seed.run, { taskId: id })] }),
    },
    {
      name: `getTask(run, ${label} taskId)`,
      expected: 'INVALID_ARGUMENT',
      call: (s, seed) => s.getTask(seed.run.id, id),
    },
    { name: `listTasks(${label})`, expected: 'INVALID_ARGUMENT', call: (s) => s.listTasks(id) },
    {
      name: `listRuns({ workflow: ${label} })`,
      expected: 'INVALID_ARGUMENT',
      call: (s) => s.listRuns({ workflow: id }),
    },
    {
      name: `listRuns({ namespace: ${label} })`,
      expected: 'INVALID_ARGUMENT',
      call: (s) => s.listRuns({ namespace: id, status: 'paused' }),
    },
    {
      name: `listWaiting({ runId: ${label} })`,
      expected: 'INVALID_ARGUMENT',
      call: (s) => s.listWaiting({ runId: id }),
    },
    {
      name: `putInbox(${label} runId)`,
      expected: 'INVALID_ARGUMENT',
      call: (s) => s.putInbox(id, 'approve', 1),
    },
    {
      name: `getInbox(run, ${label})`,
      expected: 'INVALID_ARGUMENT',
      call: (s, seed) => s.getInbox(seed.run.id, id),
    },
    {
      name: `takeInbox(${label}, task)`,
      expected: 'INVALID_ARGUMENT',
      call: (s) => s.takeInbox(id, 'later'),
    },
    { name: `listInbox(${label})`, expected: 'INVALID_ARGUMENT', call: (s) => s.listInbox(id) },
    {
      name: `appendLogs with a ${label} runId`,
      expected: 'INVALID_ARGUMENT',
      call: (s) => s.appendLogs([makeLog(id)]),
    },
    { name: `readLogs(${label})`, expected: 'INVALID_ARGUMENT', call: (s) => s.readLogs(id) },
    { name: `deleteRun(${label})`, expected: 'INVALID_ARGUMENT', call: (s) => s.deleteRun(id) },
    { name: `getMeta(${label})`, expected: 'INVALID_ARGUMENT', call: (s) => s.getMeta(id) },
    { name: `putMeta(${label})`, expected: 'INVALID_ARGUMENT', call: (s) => s.putMeta(id, 1) },
    {
      name: `checkpoint inboxTaken with a ${label} taskId`,
      expected: 'INVALID_ARGUMENT',
      call: (s, seed) => s.checkpoint({ inboxTaken: [{ runId: seed.run.id, taskId: id }] }),
    },
  ]),
  ...(
    [
      ['an object that is not a run', {}],
      ['status "done"', { status: 'done' }],
      ['status "Running"', { status: 'Running' }],
      ['isPaused with status running', { status: 'running', isPaused: true }],
      ['status paused without isPaused', { status: 'paused', isPaused: false }],
      ['createdAt -1', { createdAt: -1 }],
      ['createdAt 1.5', { createdAt: 1.5 }],
      ['updatedAt NaN', { updatedAt: Number.NaN }],
      ['depth -1', { depth: -1 }],
      ['recoveries 0.5', { recoveries: 0.5 }],
      ['tags not an array', { tags: 'a,b' }],
      ['65 tags', { tags: Array.from({ length: 65 }, (_, i) => `t${i}`) }],
      ['an error without message', { error: { code: 'X' } }],
      ['isPaused a string', { isPaused: 'no' }],
      ['pausedTaskId with a NUL', { pausedTaskId: 'a\u0000' }],
      ['no workflow', { workflow: undefined }],
    ] as [string, Record<string, unknown>][]
  ).flatMap(([label, fields]): BadCall[] => {
    const build = (): unknown =>
      label === 'an object that is not a run' ? {} : { ...makeRun(), ...fields };
    return [
      {
        name: `createRun: ${label}`,
        expected: 'INVALID_ARGUMENT',
        call: (s) => s.createRun(build()),
      },
      {
        name: `checkpoint of an existing run: ${label}`,
        expected: 'INVALID_ARGUMENT',
        call: (s, seed) =>
          s.checkpoint({
            runs: [label === 'an object that is not a run' ? {} : { ...seed.run, ...fields }],
          }),
      },
    ];
  }),
  ...(
    [
      ['kind "job"', { kind: 'job' }],
      ['status "done"', { status: 'done' }],
      ['seq -1', { seq: -1 }],
      ['seq 0.5', { seq: 0.5 }],
      ['attempt -1', { attempt: -1 }],
      [
        'attempts with attempt 0',
        { attempts: [{ attempt: 0, startedAt: 1, endedAt: null, error: null }] },
      ],
      ['meta not an object', { meta: 'x' }],
      ['durationMs -1', { durationMs: -1 }],
      ['startedAt a Date', { startedAt: new Date() }],
      ['a runId with a NUL', { runId: 'a\u0000b' }],
      ['timeoutAt -5', { timeoutAt: -5 }],
    ] as [string, Record<string, unknown>][]
  ).map(([label, fields]): BadCall => ({
    name: `checkpoint of a task: ${label}`,
    expected: 'INVALID_ARGUMENT',
    call: (s, seed) => s.checkpoint({ tasks: [{ ...seed.task, ...fields }] }),
  })),
  {
    name: 'checkpoint with one valid run and one invalid task writes neither',
    expected: 'INVALID_ARGUMENT',
    call: (s, seed) =>
      s.checkpoint({
        runs: [{ ...seed.run, status: 'running', isPaused: false }],
        tasks: [
          { ...seed.wait, status: 'completed' },
          { ...seed.task, seq: -1 },
        ],
        inboxTaken: [{ runId: seed.run.id, taskId: 'later' }],
      }),
  },
  {
    name: 'checkpoint with one run twice',
    expected: 'INVALID_ARGUMENT',
    call: (s, seed) => s.checkpoint({ runs: [seed.done, { ...seed.done, recoveries: 1 }] }),
  },
  ...(['done', 'Paused', '', 'running '] as const).map((status): BadCall => ({
    name: `listRuns({ status: "${status}" })`,
    expected: 'INVALID_ARGUMENT',
    call: (s) => s.listRuns({ status }),
  })),
  ...BAD_LIMITS.flatMap((limit): BadCall[] => [
    {
      name: `listRuns({ limit: ${String(limit)} })`,
      expected: 'INVALID_ARGUMENT',
      call: (s) => s.listRuns({ limit }),
    },
    {
      name: `listWaiting({ limit: ${String(limit)} })`,
      expected: 'INVALID_ARGUMENT',
      call: (s) => s.listWaiting({ limit }),
    },
    {
      name: `dueTimers(now, ${String(limit)})`,
      expected: 'INVALID_ARGUMENT',
      call: (s) => s.dueTimers(0, limit),
    },
  ]),
  ...[0, -1, 2.5, Number.NaN, Number.POSITIVE_INFINITY].map((limit): BadCall => ({
    name: `readLogs(run, { limit: ${String(limit)} })`,
    expected: 'INVALID_ARGUMENT',
    call: (s, seed) => s.readLogs(seed.run.id, { limit }),
  })),
  ...[Number.NaN, 1.5, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY].map(
    (afterSeq): BadCall => ({
      name: `readLogs(run, { afterSeq: ${String(afterSeq)} })`,
      expected: 'INVALID_ARGUMENT',
      call: (s, seed) => s.readLogs(seed.run.id, { afterSeq }),
    }),
  ),
  ...BAD_CURSORS.flatMap(([label, cursor]): BadCall[] => [
    {
      name: `listRuns with a cursor ${label}`,
      expected: 'INVALID_ARGUMENT',
      call: (s) => s.listRuns({ cursor }),
    },
    {
      name: `listRuns by status with a cursor ${label}`,
      expected: 'INVALID_ARGUMENT',
      call: (s) => s.listRuns({ status: 'paused', cursor }),
    },
    {
      name: `listWaiting with a cursor ${label}`,
      expected: 'INVALID_ARGUMENT',
      call: (s) => s.listWaiting({ cursor }),
    },
  ]),
  ...(
    [
      ['an empty object', {}],
      ['level "loud"', { level: 'loud' }],
      ['at -1', { at: -1 }],
      ['a message over 64 KiB', { message: 'x'.repeat(64 * 1024 + 1) }],
      ['a message that is not a string', { message: 42 }],
      ['taskId ""', { taskId: '' }],
    ] as [string, Record<string, unknown>][]
  ).map(([label, fields]): BadCall => ({
    name: `appendLogs of a valid line and one with ${label} writes neither`,
    expected: 'INVALID_ARGUMENT',
    call: (s, seed) =>
      s.appendLogs([
        makeLog(seed.run.id),
        label === 'an empty object' ? {} : { ...makeLog(seed.run.id), ...fields },
      ]),
  })),
  {
    name: 'putMeta("schemaVersion")',
    expected: 'INVALID_ARGUMENT',
    call: (s) => s.putMeta('schemaVersion', 9),
  },
  {
    name: 'putMeta("migration")',
    expected: 'INVALID_ARGUMENT',
    call: (s) => s.putMeta('migration', {}),
  },
];

/** A time after every run's end: a prune with it would delete the seed's completed run. */
const FAR = 8.64e15;

/** The export of one new run (an import with it would write something). */
async function newRunLines(): Promise<string[]> {
  const source = new MemoryStore();
  await source.open();
  await source.createRun(makeRun());
  const lines: string[] = [];
  await source.exportRuns((line) => void lines.push(line));
  await source.close();
  return lines;
}

/** Options of the calls that delete or write many runs, each of which would change something. */
const BAD_OPTIONS: BadCall[] = [
  ...(
    [
      ['batchSize: 0', { batchSize: 0 }, 'INVALID_ARGUMENT'],
      ['keep: -1', { keep: -1 }, 'INVALID_ARGUMENT'],
      ['keep: 1.5', { keep: 1.5 }, 'INVALID_ARGUMENT'],
      ['statuses: "completed"', { statuses: 'completed' }, 'TypeError'],
      ['statuses: ["running"]', { statuses: ['running'] }, 'INVALID_ARGUMENT'],
      ['dryRun: "yes"', { dryRun: 'yes' }, 'TypeError'],
      ['onProgress: 5', { onProgress: 5 }, 'TypeError'],
    ] as const
  ).map(([label, options, expected]): BadCall => ({
    name: `prune({ olderThan: far, ${label} })`,
    expected,
    call: (s) => s.prune({ olderThan: FAR, ...options }),
  })),
  {
    name: 'prune({ olderThan: Infinity })',
    expected: 'INVALID_ARGUMENT',
    call: (s) => s.prune({ olderThan: Number.POSITIVE_INFINITY }),
  },
  {
    name: 'importRuns(a new run, { conflict: "overwrite" })',
    expected: 'INVALID_ARGUMENT',
    call: async (s) => s.importRuns(await newRunLines(), { conflict: 'overwrite' }),
  },
  {
    name: 'importRuns(a new run, { onProgress: 5 })',
    expected: 'TypeError',
    call: async (s) => s.importRuns(await newRunLines(), { onProgress: 5 }),
  },
  {
    name: 'importRuns(a new run, null)',
    expected: 'TypeError',
    call: async (s) => s.importRuns(await newRunLines(), null),
  },
];

/** Calls that are wrong in the store's state, not in their arguments. */
const WRONG_STATE: BadCall[] = [
  {
    name: 'createRun of an existing id',
    expected: 'ALREADY_EXISTS',
    call: (s, seed) => s.createRun({ ...seed.done, input: 'again' }),
  },
];

export function badInputTests(ctx: SuiteContext): void {
  let store: Store;
  let seed: Seed;
  beforeAll(async () => {
    store = await ctx.open();
    seed = await seedStore(store);
  });

  for (const bad of WRONG_TYPES) {
    it(`${bad.name} is a TypeError (INVALID_ARGUMENT); nothing changes`, async () => {
      await expectRefused(store, seed, bad);
    });
  }
  for (const bad of [...INVALID_VALUES, ...WRONG_STATE, ...BAD_OPTIONS]) {
    it(`${bad.name} is ${bad.expected}; nothing changes`, async () => {
      await expectRefused(store, seed, bad);
    });
  }

  it('unknown ids give undefined, false or empty results, and change nothing', async () => {
    const before = await snapshot(store, { runIds: ['orphan'] });
    const unknown = 'no-such-run';
    expect(await store.getRun(unknown)).toBeUndefined();
    expect(await store.getTask(unknown, 'score')).toBeUndefined();
    expect(await store.getTask(seed.run.id, 'no-such-task')).toBeUndefined();
    expect(await store.listTasks(unknown)).toEqual([]);
    expect(await store.listRuns({ workflow: 'no-such-workflow' })).toEqual({
      items: [],
      cursor: null,
      corrupt: [],
    });
    expect((await store.listRuns({ namespace: 'no-such-namespace' })).items).toEqual([]);
    expect((await store.listWaiting({ runId: unknown })).items).toEqual([]);
    expect(await store.getInbox(unknown, 'approve')).toBeUndefined();
    expect(await store.takeInbox(unknown, 'approve')).toBeUndefined();
    expect(await store.takeInbox(seed.run.id, 'no-such-task')).toBeUndefined();
    expect(await store.listInbox(unknown)).toEqual([]);
    expect(await store.readLogs(unknown)).toEqual([]);
    expect(await store.deleteRun(unknown)).toBe(false);
    expect(await store.getMeta('no-such-meta')).toBeUndefined();
    await store.checkpoint({ inboxTaken: [{ runId: unknown, taskId: 'approve' }] });
    await store.checkpoint({});
    expect(await snapshot(store, { runIds: ['orphan'] })).toEqual(before);
  });
}
