import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Packr } from 'msgpackr';
import { z } from 'zod';
import {
  CURRENT_SCHEMA_VERSION,
  CairnError,
  LevelStore,
  type MigrationProgress,
  type Run,
  type Task,
} from '@cairn/store';
import { createEngine, ManualClock, workflow, type Engine } from '@cairn/core';
import { v0Fixture, writeV0Store, type V0Run } from './helpers/format-v0.js';
import { dumpDb, withRawDb } from './helpers/raw.js';
import { makeRun, makeTask } from './helpers/records.js';
import { tempDir } from './helpers/temp.js';

/**
 * Damaged and old data under an engine (LevelDB in a temp directory): garbage bytes,
 * truncated msgpack and records that fail their schema under run, task, index and timer
 * keys; a store without its format stamp; a store newer than the code; a format-0 store.
 * The engine opens (except on STORE_TOO_NEW), reports each problem with its key and code
 * (the `problem` event, `page.corrupt`, or the error's `details.key`), and every healthy run
 * still recovers, completes and can be resumed.
 */

const SEP = '\x00';
const packr = new Packr({ useRecords: false });
const key = (...parts: string[]): string => parts.join(SEP);
const ANSWER = z.object({ ok: z.boolean() });

const flow = workflow('flow', {
  input: z.object({ n: z.number(), ask: z.boolean() }),
  async run(ctx, input) {
    const doubled = await ctx.step('fetch', () => input.n * 2);
    if (!input.ask) return { doubled };
    const answer = await ctx.waitForInput('approve', { schema: ANSWER });
    return { doubled, ok: answer.ok };
  },
});
const napper = workflow('napper', {
  input: z.object({ ms: z.number() }),
  async run(ctx, input) {
    await ctx.sleep('nap', input.ms);
    return 'rested';
  },
});

// --- a store with runs in every state, written record by record ------------------------------

const T = 1_700_000_000_000;
const RUNNING = ['run-0', 'run-1', 'run-2', 'run-3'];
const PAUSED = ['wait-0', 'wait-1', 'wait-2', 'wait-3'];
const DONE = 'done-0';
const NAP = 'nap-0';
const n = (id: string): number => Number(id.split('-')[1]);

function records(napUntil: number): { runs: Run[]; tasks: Task[] } {
  const runs: Run[] = [];
  const tasks: Task[] = [];
  for (const id of RUNNING) {
    const i = n(id);
    runs.push(
      makeRun(id, {
        workflow: 'flow',
        status: 'running',
        createdAt: T + i,
        startedAt: T + i,
        input: { n: i, ask: false },
      }),
    );
    // Every other run was cut off while its step ran: it runs again with attempt 2.
    if (i % 2 === 1) tasks.push(makeTask(id, 'fetch', { startedAt: T + i }));
  }
  for (const id of PAUSED) {
    const i = n(id);
    runs.push(
      makeRun(id, {
        workflow: 'flow',
        status: 'paused',
        isPaused: true,
        pausedTaskId: 'approve',
        tags: ['vip'],
        createdAt: T + 10 + i,
        startedAt: T + 10 + i,
        input: { n: i, ask: true },
      }),
    );
    tasks.push(
      makeTask(id, 'fetch', {
        status: 'completed',
        output: i * 2,
        startedAt: T,
        endedAt: T,
        durationMs: 0,
      }),
      makeTask(id, 'approve', {
        kind: 'wait',
        seq: 1,
        status: 'waiting',
        schema: z.toJSONSchema(ANSWER),
        timeoutAt: null,
        resumedBy: null,
      }),
    );
  }
  runs.push(
    makeRun(DONE, {
      workflow: 'flow',
      status: 'completed',
      createdAt: T + 20,
      startedAt: T + 20,
      endedAt: T + 21,
      input: { n: 0, ask: false },
      output: { doubled: 0 },
    }),
    makeRun(NAP, {
      workflow: 'napper',
      status: 'running',
      createdAt: T + 30,
      startedAt: T + 30,
      input: { ms: 200 },
    }),
  );
  tasks.push(
    makeTask(NAP, 'nap', {
      kind: 'sleep',
      status: 'sleeping',
      startedAt: napUntil - 200,
      wakeAt: napUntil,
      meta: { durationMs: 200 },
    }),
  );
  return { runs, tasks };
}

