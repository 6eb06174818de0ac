/** Compact run and task records (format 4): exact round trips, both forms read, damage caught. */
import { storePort } from '../src/engine-port.js';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { decodeRaw, encode, roundTrip } from '../src/codec.js';
import { decodeRun, decodeTask, encodeRun, encodeTask, packRun, packTask } from '../src/compact.js';
import {
  LevelBackedStore,
  LevelStore,
  MIGRATIONS,
  MemoryStore,
  RUN_STATUSES,
  RunSchema,
  TASK_KINDS,
  TASK_STATUSES,
  TaskSchema,
  type Run,
  type Task,
} from '../src/index.js';
import { metaKey, runKey, taskKey } from '../src/keys.js';
import { makeRun, makeTask } from '../src/suite/fixtures.js';
import { seededRandom } from '../../../test/helpers/random.js';
import { changedEntries, dumpDb } from '../../../test/helpers/raw.js';

function randomTask(random: () => number): Task {
  const pick = <T>(list: readonly T[]): T => list[Math.floor(random() * list.length)]!;
  const maybe = <T>(value: T): T | null => (random() < 0.5 ? null : value);
  const startedAt = Math.floor(random() * 2 ** 42);
  const error = () => maybe({ code: 'E', message: 'failed once', details: { n: random() } });
  const attempts = Array.from({ length: Math.floor(random() * 4) }, (_, i) => ({
    attempt: i + 1,
    startedAt: startedAt + Math.floor(random() * 5000),
    endedAt: maybe(startedAt + 5000 + Math.floor(random() * 5000)),
    error: error(),
  }));
  const task: Task = {
    runId: 'run-1',
    taskId: pick(['a', 'step ü', 'ask/manager', 'x'.repeat(200)]),
    kind: pick(TASK_KINDS),
    seq: Math.floor(random() * 1000),
    status: pick(TASK_STATUSES),
    attempt: attempts.length,
    attempts,
    error: error(),
    startedAt,
    endedAt: maybe(startedAt + Math.floor(random() * 2 ** 30)),
    durationMs: maybe(random() * 1000),
    group: maybe(`g${Math.floor(random() * 9)}`),
    parentTaskId: maybe('parent'),
    meta: random() < 0.5 ? {} : { model: 'm', totalTokens: 12, nested: { deep: [1, 'two'] } },
  };
  if (random() < 0.7) task.output = pick([{ ok: true }, 'text', 0, null, [1, 2], -0, 1.5]);
  if (random() < 0.3) task.schema = { type: 'object' };
  if (random() < 0.3) task.timeoutAt = maybe(startedAt + 10);
  if (random() < 0.3) task.wakeAt = maybe(startedAt + 20);
  if (random() < 0.3) task.resumedBy = maybe('alice');
  if (random() < 0.3) task.childRunId = maybe('child-1');
  return task;
}

function randomRun(random: () => number): Run {
  const pick = <T>(list: readonly T[]): T => list[Math.floor(random() * list.length)]!;
  const maybe = <T>(value: T): T | null => (random() < 0.5 ? null : value);
  const createdAt = Math.floor(random() * 2 ** 42);
  const status = pick(RUN_STATUSES);
  const run: Run = {
    id: pick(['run-1', '01a2048b-7989-7014-b6bb-ac30b6177834', 'ü/ä']),
    workflow: pick(['w', 'expense-approval']),
    version: pick(['1', '2.0.1']),
    namespace: pick(['default', 'team a']),
    status,
    isPaused: status === 'paused',
    pausedTaskId: maybe('approve'),
    pauseRequested: random() < 0.2,
    input: pick([{ amount: 42 }, undefined, 'x', [1, { a: null }]]),
    error: maybe({ code: 'STEP_FAILED', message: 'no', stack: 'at x' }),
    createdAt,
    startedAt: maybe(createdAt + Math.floor(random() * 100)),
    updatedAt: createdAt + Math.floor(random() * 2 ** 30),
    endedAt: maybe(createdAt + Math.floor(random() * 2 ** 30)),
    parentRunId: maybe('parent-run'),
    parentTaskId: maybe('child-task'),
    depth: Math.floor(random() * 3),
    recoveries: Math.floor(random() * 3),
    tags: random() < 0.5 ? [] : ['eu', 'urgent'],
  };
  if (random() < 0.6) run.output = pick([{ total: 3 }, 'done', 0, null]);
  return run;
}

