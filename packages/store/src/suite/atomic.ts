import { expect, it } from 'vitest';
import { CairnError } from '../errors.js';
import { faults } from '../faults.js';
import { PREFIX } from '../keys.js';
import { LevelBackedStore } from '../level-backed-store.js';
import { RUN_STATUSES, type Run, type Task } from '../records.js';
import type { Store } from '../store.js';
import { expectCairnError, itIf, type SuiteContext } from './context.js';
import { finished, makeRun, makeSleep, makeTask, makeWait, withStatus } from './fixtures.js';
import { rawEntries, snapshot } from './snapshot.js';

const NOT_LEVEL = 'the backend is not a LevelBackedStore (needs raw batches)';

/** Makes every batch the raw database writes fail, until the returned function is called. */
export function failBatches(store: Store): () => void {
  if (!(store instanceof LevelBackedStore)) throw new Error('failBatches needs a LevelBackedStore');
  const injected = (): Error =>
    Object.assign(new Error('Injected write failure'), { code: 'LEVEL_IO_ERROR' });
  if (store.writesThroughLog) {
    // A batch is written when the store's log appends it: that append fails.
    faults.arm('log.append', 'throw', { error: injected });
    return () => faults.disarm('log.append');
  }
  const db = store.level as unknown as { batch: (...args: unknown[]) => unknown };
  const original = db.batch;
  db.batch = function (this: unknown, ...args: unknown[]) {
    const batch = original.apply(this, args) as {
      write: (...a: unknown[]) => Promise<void>;
      close: () => Promise<void>;
    };
    batch.write = async () => {
      await batch.close();
      throw injected();
    };
    return batch;
  };
  return () => {
    db.batch = original;
  };
}

function batches(store: Store): number {
  return (store as LevelBackedStore).batchesWritten;
}

/** A run that starts paused at a wait: the kind of checkpoint the engine writes most. */
function pauseAtWait(run: Run): { runs: Run[]; tasks: Task[] } {
  const wait = makeWait(run, { taskId: 'approve' });
  return {
    runs: [{ ...withStatus(run, 'paused'), pausedTaskId: wait.taskId }],
    tasks: [makeTask(run, { taskId: 'score' }), wait, makeSleep(run, { taskId: 'nap' })],
  };
}