async function seed(path: string): Promise<void> {
  const store = new LevelStore({ path });
  await store.open();
  const { runs, tasks } = records(Date.now() + 200);
  for (const run of runs) await store.createRun(run);
  await store.checkpoint({ tasks });
  expect((await store.verify()).ok).toBe(true);
  await store.close();
}

interface Opened {
  readonly engine: Engine;
  readonly store: LevelStore;
  readonly problems: { runId: string; error: CairnError }[];
}

const opened: Opened[] = [];

async function open(
  path: string,
  store = new LevelStore({ path }),
  clock?: ManualClock,
): Promise<Opened> {
  const problems: Opened['problems'] = [];
  const engine = await createEngine({
    store,
    workflows: [flow, napper],
    on: { problem: (p) => problems.push(p) },
    ...(clock ? { clock } : {}),
  });
  const o = { engine, store, problems };
  opened.push(o);
  return o;
}

let path: string;
let cleanup: () => Promise<void>;
beforeEach(async () => {
  ({ path, cleanup } = await tempDir('engine-corrupt'));
});
afterEach(async () => {
  for (const o of opened.splice(0)) {
    await o.engine.close();
    await o.store.close();
  }
  await cleanup();
});

/** Every healthy run works: the interrupted ones finish, the waiting ones can be answered. */
async function expectHealthy(engine: Engine, damaged: readonly string[] = []): Promise<void> {
  for (const id of RUNNING.filter((r) => !damaged.includes(r))) {
    expect(await engine.handle(id).result()).toEqual({ doubled: n(id) * 2 });
  }
  for (const id of PAUSED.filter((r) => !damaged.includes(r))) {
    expect((await engine.get(id)).status).toBe('paused');
    expect(await engine.resumeTask(id, 'approve', { ok: true })).toMatchObject({
      status: 'resumed',
    });
    expect(await engine.handle(id).result()).toEqual({ doubled: n(id) * 2, ok: true });
  }
  if (!damaged.includes(NAP)) expect(await engine.handle(NAP).result()).toBe('rested');
  if (!damaged.includes(DONE)) expect((await engine.get(DONE)).status).toBe('completed');
  // A run that finishes its step after recovery counts one recovery; the others none.
  const recovered = await engine.get(RUNNING.find((r) => !damaged.includes(r) && n(r) % 2)!);
  expect(recovered.recoveries).toBe(1);
}

/** The problem reported for `key` (display form), with its code. */
function expectProblem(o: Opened, runId: string, displayKey: string): void {
  expect(o.problems).toContainEqual({
    runId,
    error: expect.objectContaining({
      code: 'CORRUPT_RECORD',
      details: expect.objectContaining({ key: displayKey }) as unknown,
    }) as unknown,
  });
}

async function corruptError(promise: Promise<unknown>, displayKey: string): Promise<void> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(CairnError);
  expect(error).toMatchObject({ code: 'CORRUPT_RECORD', details: { key: displayKey } });
}

// --- damaged values ----------------------------------------------------------------------------

const DAMAGES: [string, (valid: Uint8Array) => Uint8Array][] = [
  ['garbage bytes', () => Uint8Array.from([0xc1, 0xff, 0x00, 0x13, 0x37, 0xc1, 0xde, 0xad])],
  ['truncated msgpack', (valid) => valid.subarray(0, Math.floor(valid.length / 2))],
  [
    'valid msgpack that fails its schema',
    (valid) => packr.pack({ ...(packr.unpack(valid) as object), status: 42 }),
  ],
  ['an empty value', () => new Uint8Array(0)],
];

async function damage(k: string, bytesFor: (valid: Uint8Array) => Uint8Array): Promise<void> {
  await withRawDb(path, async (db) => {
    const valid = await db.get(k);
    expect(valid).toBeDefined();
    await db.put(k, bytesFor(valid!));
  });
}

