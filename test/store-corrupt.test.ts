import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Packr } from 'msgpackr';
import { CairnError, LevelStore, type Run, type Task } from '@cairn/store';
import { makeRun, makeTask } from './helpers/records.js';
import { tempDir } from './helpers/temp.js';

/**
 * Damaged bytes on disk: one corrupt record is reported as CORRUPT_RECORD naming its key,
 * never stops the reading of any other record, shows in listings' `corrupt`, and can be
 * deleted, leaving a consistent store.
 */

const SEP = '\x00';
const packr = new Packr({ useRecords: false });
const RUN_IDS = ['r0', 'r1', 'r2', 'r3', 'r4', 'r5'];
const BAD = 'r2';

function runOf(id: string, i: number): Run {
  const paused = i % 2 === 0;
  return makeRun(id, {
    workflow: i % 3 === 0 ? 'onboarding' : 'expense-approval',
    createdAt: 1_700_000_000_000 + i,
    startedAt: 1_700_000_000_000 + i,
    status: paused ? 'paused' : 'running',
    isPaused: paused,
    pausedTaskId: paused ? 'approve' : null,
  });
}

function tasksOf(run: Run): Task[] {
  const tasks = [makeTask(run.id, 'fetch', { status: 'completed', endedAt: 1, output: [1, 2] })];
  tasks.push(
    run.isPaused
      ? makeTask(run.id, 'approve', {
          kind: 'wait',
          seq: 1,
          status: 'waiting',
          schema: { type: 'object' },
          timeoutAt: 1_800_000_000_000 + run.createdAt,
        })
      : makeTask(run.id, 'nap', {
          kind: 'sleep',
          seq: 1,
          status: 'sleeping',
          wakeAt: 1_800_000_000_000 + run.createdAt,
        }),
  );
  return tasks;
}

const runs = RUN_IDS.map(runOf);

const damages: Array<[string, (valid: unknown) => Uint8Array]> = [
  ['garbage bytes', () => Uint8Array.from([0xc1, 0xff, 0x00, 0x13, 0x37, 0xc1, 0xde, 0xad])],
  ['truncated msgpack', (valid) => packr.pack(valid).subarray(0, 20)],
  [
    'valid msgpack that fails the schema',
    (valid) => packr.pack({ ...(valid as object), status: 42 }),
  ],
];

let path: string;
let cleanup: () => Promise<void>;
let store: LevelStore;

beforeEach(async () => {
  ({ path, cleanup } = await tempDir('corrupt'));
  store = new LevelStore({ path });
  await store.open();
  for (const run of runs) {
    await store.createRun(run);
    await store.checkpoint({ tasks: tasksOf(run) });
  }
  expect((await store.verify()).ok).toBe(true);
});

afterEach(async () => {
  await store.close();
  await cleanup();
});

/** Writes `bytes` under `key`, then reopens the store: the damage is on disk. */
async function damage(key: string, bytes: Uint8Array): Promise<void> {
  await store.settled();
  await store.level.put(key, bytes);
  await store.close();
  store = new LevelStore({ path });
  await store.open();
}

async function corruptError(promise: Promise<unknown>): Promise<CairnError> {
  const error: unknown = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(CairnError);
  expect((error as CairnError).code).toBe('CORRUPT_RECORD');
  return error as CairnError;
}

const ids = (items: readonly { id: string }[]): string[] => items.map((run) => run.id).sort();