describe('compact records', () => {
  const forms = [
    [
      'task',
      randomTask,
      (t: Task) => taskKey(t.runId, t.taskId),
      encodeTask,
      decodeTask,
      TaskSchema,
    ],
    ['run', randomRun, (r: Run) => runKey(r.id), encodeRun, decodeRun, RunSchema],
  ] as const;
  it.each(forms)(
    'a %s reads back as its map form would (500 random ones)',
    (_, make, keyOf, pack, unpack, schema) => {
      for (let seed = 1; seed <= 500; seed++) {
        const record = make(seededRandom(seed)) as Task & Run;
        const k = keyOf(record);
        const bytes = pack(record);
        expect(Array.isArray(decodeRaw(k, bytes)), `seed ${seed}`).toBe(true);
        const expected = (schema as typeof TaskSchema).parse(roundTrip(record));
        expect(unpack(k, bytes), `seed ${seed}`).toEqual(expected);
        // The map form is still read, to the same record.
        expect(unpack(k, encode(record)), `seed ${seed}`).toEqual(expected);
      }
    },
  );

  it('a step of about 1 KB stores under 40 bytes besides its output; a run under 60 besides its input', () => {
    const output = { text: 'x'.repeat(900) };
    const run = makeRun({ input: { i: 1 }, output: 1 });
    const task = makeTask(run, { output, group: 'g0', meta: {} });
    expect(encodeTask(task).length - encode(output).length).toBeLessThan(40);
    expect(encode(task).length - encode(output).length).toBeGreaterThan(200);
    expect(encodeRun(run).length - encode(run.input).length).toBeLessThan(60);
  });

  it('a record that cannot be packed exactly is written as a map, and reads fail as before', () => {
    const run = makeRun();
    const task = makeTask(run);
    const cases: Task[] = [
      { ...task, startedAt: 1.5 },
      { ...task, endedAt: 2 ** 60 },
      { ...task, status: 'finished' as Task['status'] },
      { ...task, attempts: [{ ...task.attempts[0]!, startedAt: -0.5 }] },
    ];
    for (const broken of cases) {
      expect(packTask(broken)).toBeUndefined();
      const k = taskKey(run.id, task.taskId);
      expect(decodeRaw(k, encodeTask(broken))).not.toBeInstanceOf(Array);
      expect(() => decodeTask(k, encodeTask(broken))).toThrow(
        expect.objectContaining({ code: 'CORRUPT_RECORD' }),
      );
    }
    expect(packRun({ ...run, createdAt: Number.NaN })).toBeUndefined();
    expect(packRun({ ...run, status: 'gone' as Run['status'] })).toBeUndefined();
    expect(packRun({ ...run, updatedAt: 0.25 })).toBeUndefined();
  });

  const task = makeTask(makeRun(), { output: { ok: 1 } });
  const tk = taskKey(task.runId, task.taskId);
  const packed = packTask(task)!;
  const damagedTasks: [string, unknown][] = [
    ['another layout', [2, ...packed.slice(1)]],
    ['too few fields', packed.slice(0, 10)],
    ['too many fields', [...packed, 1, 2]],
    ['a kind index out of range', packed.map((v, i) => (i === 1 ? 9 : v))],
    ['a kind given as a name', packed.map((v, i) => (i === 1 ? 'step' : v))],
    ['a status index out of range', packed.map((v, i) => (i === 3 ? -1 : v))],
    ['a start that is not a time', packed.map((v, i) => (i === 5 ? 'now' : v))],
    ['an end offset that is text', packed.map((v, i) => (i === 6 ? '5' : v))],
    ['attempts cut short', packed.map((v, i) => (i === 8 ? [1, 0, 5] : v))],
    ['attempts not a list', packed.map((v, i) => (i === 8 ? { 0: 1 } : v))],
    ['an attempt start that is text', packed.map((v, i) => (i === 8 ? [1, 'x', 5, null] : v))],
    ['extras that are a list', packed.map((v, i) => (i === 13 ? ['schema'] : v))],
    ['meta that is a list', packed.map((v, i) => (i === 12 ? [1] : v))],
  ];
  it.each(damagedTasks)('a compact task with %s is CORRUPT_RECORD naming its key', (_, value) => {
    expect(() => decodeTask(tk, encode(value))).toThrow(
      expect.objectContaining({
        code: 'CORRUPT_RECORD',
        details: { key: tk.split('\x00').join('/') },
      }),
    );
  });

  const run = makeRun();
  const rk = runKey(run.id);
  const packedRun = packRun(run)!;
  const damagedRuns: [string, unknown][] = [
    ['another layout', [0, ...packedRun.slice(1)]],
    ['too few fields', packedRun.slice(0, 18)],
    ['too many fields', [...packedRun, 'output', 'more']],
    ['a status index out of range', packedRun.map((v, i) => (i === 4 ? 6 : v))],
    ['a creation time that is not one', packedRun.map((v, i) => (i === 10 ? null : v))],
    ['an update offset missing', packedRun.map((v, i) => (i === 12 ? undefined : v))],
    ['tags that are not a list', packedRun.map((v, i) => (i === 18 ? 'eu' : v))],
  ];
  it.each(damagedRuns)('a compact run with %s is CORRUPT_RECORD naming its key', (_, value) => {
    expect(() => decodeRun(rk, encode(value))).toThrow(
      expect.objectContaining({ code: 'CORRUPT_RECORD', details: { key: `runs/${run.id}` } }),
    );
  });
});