export function atomicTests(ctx: SuiteContext): void {
  it("a checkpoint's run, tasks, index entries and inbox removal land together", async () => {
    const store = await ctx.open();
    const run = makeRun({ namespace: 'acme' });
    await store.createRun(run);
    await store.putInbox(run.id, 'early', { approved: true });
    const change = pauseAtWait(run);
    await store.checkpoint({ ...change, inboxTaken: [{ runId: run.id, taskId: 'early' }] });
    expect(await store.getRun(run.id)).toEqual(change.runs[0]);
    expect(await store.listTasks(run.id)).toEqual([...change.tasks].sort((a, b) => a.seq - b.seq));
    expect((await store.listRuns({ status: 'paused' })).items).toEqual(change.runs);
    expect((await store.listRuns({ namespace: 'acme', status: 'paused' })).items).toEqual(
      change.runs,
    );
    expect((await store.listRuns({ status: 'running' })).items).toEqual([]);
    expect((await store.listWaiting()).items).toEqual(
      change.tasks.filter((t) => t.kind === 'wait'),
    );
    expect((await store.dueTimers(Number.MAX_SAFE_INTEGER)).map((t) => t.taskId).sort()).toEqual([
      'approve',
      'nap',
    ]);
    expect(await store.getInbox(run.id, 'early')).toBeUndefined();
    expect(await store.verify()).toMatchObject({ ok: true, runs: 1, tasks: 3, problems: [] });
  });

  itIf(ctx.levelBacked, NOT_LEVEL)('a checkpoint is written as one batch', async () => {
    const store = await ctx.open();
    const run = makeRun();
    await store.createRun(run);
    await store.putInbox(run.id, 'early', 1);
    const before = batches(store);
    await store.checkpoint({
      ...pauseAtWait(run),
      inboxTaken: [{ runId: run.id, taskId: 'early' }],
    });
    expect(batches(store)).toBe(before + 1);
  });

  itIf(ctx.levelBacked, NOT_LEVEL)(
    'a checkpoint whose batch fails is WRITE_FAILED and leaves nothing behind',
    async () => {
      const store = await ctx.open();
      const run = makeRun();
      await store.createRun(run);
      await store.putInbox(run.id, 'early', 1);
      const before = await snapshot(store);
      const restore = failBatches(store);
      try {
        const error = await expectCairnError(
          () =>
            store.checkpoint({
              ...pauseAtWait(run),
              inboxTaken: [{ runId: run.id, taskId: 'early' }],
            }),
          'WRITE_FAILED',
        );
        expect(error.cause).toBeInstanceOf(Error);
      } finally {
        restore();
      }
      expect(await snapshot(store)).toEqual(before);
      // The store carries on once the fault is gone.
      await store.checkpoint(pauseAtWait(run));
      expect((await store.getRun(run.id))?.status).toBe('paused');
      expect((await store.verify()).ok).toBe(true);
    },
  );

  it('stale index entries go when a status changes, through every status', async () => {
    const store = await ctx.open();
    let run = makeRun({ status: 'queued' });
    await store.createRun(run);
    const path = ['running', 'paused', 'running', 'paused', 'cancelled'] as const;
    for (const status of path) {
      run = withStatus(run, status);
      await store.checkpoint({ runs: [run] });
      const report = await store.verify();
      expect(report.problems).toEqual([]);
      const raw = await rawEntries(store);
      if (raw !== null) {
        // One entry in each of the five run indexes, whatever the history.
        expect(report.entries).toBe(5);
        const statusKeys = raw.filter((line) => line.startsWith(`${PREFIX.idxStatus}/`));
        expect(statusKeys).toHaveLength(1);
        expect(statusKeys[0]!.startsWith(`${PREFIX.idxStatus}/${status}/`)).toBe(true);
      }
    }
    for (const status of RUN_STATUSES) {
      expect((await store.listRuns({ status })).items.length).toBe(status === 'cancelled' ? 1 : 0);
    }
  });

  itIf(ctx.levelBacked, NOT_LEVEL)(
    'group commit: checkpoints issued in the same tick are written as one batch',
    async () => {
      const store = await ctx.open();
      const runs = Array.from({ length: 20 }, () => makeRun());
      await store.checkpoint({ runs });
      const before = batches(store);
      await Promise.all(
        runs.map((run, i) =>
          store.checkpoint(
            { runs: [withStatus(run, 'completed')], tasks: [makeTask(run)] },
            { durable: i % 2 === 0 },
          ),
        ),
      );
      expect(batches(store)).toBe(before + 1);
      expect((await store.listRuns({ status: 'completed', limit: 1000 })).items).toHaveLength(20);
      expect(await store.verify()).toMatchObject({ ok: true, runs: 20, tasks: 20 });
    },
  );

  it('checkpoints of one record in the same tick: the last one wins, entries and all', async () => {
    const store = await ctx.open();
    const run = makeRun();
    await store.createRun(run);
    const wait = makeWait(run);
    const done = finished(wait);
    const paused = { ...withStatus(run, 'paused'), pausedTaskId: wait.taskId };
    const resumed = withStatus(paused, 'running');
    await Promise.all([
      store.checkpoint({ runs: [paused], tasks: [wait] }),
      store.checkpoint({ runs: [resumed], tasks: [done] }),
    ]);
    expect(await store.getRun(run.id)).toEqual(resumed);
    expect(await store.getTask(run.id, wait.taskId)).toEqual(done);
    expect((await store.listWaiting()).items).toEqual([]);
    expect(await store.dueTimers(Number.MAX_SAFE_INTEGER)).toEqual([]);
    expect((await store.listRuns({ status: 'paused' })).items).toEqual([]);
    expect((await store.verify()).ok).toBe(true);
    // And the other way round.
    await Promise.all([
      store.checkpoint({ runs: [resumed], tasks: [done] }),
      store.checkpoint({ runs: [paused], tasks: [wait] }),
    ]);
    expect(await store.getRun(run.id)).toEqual(paused);
    expect((await store.listWaiting()).items).toEqual([wait]);
    expect((await store.verify()).ok).toBe(true);
  });

  it('a checkpoint that is refused does not stop others issued in the same tick', async () => {
    const store = await ctx.open();
    const a = makeRun();
    const b = makeRun();
    await store.checkpoint({ runs: [a, b] });
    const results = await Promise.allSettled([
      store.checkpoint({ runs: [withStatus(a, 'completed')] }),
      store.checkpoint({ runs: [withStatus(b, 'completed')], tasks: [makeTask(b, { seq: -1 })] }),
      store.checkpoint({ tasks: [makeTask(a, { output: () => 1 })] }),
      store.checkpoint({ tasks: [makeTask(a, { taskId: 'ok' })] }),
    ]);
    expect(results.map((r) => r.status)).toEqual([
      'fulfilled',
      'rejected',
      'rejected',
      'fulfilled',
    ]);
    const codes = results.map((r) => (r.status === 'rejected' ? (r.reason as CairnError).code : 0));
    expect(codes).toEqual([0, 'INVALID_ARGUMENT', 'NOT_SERIALIZABLE', 0]);
    expect((await store.getRun(a.id))?.status).toBe('completed');
    expect(await store.getRun(b.id)).toEqual(b);
    expect((await store.listTasks(a.id)).map((t) => t.taskId)).toEqual(['ok']);
    expect(await store.listTasks(b.id)).toEqual([]);
    expect((await store.verify()).ok).toBe(true);
  });

  itIf(ctx.levelBacked, NOT_LEVEL)(
    'a failed batch fails every checkpoint in it, and none of them lands',
    async () => {
      const store = await ctx.open();
      const runs = Array.from({ length: 3 }, () => makeRun());
      await store.checkpoint({ runs });
      const before = await snapshot(store);
      const restore = failBatches(store);
      let results: PromiseSettledResult<void>[];
      try {
        results = await Promise.allSettled(
          runs.map((run) => store.checkpoint({ runs: [withStatus(run, 'failed')] })),
        );
      } finally {
        restore();
      }
      for (const r of results) {
        expect(r.status).toBe('rejected');
        expect((r as PromiseRejectedResult).reason).toBeInstanceOf(CairnError);
        expect(((r as PromiseRejectedResult).reason as CairnError).code).toBe('WRITE_FAILED');
      }
      expect(await snapshot(store)).toEqual(before);
    },
  );

  it('checkpoints issued while a batch is being written land after it, in order', async () => {
    const store = await ctx.open();
    let run = makeRun();
    await store.createRun(run);
    const writes: Promise<void>[] = [];
    const states: Run[] = [];
    for (let i = 0; i < 12; i++) {
      run = withStatus(run, i % 2 === 0 ? 'paused' : 'running', { recoveries: i });
      states.push(run);
      writes.push(store.checkpoint({ runs: [run], tasks: [makeTask(run, { taskId: `t${i}` })] }));
      if (i % 3 === 2) await new Promise((resolve) => setImmediate(resolve));
    }
    await Promise.all(writes);
    expect(await store.getRun(run.id)).toEqual(states.at(-1));
    expect(await store.listTasks(run.id)).toHaveLength(12);
    expect((await store.listRuns({ status: run.status })).items).toEqual([run]);
    expect((await store.verify()).ok).toBe(true);
  });

  itIf(ctx.levelBacked, NOT_LEVEL)('index keys name the record they derive from', async () => {
    const store = await ctx.open();
    const run = makeRun({ workflow: 'wf', namespace: 'ns', status: 'paused' });
    await store.createRun(run);
    const raw = (await rawEntries(store))!.map((line) => line.slice(0, line.indexOf('=')));
    const idx = raw.filter((k) => k.startsWith('idx-'));
    expect(idx).toHaveLength(5);
    for (const k of idx) expect(k.endsWith(`/${run.id}`)).toBe(true);
    expect(idx.some((k) => k.startsWith(`${PREFIX.idxWorkflow}/wf/`))).toBe(true);
    expect(idx.some((k) => k.startsWith(`${PREFIX.idxNamespaceStatus}/ns/paused/`))).toBe(true);
  });
}