describe.each(damages)('a run record holding %s', (_, bytesFor) => {
  it('is CORRUPT_RECORD for that run only, is listed as corrupt, and can be deleted', async () => {
    const bad = runs.find((run) => run.id === BAD)!;
    await damage(['runs', BAD].join(SEP), bytesFor(bad));

    const error = await corruptError(store.getRun(BAD));
    expect(error.details).toMatchObject({ key: `runs/${BAD}` });

    const healthy = runs.filter((run) => run.id !== BAD);
    for (const run of healthy) {
      expect(await store.getRun(run.id)).toEqual(run);
      expect(await store.listTasks(run.id)).toEqual(tasksOf(run));
    }
    // Its tasks are intact.
    expect(await store.listTasks(BAD)).toEqual(tasksOf(bad));

    for (const query of [{}, { status: bad.status }, { workflow: bad.workflow }] as const) {
      const page = await store.listRuns(query);
      const wanted = healthy.filter(
        (run) =>
          (!('status' in query) || run.status === query.status) &&
          (!('workflow' in query) || run.workflow === query.workflow),
      );
      expect(ids(page.items)).toEqual(ids(wanted));
      expect(page.corrupt.map((c) => c.key)).toEqual([`runs/${BAD}`]);
      expect(page.corrupt[0]!.error.code).toBe('CORRUPT_RECORD');
    }

    const report = await store.verify();
    expect(report.ok).toBe(false);
    expect(report.problems).toEqual([
      expect.objectContaining({ kind: 'corrupt', key: `runs/${BAD}` }),
    ]);

    expect(await store.deleteRun(BAD)).toBe(true);
    expect(await store.getRun(BAD)).toBeUndefined();
    expect(await store.listTasks(BAD)).toEqual([]);
    const after = await store.listRuns();
    expect(ids(after.items)).toEqual(ids(healthy));
    expect(after.corrupt).toEqual([]);
    expect((await store.listWaiting()).items.map((task) => task.runId)).not.toContain(BAD);
    expect((await store.dueTimers(Number.MAX_SAFE_INTEGER)).map((t) => t.runId)).not.toContain(BAD);
    const clean = await store.verify();
    expect(clean.problems).toEqual([]);
    expect(clean).toMatchObject({ ok: true, runs: healthy.length });
  });
});

describe.each(damages)('a task record holding %s', (_, bytesFor) => {
  it('is CORRUPT_RECORD for that run’s tasks only, and the run can be deleted', async () => {
    const bad = runs.find((run) => run.id === BAD)!;
    const badTask = tasksOf(bad).find((task) => task.kind === 'wait')!;
    const shown = `tasks/${BAD}/${badTask.taskId}`;
    await damage(['tasks', BAD, badTask.taskId].join(SEP), bytesFor(badTask));

    expect((await corruptError(store.listTasks(BAD))).details).toMatchObject({ key: shown });
    expect((await corruptError(store.getTask(BAD, badTask.taskId))).details).toMatchObject({
      key: shown,
    });
    expect(await store.getTask(BAD, 'fetch')).toEqual(tasksOf(bad)[0]);
    expect(await store.getRun(BAD)).toEqual(bad);

    const healthy = runs.filter((run) => run.id !== BAD);
    for (const run of healthy) {
      expect(await store.listTasks(run.id)).toEqual(tasksOf(run));
    }
    const listed = await store.listRuns();
    expect(ids(listed.items)).toEqual(ids(runs));
    expect(listed.corrupt).toEqual([]);

    // The waiting listing skips and reports it; the other waits are there.
    const waiting = await store.listWaiting();
    expect(waiting.corrupt.map((c) => c.key)).toEqual([shown]);
    expect(waiting.items.map((task) => task.runId).sort()).toEqual(
      healthy.filter((run) => run.isPaused).map((run) => run.id),
    );

    const report = await store.verify();
    expect(report.ok).toBe(false);
    expect(report.problems).toContainEqual(
      expect.objectContaining({ kind: 'corrupt', key: shown }),
    );

    expect(await store.deleteRun(BAD)).toBe(true);
    expect(await store.getRun(BAD)).toBeUndefined();
    expect(await store.listTasks(BAD)).toEqual([]);
    expect((await store.listWaiting()).corrupt).toEqual([]);
    const timers = await store.dueTimers(Number.MAX_SAFE_INTEGER);
    expect(timers.map((t) => t.runId)).not.toContain(BAD);
    expect(timers).toHaveLength(healthy.length);
    const clean = await store.verify();
    expect(clean.problems).toEqual([]);
    expect(clean).toMatchObject({ ok: true, runs: healthy.length, tasks: healthy.length * 2 });
  });
});
