import { expect, it } from 'vitest';
import type { Run } from '../records.js';
import { storePort } from '../engine-port.js';
import type { Store } from '../store.js';
import { itIf, type SuiteContext } from './context.js';
import { exportLines } from './export-import.js';
import { makeRun, makeTask, makeWait, withStatus } from './fixtures.js';

const NOT_SOLE =
  'the backend may share its data with other writers (supports.locking is false): it cannot tell';
const SOLE = 'the backend is the only writer of its data (supports.locking): it can tell';

/** A paused run waiting at `approve`, with a completed step and an inbox entry for `later`. */
async function pausedRun(store: Store, overrides: Partial<Run> = {}): Promise<Run> {
  const run = makeRun({ status: 'running', ...overrides });
  await store.createRun(run);
  const wait = makeWait(run, { taskId: 'approve' });
  const paused = { ...withStatus(run, 'paused'), pausedTaskId: wait.taskId };
  await store.checkpoint({
    runs: [paused],
    tasks: [makeTask(run, { taskId: 'score' }), wait],
  });
  await store.putInbox(run.id, 'later', { early: true });
  return paused;
}

/**
 * The engine's change tracking (the port's `changes`: `watch`, `unchanged`, `unwatch`): a run
 * followed since a stamp is reported unchanged only while nothing wrote it. A store that is
 * its data's only writer (it locks its location) must be able to tell; any other store must
 * always report a change, since it cannot know what other writers did.
 */