describe.each([
  ['MemoryStore', () => new MemoryStore()],
  ['LevelStore', () => new LevelStore({ path: tempDir() })],
])('%s with compact records', (_, create) => {
  it('writes runs and tasks compact, and reads and lists them as written', () =>
    withStore(create, async (store) => {
      const run = makeRun({ tags: ['eu'], status: 'paused', pausedTaskId: 'ask' });
      const tasks = [
        makeTask(run, { taskId: 'a' }),
        makeTask(run, {
          taskId: 'ask',
          kind: 'wait',
          status: 'waiting',
          schema: { type: 'object' },
          timeoutAt: null,
        }),
      ];
      await store.checkpoint({ runs: [run], tasks });
      await store.settled();
      const db = store.level;
      expect(decodeRaw(runKey(run.id), (await db.get(runKey(run.id)))!)).toBeInstanceOf(Array);
      for (const t of tasks) {
        const bytes = (await db.get(taskKey(run.id, t.taskId)))!;
        expect(decodeRaw('t', bytes)).toBeInstanceOf(Array);
      }
      expect(await store.getRun(run.id)).toEqual(roundTrip(run));
      expect(await store.listTasks(run.id)).toEqual(tasks.map((t) => roundTrip(t)));
      expect((await store.listRuns({ tags: ['eu'] })).items).toEqual([roundTrip(run)]);
      expect((await store.listWaiting({})).items).toEqual([roundTrip(tasks[1])]);
      expect((await store.verify()).ok).toBe(true);
    }));

  it('reads, lists, verifies and deletes records stored as maps, beside compact ones', () =>
    withStore(create, async (store) => {
      const old = makeRun({ status: 'completed', tags: ['old'] });
      const oldTask = makeTask(old, { taskId: 'a' });
      await store.checkpoint({ runs: [old], tasks: [oldTask] });
      await store.settled();
      // As a format-3 store holds them: the same records, as maps.
      await store.level.batch([
        { type: 'put', key: runKey(old.id), value: encode(old) },
        { type: 'put', key: taskKey(old.id, 'a'), value: encode(oldTask) },
      ]);
      const fresh = makeRun({ status: 'completed', tags: ['old'] });
      await store.checkpoint({ runs: [fresh], tasks: [makeTask(fresh, { taskId: 'a' })] });
      expect(await store.getRun(old.id)).toEqual(roundTrip(old));
      expect(await store.getTask(old.id, 'a')).toEqual(roundTrip(oldTask));
      const listed = await store.listRuns({ tags: ['old'] });
      expect(listed.items.map((r) => r.id).sort()).toEqual([old.id, fresh.id].sort());
      expect(listed.corrupt).toEqual([]);
      expect((await store.verify()).ok).toBe(true);
      await store.deleteRun(old.id);
      expect(await store.getRun(old.id)).toBeUndefined();
      expect((await store.verify()).ok).toBe(true);
    }));

  it('a damaged compact task is reported by listTasks and verify, and the others still read', () =>
    withStore(create, async (store) => {
      const run = makeRun();
      await store.checkpoint({ runs: [run], tasks: [makeTask(run, { taskId: 'a' })] });
      const packed = packTask(makeTask(run, { taskId: 'b' }))!;
      await store.settled();
      await store.level.put(taskKey(run.id, 'b'), encode(packed.slice(0, 9)));
      await expect(store.getTask(run.id, 'b')).rejects.toMatchObject({
        code: 'CORRUPT_RECORD',
        details: { key: `tasks/${run.id}/b` },
      });
      expect(await store.getTask(run.id, 'a')).toBeDefined();
      const report = await store.verify();
      expect(report.problems).toContainEqual(
        expect.objectContaining({ kind: 'corrupt', key: `tasks/${run.id}/b` }),
      );
    }));

  it('the engine path (trusted checkpoint) writes compact records too', () =>
    withStore(create, async (store) => {
      const run = makeRun();
      const task = makeTask(run, { taskId: 'a' });
      await storePort(store).write(
        { runs: [run], tasks: [task] },
        { durable: true, created: true },
      );
      await store.settled();
      const bytes = (await store.level.get(taskKey(run.id, 'a')))!;
      expect(decodeRaw('t', bytes)).toBeInstanceOf(Array);
      expect(await store.getTask(run.id, 'a')).toEqual(roundTrip(task));
    }));
});

