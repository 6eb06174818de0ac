import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Packr } from 'msgpackr';
import {
  CairnError,
  CURRENT_SCHEMA_VERSION,
  LevelStore,
  MIGRATIONS,
  RUN_STATUSES,
  type MigrationProgress,
  type Run,
  type Task,
} from '@cairn/store';
import { Child } from './helpers/child.js';
import {
  expectedRun,
  expectedTask,
  v0Fixture,
  writeV0Store,
  type V0Fixture,
  type V0Task,
} from './helpers/format-v0.js';
import { dumpDb, keysWithPrefix, withRawDb } from './helpers/raw.js';
import { makeRun, makeTask } from './helpers/records.js';
import { tempDir } from './helpers/temp.js';

/**
 * Schema migrations on disk: a format-0 store (JSON under `run:`/`task:`) is migrated
 * forward on open, with progress; an interruption (a throwing progress callback, or a real
 * process killed with SIGKILL) resumes on the next open and ends byte for byte where an
 * uninterrupted migration ends; a store newer than the code is refused and left untouched.
 */

const RUNS = 2000;
const fixture: V0Fixture = v0Fixture(RUNS);
const RECORDS = fixture.runs.length + fixture.tasks.length;
const SCHEMA_VERSION_KEY = 'meta\x00schemaVersion';
const PROGRESS_KEY = 'meta\x00migration';

const cleanups: Array<() => Promise<void>> = [];
async function dir(label: string): Promise<string> {
  const { path, cleanup } = await tempDir(label);
  cleanups.push(cleanup);
  return path;
}

/** Every key and value of a format-0 fixture migrated in one go. */
let reference: Map<string, string>;

beforeAll(async () => {
  const path = await dir('mig-ref');
  await writeV0Store(path, fixture);
  const store = new LevelStore({ path });
  await store.open();
  await store.close();
  reference = await dumpDb(path);
});

afterAll(async () => {
  for (const cleanup of cleanups) await cleanup();
});

async function listAll(store: LevelStore, query: { status?: Run['status']; workflow?: string }) {
  const runs: Run[] = [];
  let cursor: string | null = null;
  do {
    const page = await store.listRuns({ ...query, limit: 1000, cursor });
    expect(page.corrupt).toEqual([]);
    runs.push(...page.items);
    cursor = page.cursor;
  } while (cursor !== null);
  return runs;
}

async function listAllWaiting(store: LevelStore): Promise<Task[]> {
  const tasks: Task[] = [];
  let cursor: string | null = null;
  do {
    const page = await store.listWaiting({ limit: 1000, cursor });
    expect(page.corrupt).toEqual([]);
    tasks.push(...page.items);
    cursor = page.cursor;
  } while (cursor !== null);
  return tasks;
}

/** The migration stopped partway: old keys and new keys side by side, no version stamp. */
function expectPartway(dump: ReadonlyMap<string, string>): void {
  expect(dump.has(SCHEMA_VERSION_KEY)).toBe(false);
  expect(dump.has(PROGRESS_KEY)).toBe(true);
  const left = keysWithPrefix(dump, 'run:').length + keysWithPrefix(dump, 'task:').length;
  expect(left).toBeGreaterThan(0);
  expect(left).toBeLessThan(RECORDS);
  expect(keysWithPrefix(dump, 'runs\x00').length).toBeGreaterThan(0);
}

/**
 * Progress events of one open: `done` rises to `total`, which counts every record; then the
 * format 1 to 2 step (tag index and usage totals) counts every run.
 */
function expectProgress(all: readonly MigrationProgress[], startAt: number): void {
  const events = all.filter((event) => event.from === 0);
  expect(all.at(-1)).toMatchObject({ from: 1, to: 2, done: RUNS, total: RUNS });
  expect(events.length).toBeGreaterThan(1);
  expect(events[0]!.done).toBe(startAt);
  for (const event of events) {
    expect(event).toMatchObject({ from: 0, to: 1, total: RECORDS });
    expect(typeof event.description).toBe('string');
  }
  for (let i = 1; i < events.length; i++) {
    expect(events[i]!.done).toBeGreaterThan(events[i - 1]!.done);
  }
  expect(events.at(-1)!.done).toBe(RECORDS);
}