describe.each(DAMAGES)('%s', (_, bytesFor) => {
  it('under the run key of a running run: reported at recovery, the others recover', async () => {
    await seed(path);
    await damage(key('runs', 'run-1'), bytesFor);
    const o = await open(path);
    expectProblem(o, 'run-1', 'runs/run-1');
    await corruptError(o.engine.get('run-1'), 'runs/run-1');
    const page = await o.engine.listRuns({ status: 'running' });
    expect(page.corrupt.map((c) => [c.key, c.error.code])).toEqual([
      ['runs/run-1', 'CORRUPT_RECORD'],
    ]);
    await expectHealthy(o.engine, ['run-1']);
    // The damaged record is left as it was, for a person to look at.
    await corruptError(o.engine.get('run-1'), 'runs/run-1');
  });

  it('under the run key of a paused run: its calls name the key, the others work', async () => {
    await seed(path);
    await damage(key('runs', 'wait-2'), bytesFor);
    const o = await open(path);
    expect(o.problems).toEqual([]);
    await corruptError(o.engine.get('wait-2'), 'runs/wait-2');
    await corruptError(o.engine.resumeTask('wait-2', 'approve', { ok: true }), 'runs/wait-2');
    await corruptError(o.engine.resume('wait-2', { ok: true }), 'runs/wait-2');
    await corruptError(o.engine.pause('wait-2'), 'runs/wait-2');
    await corruptError(o.engine.cancel('wait-2'), 'runs/wait-2');
    // The approvals inbox lists the other waits and names the damaged record.
    const waiting = await o.engine.listWaiting();
    expect(waiting.items.map((w) => w.runId).sort()).toEqual(
      PAUSED.filter((id) => id !== 'wait-2'),
    );
    expect(waiting.corrupt.map((c) => [c.key, c.error.code])).toEqual([
      ['runs/wait-2', 'CORRUPT_RECORD'],
    ]);
    expect((await o.engine.listRuns()).corrupt.map((c) => c.key)).toEqual(['runs/wait-2']);
    await expectHealthy(o.engine, ['wait-2']);
  });

  it('under a task key of a running run: reported at recovery, the run is left as it is', async () => {
    await seed(path);
    await damage(key('tasks', 'run-3', 'fetch'), bytesFor);
    const o = await open(path);
    expectProblem(o, 'run-3', 'tasks/run-3/fetch');
    expect((await o.engine.get('run-3')).status).toBe('running');
    await corruptError(o.engine.tasks('run-3'), 'tasks/run-3/fetch');
    await expectHealthy(o.engine, ['run-3']);
  });

  it('under a task key of a paused run: resuming names the key and changes nothing', async () => {
    await seed(path);
    await damage(key('tasks', 'wait-1', 'approve'), bytesFor);
    const o = await open(path);
    expect(o.problems).toEqual([]);
    await corruptError(
      o.engine.resumeTask('wait-1', 'approve', { ok: true }),
      'tasks/wait-1/approve',
    );
    await corruptError(o.engine.resume('wait-1', { ok: true }), 'tasks/wait-1/approve');
    expect((await o.engine.get('wait-1')).status).toBe('paused');
    const waiting = await o.engine.listWaiting();
    expect(waiting.corrupt.map((c) => c.key)).toEqual(['tasks/wait-1/approve']);
    await expectHealthy(o.engine, ['wait-1']);
  });
});

// --- damaged keys --------------------------------------------------------------------------------