describe('format 4', () => {
  it('a format-3 store is restamped to 4 and nothing else changes; Cairn reading format 3 refuses it', async () => {
    const path = tempDir();
    const store = new LevelStore({
      path,
      targetSchemaVersion: 3,
      migrations: MIGRATIONS.filter((m) => m.to <= 3),
    });
    await store.open();
    const run = makeRun();
    await store.checkpoint({ runs: [run], tasks: [makeTask(run, { taskId: 'a' })] });
    await store.close();
    const before = await dumpDb(path);
    const current = new LevelStore({
      path,
      targetSchemaVersion: 4,
      migrations: MIGRATIONS.filter((m) => m.to <= 4),
    });
    await current.open();
    expect(current.schemaVersion).toBe(4);
    expect(await current.getRun(run.id)).toEqual(roundTrip(run));
    await current.close();
    expect(changedEntries(before, await dumpDb(path))).toEqual([
      [metaKey('schemaVersion'), Buffer.from(encode(4)).toString('hex')],
    ]);
    const older = new LevelStore({
      path,
      targetSchemaVersion: 3,
      migrations: MIGRATIONS.filter((m) => m.to <= 3),
    });
    await expect(older.open()).rejects.toMatchObject({ code: 'STORE_TOO_NEW' });
  });
});

/** Opens a new store, hands it to `use`, and closes it whatever happens. */
async function withStore(
  create: () => LevelBackedStore,
  use: (store: LevelBackedStore) => Promise<void>,
): Promise<void> {
  const store = create();
  await store.open();
  try {
    await use(store);
  } finally {
    await store.close();
  }
}

const dirs: string[] = [];
function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'cairn-compact-'));
  dirs.push(dir);
  return dir;
}
afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});