describe('migrating a format-0 store', () => {
  it('migrates every run and task to format 1 (then 2), with indexes and progress', async () => {
    const path = await dir('mig');
    await writeV0Store(path, fixture);
    const events: MigrationProgress[] = [];
    const store = new LevelStore({ path, onMigrationProgress: (p) => events.push(p) });
    await store.open();
    try {
      expect(store.schemaVersion).toBe(CURRENT_SCHEMA_VERSION);
      expect(store.schemaVersion).toBe(CURRENT_SCHEMA_VERSION);
      expectProgress(events, 0);

      for (const v0 of fixture.runs) {
        expect(await store.getRun(v0.id)).toEqual(expectedRun(v0));
      }
      const tasksByRun = new Map<string, V0Task[]>();
      for (const task of fixture.tasks) {
        tasksByRun.set(task.runId, [...(tasksByRun.get(task.runId) ?? []), task]);
      }
      for (const v0 of fixture.runs) {
        const expected = (tasksByRun.get(v0.id) ?? []).map(expectedTask);
        expect(await store.listTasks(v0.id)).toEqual(expected);
      }

      // The indexes were built: by status, by workflow, waiting tasks.
      const expectedRuns = fixture.runs.map(expectedRun);
      for (const status of RUN_STATUSES) {
        const ids = (await listAll(store, { status })).map((run) => run.id);
        const wanted = expectedRuns.filter((run) => run.status === status).map((run) => run.id);
        expect(ids.sort()).toEqual(wanted.sort());
      }
      for (const workflow of new Set(fixture.runs.map((run) => run.workflow))) {
        const runs = await listAll(store, { workflow });
        expect(runs.length).toBe(fixture.runs.filter((run) => run.workflow === workflow).length);
        // Newest first.
        const created = runs.map((run) => run.createdAt);
        expect(created).toEqual([...created].sort((a, b) => b - a));
      }
      const waiting = await listAllWaiting(store);
      const pausedIds = expectedRuns.filter((run) => run.isPaused).map((run) => run.id);
      expect(pausedIds.length).toBeGreaterThan(100);
      expect(waiting.map((task) => task.runId).sort()).toEqual(pausedIds.sort());
      expect(waiting.every((task) => task.taskId === 'approve' && task.kind === 'wait')).toBe(true);

      const report = await store.verify();
      expect(report.problems).toEqual([]);
      expect(report).toMatchObject({ ok: true, runs: RUNS, tasks: fixture.tasks.length });

      for (const range of [
        { gte: 'run:', lt: 'run;' },
        { gte: 'task:', lt: 'task;' },
      ]) {
        expect(await store.level.keys(range).all()).toEqual([]);
      }
      expect(await store.level.get(PROGRESS_KEY)).toBeUndefined();
    } finally {
      await store.close();
    }
    expect(await dumpDb(path)).toEqual(reference);

    // A second open finds nothing to do.
    const again: MigrationProgress[] = [];
    const reopened = new LevelStore({ path, onMigrationProgress: (p) => again.push(p) });
    await reopened.open();
    expect(reopened.schemaVersion).toBe(CURRENT_SCHEMA_VERSION);
    await reopened.close();
    expect(again).toEqual([]);
    expect(await dumpDb(path)).toEqual(reference);
  });

  it('resumes a migration stopped by a throwing progress callback and ends with the same data', async () => {
    const path = await dir('mig-throw');
    await writeV0Store(path, fixture);
    let calls = 0;
    const store = new LevelStore({
      path,
      migrationBatchSize: 300,
      onMigrationProgress: () => {
        if (++calls === 6) throw new Error('interrupted on purpose');
      },
    });
    const error: unknown = await store.open().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(CairnError);
    expect((error as CairnError).code).toBe('MIGRATION_FAILED');
    expect((error as CairnError).details).toMatchObject({ from: 0, to: 1 });
    expect(store.status).toBe('closed');

    const partway = await dumpDb(path);
    expectPartway(partway);
    // Five batches of exactly `migrationBatchSize` records were committed before the sixth
    // progress call (the first reports the start) threw.
    expect(keysWithPrefix(partway, 'run:').length + keysWithPrefix(partway, 'task:').length).toBe(
      RECORDS - 5 * 300,
    );

    const events: MigrationProgress[] = [];
    const resumed = new LevelStore({ path, onMigrationProgress: (p) => events.push(p) });
    await resumed.open();
    expect(resumed.schemaVersion).toBe(CURRENT_SCHEMA_VERSION);
    expect((await resumed.verify()).ok).toBe(true);
    await resumed.close();
    expectProgress(events, 5 * 300);
    expect(await dumpDb(path)).toEqual(reference);
  });

  it('resumes a migration whose process was killed with SIGKILL and ends with the same data', async () => {
    const path = await dir('mig-kill');
    await writeV0Store(path, fixture);
    const child = new Child('migrate-store.ts', [path, '50', '10']);
    let killedAt: number;
    try {
      const line = await child.waitForLine((l) => {
        const [word, done] = l.split(' ');
        return word === 'progress' && Number(done) >= RECORDS / 3;
      });
      killedAt = Number(line.split(' ')[1]);
    } finally {
      await child.kill();
    }
    expect(child.lines).not.toContain('migrated 2');
    const partway = await dumpDb(path);
    expectPartway(partway);

    const events: MigrationProgress[] = [];
    const resumed = new LevelStore({ path, onMigrationProgress: (p) => events.push(p) });
    await resumed.open();
    expect(resumed.schemaVersion).toBe(CURRENT_SCHEMA_VERSION);
    const report = await resumed.verify();
    expect(report.problems).toEqual([]);
    await resumed.close();
    // It carried on from where the killed process had committed, not from the start.
    expectProgress(events, events[0]!.done);
    expect(events[0]!.done).toBeGreaterThanOrEqual(killedAt);
    expect(await dumpDb(path)).toEqual(reference);
  });
});