describe('index and timer keys', () => {
  it('an index entry that points at a missing run is reported, and the others recover', async () => {
    await seed(path);
    await withRawDb(path, async (db) => {
      const order = `${String(T + 99).padStart(15, '0')}${SEP}ghost`;
      await db.put(key('idx-status', 'running', order), new Uint8Array(0));
      await db.put(key('idx-all', order), Uint8Array.from([0xde, 0xad]));
    });
    const o = await open(path);
    expectProblem(o, 'ghost', 'runs/ghost');
    expect((await o.engine.listRuns()).corrupt.map((c) => c.key)).toEqual(['runs/ghost']);
    await corruptError(Promise.reject(o.problems[0]!.error), 'runs/ghost');
    await expectHealthy(o.engine);
    const report = await o.store.verify();
    expect(report.problems.map((p) => [p.kind, p.key.split('/')[0]])).toEqual([
      ['orphan-entry', 'idx-all'],
      ['orphan-entry', 'idx-status'],
    ]);
  });

  it('garbage, stale and orphan timer keys neither stop the timers nor keep the engine busy', async () => {
    await seed(path);
    const at = String(T).padStart(15, '0');
    const garbage = [
      key('timers', 'garbage'),
      key('timers', '!!!'),
      key('timers', at, 'wait-0'),
      key('timers', at, 'wait-0', 'approve', 'extra'),
      key('timers', 'x'.repeat(15), 'wait-0', 'approve'),
      key('timers', ''),
    ];
    // Well-formed, but no record has them: a timer for a wait with no timeout, for a task
    // that does not exist, and for a run that does not exist.
    const stale = [
      key('timers', at, 'wait-0', 'approve'),
      key('timers', at, 'wait-1', 'nope'),
      key('timers', at, 'ghost', 'nap'),
    ];
    await withRawDb(path, async (db) => {
      for (const k of [...garbage, ...stale]) await db.put(k, Uint8Array.from([1, 2, 3]));
    });
    const store = new LevelStore({ path });
    const clock = new ManualClock();
    const o = await open(path, store, clock);
    let loads = 0;
    const listTasks = store.listTasks.bind(store);
    store.listTasks = (runId) => {
      loads++;
      return listTasks(runId);
    };
    // The sleeping run wakes on time: the damaged keys before its timer do not block it.
    await clock.advance(1_000);
    expect(await o.engine.handle(NAP).result()).toBe('rested');
    // A stale timer is looked at, reported and left: it does not load its run over and over,
    // however often the timers are looked at again.
    const after = loads;
    for (let i = 0; i < 10; i++) await clock.advance(60_000);
    expect(loads - after).toBeLessThan(3);
    expect(loads).toBeLessThan(5);
    for (const [runId, taskId] of [
      ['wait-0', 'approve'],
      ['wait-1', 'nope'],
      ['ghost', 'nap'],
    ]) {
      expect(o.problems).toContainEqual({
        runId,
        error: expect.objectContaining({
          code: 'CORRUPT_RECORD',
          details: expect.objectContaining({ runId, taskId }) as unknown,
        }) as unknown,
      });
    }
    // verify() names every one of them by key.
    const report = await o.store.verify();
    const named = report.problems.map((p) => p.key).sort();
    expect(named).toEqual([...garbage, ...stale].map((k) => k.split(SEP).join('/')).sort());
    expect(report.problems.every((p) => p.kind === 'orphan-entry')).toBe(true);
    expect((await o.engine.get('wait-0')).status).toBe('paused');
    await expectHealthy(o.engine);
  });
});

// --- format stamps and old formats ----------------------------------------------------------