export function changeTrackingTests(ctx: SuiteContext): void {
  const sole = ctx.supports.locking;
  const soleOnly = itIf(sole, NOT_SOLE);
  const sharedOnly = itIf(!sole, SOLE);

  /**
   * `watch`: a stamp where the store can tell, null where it cannot (then -1 here, which
   * no run is ever given).
   */
  function watch(store: Store, runId: string): number {
    const stamp = storePort(store).changes.watch(runId);
    expect(stamp === null).toBe(!sole);
    return stamp ?? -1;
  }

  /** Follows `run` and a bystander run, applies `write`, and checks that only `run` changed. */
  async function expectWriteCounts(
    write: (store: Store, run: Run, other: Run) => Promise<unknown>,
    prepare: (store: Store) => Promise<{ run: Run; other: Run }> = async (store) => ({
      run: await pausedRun(store),
      other: await pausedRun(store),
    }),
  ): Promise<void> {
    const store = await ctx.open();
    const { run, other } = await prepare(store);
    const stamp = watch(store, run.id);
    const otherStamp = watch(store, other.id);
    expect(storePort(store).changes.unchanged(run.id, stamp)).toBe(sole);
    await write(store, run, other);
    expect(storePort(store).changes.unchanged(run.id, stamp)).toBe(false);
    // The write touched `run` only: the bystander is still unchanged where the store can tell.
    expect(storePort(store).changes.unchanged(other.id, otherStamp)).toBe(sole);
  }

  it('a watched run is unchanged until something writes it', async () => {
    const store = await ctx.open();
    const run = await pausedRun(store);
    const stamp = watch(store, run.id);
    expect(storePort(store).changes.unchanged(run.id, stamp)).toBe(sole);
    // Reads change nothing.
    await store.getRun(run.id);
    await store.listTasks(run.id);
    await store.getTask(run.id, 'approve');
    await store.listInbox(run.id);
    await store.getInbox(run.id, 'later');
    await store.listWaiting({ runId: run.id });
    await store.listRuns({ status: 'paused' });
    await store.dueTimers(Number.MAX_SAFE_INTEGER);
    await exportLines(store);
    expect(storePort(store).changes.unchanged(run.id, stamp)).toBe(sole);
  });

  it('a run never watched, or asked with a stamp it was not given, is changed', async () => {
    const store = await ctx.open();
    const [a, b] = [await pausedRun(store), await pausedRun(store)];
    const stampA = watch(store, a.id);
    const stampB = watch(store, b.id);
    if (sole) expect(stampB).not.toBe(stampA);
    expect(storePort(store).changes.unchanged(a.id, stampB)).toBe(false);
    expect(storePort(store).changes.unchanged(b.id, stampA)).toBe(false);
    const never = makeRun();
    expect(storePort(store).changes.unchanged(never.id, stampA)).toBe(false);
    expect(storePort(store).changes.unchanged(a.id, stampA)).toBe(sole);
    expect(storePort(store).changes.unchanged(b.id, stampB)).toBe(sole);
  });

  it('createRun of the watched id counts as a write', async () => {
    const store = await ctx.open();
    const run = makeRun();
    const other = await pausedRun(store);
    const stamp = watch(store, run.id);
    const otherStamp = watch(store, other.id);
    expect(storePort(store).changes.unchanged(run.id, stamp)).toBe(sole);
    await store.createRun(run);
    expect(storePort(store).changes.unchanged(run.id, stamp)).toBe(false);
    expect(storePort(store).changes.unchanged(other.id, otherStamp)).toBe(sole);
  });

  it('checkpoint of the run record counts as a write', async () => {
    await expectWriteCounts((store, run) =>
      store.checkpoint({ runs: [{ ...run, updatedAt: run.updatedAt + 1 }] }),
    );
  });

  it('checkpoint of one of its tasks only counts as a write', async () => {
    await expectWriteCounts((store, run) =>
      store.checkpoint({ tasks: [makeTask(run, { taskId: 'another-step' })] }),
    );
  });

  it('checkpoint that only takes one of its inbox entries counts as a write', async () => {
    await expectWriteCounts((store, run) =>
      store.checkpoint({ inboxTaken: [{ runId: run.id, taskId: 'later' }] }),
    );
  });

  it('a soft checkpoint (durable: false) counts as a write', async () => {
    await expectWriteCounts((store, run) =>
      store.checkpoint(
        { tasks: [makeTask(run, { taskId: 'soft', status: 'running' })] },
        { durable: false },
      ),
    );
  });

  it("the engine's write path counts: its run record", async () => {
    await expectWriteCounts((store, run) =>
      storePort(store).write({ runs: [withStatus(run, 'running')] }, { durable: true }),
    );
  });

  it("the engine's write path counts: one of its tasks", async () => {
    await expectWriteCounts((store, run) =>
      storePort(store).write(
        { tasks: [makeTask(run, { taskId: 'another-step' })] },
        { durable: false },
      ),
    );
  });

  it("the engine's write path counts: one of its inbox entries taken", async () => {
    await expectWriteCounts((store, run) =>
      storePort(store).write(
        { inboxTaken: [{ runId: run.id, taskId: 'later' }] },
        { durable: true },
      ),
    );
  });

  it("the engine's write path counts: a new run (created)", async () => {
    await expectWriteCounts(
      (store, run) => storePort(store).write({ runs: [run] }, { durable: true, created: true }),
      async (store) => ({ run: makeRun({ status: 'running' }), other: await pausedRun(store) }),
    );
  });

  it('putInbox counts as a write', async () => {
    await expectWriteCounts((store, run) => store.putInbox(run.id, 'another', { n: 1 }));
  });

  it('takeInbox counts as a write', async () => {
    await expectWriteCounts(async (store, run) => {
      expect(await store.takeInbox(run.id, 'later')).toMatchObject({ data: { early: true } });
    });
  });

  it('deleteRun counts as a write', async () => {
    await expectWriteCounts(async (store, run) => {
      expect(await store.deleteRun(run.id)).toBe(true);
    });
  });

  it('prune counts as a write of the runs it deletes, not of the others', async () => {
    await expectWriteCounts(
      async (store, run) => {
        const result = await store.prune({ olderThan: run.endedAt! + 1 });
        expect(result.runs).toBe(1);
        expect(await store.getRun(run.id)).toBeUndefined();
      },
      async (store) => {
        const run = makeRun({ status: 'completed' });
        await store.checkpoint({ runs: [run], tasks: [makeTask(run)] });
        // Paused: not prunable, so it stays.
        return { run, other: await pausedRun(store) };
      },
    );
  });

  soleOnly('a dry-run prune writes nothing and counts as no write', async () => {
    const store = await ctx.open();
    const run = makeRun({ status: 'completed' });
    await store.checkpoint({ runs: [run], tasks: [makeTask(run)] });
    const stamp = watch(store, run.id);
    const result = await store.prune({ olderThan: run.endedAt! + 1, dryRun: true });
    expect(result).toMatchObject({ dryRun: true, runs: 1 });
    expect(await store.getRun(run.id)).toEqual(run);
    expect(storePort(store).changes.unchanged(run.id, stamp)).toBe(true);
    // The real prune then does.
    await store.prune({ olderThan: run.endedAt! + 1 });
    expect(storePort(store).changes.unchanged(run.id, stamp)).toBe(false);
  });

  it('importRuns counts as a write of the runs it imports', async () => {
    const source = await ctx.open();
    const run = await pausedRun(source);
    const lines = await exportLines(source);
    await expectWriteCounts(
      async (store) => {
        expect((await store.importRuns(lines)).runs).toBe(1);
        expect(await store.getRun(run.id)).toEqual(run);
      },
      async (store) => ({ run, other: await pausedRun(store) }),
    );
  });

  soleOnly('writes to other runs leave a watched run unchanged', async () => {
    const store = await ctx.open();
    const run = await pausedRun(store);
    const other = await pausedRun(store);
    const stamp = watch(store, run.id);
    const fresh = makeRun({ status: 'running' });
    await store.createRun(fresh);
    await store.checkpoint({
      runs: [withStatus(other, 'running')],
      tasks: [makeTask(other, { taskId: 'x' })],
      inboxTaken: [{ runId: other.id, taskId: 'later' }],
    });
    await storePort(store).write({ runs: [withStatus(fresh, 'paused')] }, { durable: true });
    await store.putInbox(other.id, 'approve', { approved: true, by: 'ada' });
    await store.takeInbox(other.id, 'approve');
    const source = await ctx.open();
    const imported = await pausedRun(source);
    await store.importRuns(await exportLines(source));
    expect(await store.getRun(imported.id)).toEqual(imported);
    expect(await store.deleteRun(other.id)).toBe(true);
    const done = makeRun({ status: 'completed' });
    await store.createRun(done);
    expect((await store.prune({ olderThan: done.endedAt! + 1 })).runs).toBe(1);
    expect(storePort(store).changes.unchanged(run.id, stamp)).toBe(true);
  });

  it('watching again gives a new stamp; the old one is then reported changed', async () => {
    const store = await ctx.open();
    const run = await pausedRun(store);
    const first = watch(store, run.id);
    const second = watch(store, run.id);
    if (sole) expect(second).not.toBe(first);
    expect(storePort(store).changes.unchanged(run.id, first)).toBe(false);
    expect(storePort(store).changes.unchanged(run.id, second)).toBe(sole);
    // After a write, a new watch starts afresh.
    await store.putInbox(run.id, 'another', 1);
    expect(storePort(store).changes.unchanged(run.id, second)).toBe(false);
    const third = watch(store, run.id);
    expect(storePort(store).changes.unchanged(run.id, third)).toBe(sole);
  });

  it('an unwatched run is reported changed, and writes to it are not followed', async () => {
    const store = await ctx.open();
    const run = await pausedRun(store);
    const other = await pausedRun(store);
    const stamp = watch(store, run.id);
    const otherStamp = watch(store, other.id);
    storePort(store).changes.unwatch(run.id);
    expect(storePort(store).changes.unchanged(run.id, stamp)).toBe(false);
    // Unwatching one run leaves the others followed; unwatching twice is harmless.
    storePort(store).changes.unwatch(run.id);
    storePort(store).changes.unwatch(makeRun().id);
    expect(storePort(store).changes.unchanged(other.id, otherStamp)).toBe(sole);
    await store.putInbox(run.id, 'another', 1);
    expect(storePort(store).changes.unchanged(run.id, stamp)).toBe(false);
    expect(storePort(store).changes.unchanged(other.id, otherStamp)).toBe(sole);
  });

  it('closing the store, and opening it again, reports every watched run changed', async () => {
    const store = await ctx.open();
    const run = await pausedRun(store);
    const stamp = watch(store, run.id);
    expect(storePort(store).changes.unchanged(run.id, stamp)).toBe(sole);
    await store.close();
    expect(storePort(store).changes.unchanged(run.id, stamp)).toBe(false);
    await store.open();
    expect(await store.getRun(run.id)).toEqual(run);
    expect(storePort(store).changes.unchanged(run.id, stamp)).toBe(false);
    // Followed afresh after the reopen.
    const again = watch(store, run.id);
    if (sole) expect(again).not.toBe(stamp);
    expect(storePort(store).changes.unchanged(run.id, again)).toBe(sole);
  });

  it('a new store over the same data knows nothing of what the old one followed', async () => {
    const store = await ctx.open();
    const run = await pausedRun(store);
    const stamp = watch(store, run.id);
    const next = await ctx.reopen(store);
    expect(storePort(next).changes.unchanged(run.id, stamp)).toBe(false);
    const fresh = watch(next, run.id);
    expect(storePort(next).changes.unchanged(run.id, fresh)).toBe(sole);
  });

  sharedOnly('a store that may share its data follows nothing, and reports a change', async () => {
    const store = await ctx.open();
    const run = await pausedRun(store);
    const stamp = watch(store, run.id);
    expect(storePort(store).changes.unchanged(run.id, stamp)).toBe(false);
    await store.getRun(run.id);
    expect(storePort(store).changes.unchanged(run.id, stamp)).toBe(false);
    const again = watch(store, run.id);
    expect(storePort(store).changes.unchanged(run.id, again)).toBe(false);
  });
}