describe('a store newer than the code', () => {
  async function storeWithData(label: string): Promise<string> {
    const path = await dir(label);
    const store = new LevelStore({ path });
    await store.open();
    await store.createRun(makeRun('r1', { status: 'running', startedAt: 1 }));
    await store.checkpoint({
      tasks: [makeTask('r1', 'approve', { kind: 'wait', status: 'waiting', timeoutAt: 99 })],
    });
    await store.close();
    return path;
  }

  async function expectTooNew(path: string, version: number): Promise<void> {
    const before = await dumpDb(path);
    const store = new LevelStore({ path });
    const error: unknown = await store.open().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(CairnError);
    expect((error as CairnError).code).toBe('STORE_TOO_NEW');
    expect((error as CairnError).details).toMatchObject({
      location: path,
      version,
      supported: CURRENT_SCHEMA_VERSION,
    });
    expect(store.status).toBe('closed');
    expect(await dumpDb(path)).toEqual(before);
  }

  it('is refused with STORE_TOO_NEW and left as it was (version written by hand)', async () => {
    const path = await storeWithData('too-new');
    const packr = new Packr({ useRecords: false });
    await withRawDb(path, (db) => db.put(SCHEMA_VERSION_KEY, packr.pack(99)));
    await expectTooNew(path, 99);
    // Refused every time, not only the first.
    await expectTooNew(path, 99);
  });

  it('is refused with STORE_TOO_NEW (version written by a newer Cairn)', async () => {
    const path = await storeWithData('too-new-target');
    const future = CURRENT_SCHEMA_VERSION + 1;
    const newer = new LevelStore({
      path,
      targetSchemaVersion: future,
      migrations: [
        ...MIGRATIONS,
        {
          from: CURRENT_SCHEMA_VERSION,
          to: future,
          description: 'a future format',
          run: async () => undefined,
        },
      ],
    });
    await newer.open();
    expect(newer.schemaVersion).toBe(future);
    await newer.close();
    await expectTooNew(path, future);
  });
});