describe('the format stamp', () => {
  it('missing on a store with current-format records: restamped, nothing converted or lost', async () => {
    await seed(path);
    const stamped = await dumpDb(path);
    await withRawDb(path, (db) => db.del(key('meta', 'schemaVersion')));
    const progress: MigrationProgress[] = [];
    const store = new LevelStore({ path, onMigrationProgress: (p) => progress.push(p) });
    await store.open();
    expect(store.schemaVersion).toBe(CURRENT_SCHEMA_VERSION);
    // Not read as format 0: no migration ran again over current records (the 1 → 2 migration
    // would add the usage of every completed step to totals that already count it).
    expect(progress).toEqual([]);
    await store.close();
    // The stamp is back and not another byte changed.
    expect(await dumpDb(path)).toEqual(stamped);
    const o = await open(path);
    expect(o.problems).toEqual([]);
    await expectHealthy(o.engine);
    expect((await o.store.verify()).problems).toEqual([]);
  });

  it('newer than the code: STORE_TOO_NEW, and not a byte is changed', async () => {
    await seed(path);
    await withRawDb(path, (db) => db.put(key('meta', 'schemaVersion'), packr.pack(99)));
    const before = await dumpDb(path);
    const error: unknown = await createEngine({
      store: new LevelStore({ path }),
      workflows: [flow, napper],
    }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(CairnError);
    expect(error).toMatchObject({
      code: 'STORE_TOO_NEW',
      details: { version: 99, supported: CURRENT_SCHEMA_VERSION },
    });
    expect(await dumpDb(path)).toEqual(before);
  });

  it('not a version number: the open is refused naming the key, and not a byte is changed', async () => {
    await seed(path);
    await withRawDb(path, (db) => db.put(key('meta', 'schemaVersion'), packr.pack('one')));
    const before = await dumpDb(path);
    const error: unknown = await createEngine({
      store: new LevelStore({ path }),
      workflows: [flow, napper],
    }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toMatchObject({
      code: 'CORRUPT_RECORD',
      details: { key: 'meta/schemaVersion' },
    });
    expect(await dumpDb(path)).toEqual(before);
  });
});

describe('a format-0 store opened by an engine', () => {
  // The workflows of the format-0 fixture: fetch, then by status a wait, a sleep or a payment.
  const APPROVAL = z.object({ approved: z.boolean(), by: z.string() });
  const legacy = ['expense-approval', 'onboarding', 'nightly-report'].flatMap((name) =>
    ['1', '2'].map((version) =>
      workflow(name, {
        version,
        input: z.object({ n: z.number(), note: z.string() }),
        async run(ctx, input) {
          await ctx.step('fetch', () => ({ rows: input.n % 7 }));
          if (input.n % 6 === 2) {
            const decision = await ctx.waitForInput('approve', { schema: APPROVAL });
            return { approved: decision.approved };
          }
          if (input.n % 6 === 1) await ctx.sleep('nap', 1);
          return { n: input.n };
        },
      }),
    ),
  );

  it('is migrated, its running runs recovered and its paused runs resumable', async () => {
    const fixture = v0Fixture(36);
    await writeV0Store(path, fixture);
    const byStatus = (status: string): V0Run[] => fixture.runs.filter((r) => r.status === status);
    const problems: CairnError[] = [];
    const store = new LevelStore({ path });
    const engine = await createEngine({
      store,
      workflows: legacy,
      on: { problem: (p) => problems.push(p.error) },
    });
    opened.push({ engine, store, problems: [] });
    expect(store.schemaVersion).toBe(CURRENT_SCHEMA_VERSION);
    expect(problems).toEqual([]);

    // pending (queued) and running runs were recovered and finish.
    for (const run of [...byStatus('pending'), ...byStatus('running')]) {
      const input = run.input as { n: number };
      expect(await engine.handle(run.id).result()).toEqual({ n: input.n });
    }
    // Paused runs stay paused until answered, then finish.
    const paused = byStatus('paused');
    expect(paused.length).toBeGreaterThan(0);
    const waiting = await engine.listWaiting({ limit: 100 });
    expect(waiting.items.map((w) => w.runId).sort()).toEqual(paused.map((r) => r.id).sort());
    expect(waiting.corrupt).toEqual([]);
    for (const run of paused) {
      expect((await engine.get(run.id)).status).toBe('paused');
      await engine.resumeTask(run.id, 'approve', { approved: true, by: 'migrated' });
      expect(await engine.handle(run.id).result()).toEqual({ approved: true });
    }
    // Ended runs are left as they were migrated.
    for (const [v0, status] of [
      ['done', 'completed'],
      ['failed', 'failed'],
      ['cancelled', 'cancelled'],
    ] as const) {
      for (const run of byStatus(v0)) expect((await engine.get(run.id)).status).toBe(status);
    }
    const report = await store.verify();
    expect(report.problems).toEqual([]);
    expect(report.runs).toBe(fixture.runs.length);
  });
});
