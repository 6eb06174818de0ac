import { storePort } from '../engine-port.js';
import { expect, it } from 'vitest';
import { faults } from '../faults.js';
import { RUN_STATUSES, type Run, type RunStatus } from '../records.js';
import { type Store } from '../store.js';
import type { SuiteContext } from './context.js';
import { makeRun, withStatus } from './fixtures.js';

/** The statuses whose listing holds `runId` (exactly one when the indexes are right). */
async function listedUnder(store: Store, runId: string): Promise<RunStatus[]> {
  const found: RunStatus[] = [];
  for (const status of RUN_STATUSES) {
    const page = await store.listRuns({ status, limit: 1000 });
    if (page.items.some((r) => r.id === runId)) found.push(status);
  }
  return found;
}

async function expectIndexed(store: Store, run: Run): Promise<void> {
  expect(await listedUnder(store, run.id)).toEqual([run.status]);
  expect((await store.getRun(run.id))?.status).toBe(run.status);
  expect((await store.verify()).problems).toEqual([]);
}

/** Writes `run` through the engine's path (`created`: a new run). */
function write(store: Store, run: Run, created = false): Promise<void> {
  return storePort(store).write({ runs: [run] }, { durable: true, created: created });
}

/** A run created, then paused, through the engine's path. */
async function pausedRun(store: Store): Promise<Run> {
  const run = makeRun({ status: 'running' });
  await write(store, run, true);
  const paused = withStatus(run, 'paused');
  await write(store, paused);
  return paused;
}

/**
 * The engine's write path (its port, `storePort(store).write`): a store may write a run's later states
 * with fewer index entries than a full write, but a listing by status must find the run under
 * its status only, whatever happened in between.
 */
export function enginePathTests(ctx: SuiteContext): void {
  it('a run created, moved through its statuses and ended is listed under its status only', async () => {
    const store = await ctx.open();
    let run = makeRun({ status: 'running' });
    await write(store, run, true);
    await expectIndexed(store, run);
    for (const status of ['paused', 'running', 'paused', 'running', 'completed'] as const) {
      run = withStatus(run, status);
      await write(store, run);
      await expectIndexed(store, run);
    }
  });

  it('a write that failed leaves the next one to put the indexes right', async () => {
    const store = await ctx.open();
    let run = makeRun({ status: 'running' });
    await write(store, run, true);
    faults.arm('commit.before-write', 'throw', { times: 1 });
    const failed = withStatus(run, 'paused');
    try {
      await expect(storePort(store).write({ runs: [failed] }, { durable: true })).rejects.toThrow();
    } finally {
      faults.disarm('commit.before-write');
    }
    await expectIndexed(store, run);
    run = withStatus(run, 'cancelled');
    await write(store, run);
    await expectIndexed(store, run);
  });

  it('writes issued together, without waiting, end with the last status only', async () => {
    const store = await ctx.open();
    const run = makeRun({ status: 'running' });
    await write(store, run, true);
    const paused = withStatus(run, 'paused');
    const resumed = withStatus(paused, 'running');
    const failed = withStatus(resumed, 'failed');
    const first = storePort(store).write({ runs: [paused] }, { durable: true });
    // The next ones are issued while the first is being written, then in a later batch.
    await new Promise((resolve) => setImmediate(resolve));
    const second = storePort(store).write({ runs: [resumed] }, { durable: true });
    const third = storePort(store).write({ runs: [failed] }, { durable: true });
    await Promise.all([first, second, third]);
    await expectIndexed(store, failed);
  });

  it('a change through the public checkpoint between engine writes is not lost', async () => {
    const store = await ctx.open();
    const paused = await pausedRun(store);
    const byHand = withStatus(paused, 'running');
    await store.checkpoint({ runs: [byHand] });
    await expectIndexed(store, byHand);
    const done = withStatus(byHand, 'completed');
    await write(store, done);
    await expectIndexed(store, done);
  });

  it('an engine write in flight when a public write drops the run from following is not counted again', async () => {
    const store = await ctx.open();
    const run = makeRun({ status: 'running' });
    await write(store, run, true);
    // In flight together: an engine write, a public one (the run is no longer followed), and
    // an engine write that starts following it afresh.
    const paused = withStatus(run, 'paused');
    const byHand = withStatus(paused, 'running');
    await Promise.all([
      storePort(store).write({ runs: [paused] }, { durable: true }),
      store.checkpoint({ runs: [byHand] }),
      storePort(store).write({ runs: [withStatus(byHand, 'paused')] }, { durable: true }),
    ]);
    const resumed = withStatus(withStatus(byHand, 'paused'), 'running');
    const done = withStatus(resumed, 'completed');
    await Promise.all([
      storePort(store).write({ runs: [resumed] }, { durable: true }),
      storePort(store).write({ runs: [done] }, { durable: true }),
    ]);
    await expectIndexed(store, done);
  });

  it('a run deleted and imported again (an older copy) is indexed as imported', async () => {
    const store = await ctx.open();
    const paused = await pausedRun(store);
    const lines: string[] = [];
    await store.exportRuns((line) => void lines.push(line));
    await write(store, withStatus(paused, 'running'));
    await store.deleteRun(paused.id);
    expect(await listedUnder(store, paused.id)).toEqual([]);
    await store.importRuns(lines);
    await expectIndexed(store, paused);
    const done = withStatus(paused, 'completed');
    await write(store, done);
    await expectIndexed(store, done);
  });

  it('a run reopened in a new store is written in full the first time', async () => {
    let store = await ctx.open();
    const paused = await pausedRun(store);
    store = await ctx.reopen(store);
    const resumed = withStatus(paused, 'running');
    await write(store, resumed);
    await expectIndexed(store, resumed);
  });
}
