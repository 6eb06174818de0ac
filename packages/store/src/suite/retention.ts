import { expect, it } from 'vitest';
import type { Run, RunStatus } from '../records.js';
import type { PruneProgress } from '../retention.js';
import type { Store } from '../store.js';
import { expectCairnError, expectTypeError, type SuiteContext } from './context.js';
import { makeLog, makeRun, makeTask, makeWait } from './fixtures.js';
import { rawEntries, snapshot } from './snapshot.js';

const T0 = Date.UTC(2024, 5, 1);
const DAY = 86_400_000;
/** The cutoff the tests prune at. */
const CUTOFF = T0 + 100 * DAY;

interface Fixture {
  readonly old: Run[];
  readonly recent: Run[];
  readonly live: Run[];
}

/** A run with two steps, two log lines and (unless it ended) a wait and an inbox entry. */
async function addRun(store: Store, run: Run): Promise<Run> {
  const tasks = [makeTask(run, { taskId: 'a' }), makeTask(run, { taskId: 'b' })];
  if (run.status === 'paused') tasks.push(makeWait(run, { taskId: 'approve' }));
  await store.checkpoint({ runs: [run], tasks });
  await store.appendLogs([makeLog(run.id), makeLog(run.id)]);
  if (run.endedAt === null) await store.putInbox(run.id, 'later', { early: true });
  return run;
}

/** Terminal runs that ended before and after the cutoff, and runs that have not ended. */
async function fixture(store: Store): Promise<Fixture> {
  const old: Run[] = [];
  const recent: Run[] = [];
  const live: Run[] = [];
  const terminal: RunStatus[] = ['completed', 'failed', 'cancelled'];
  for (let i = 0; i < 12; i++) {
    const status = terminal[i % 3]!;
    const createdAt = T0 + i * DAY;
    old.push(
      await addRun(store, makeRun({ id: `old-${i}`, status, createdAt, endedAt: createdAt + DAY })),
    );
  }
  // Created before the cutoff but ended after it, and created after it.
  recent.push(
    await addRun(
      store,
      makeRun({ id: 'late-end', status: 'completed', createdAt: CUTOFF - DAY, endedAt: CUTOFF }),
    ),
    await addRun(store, makeRun({ id: 'new', status: 'failed', createdAt: CUTOFF + DAY })),
  );
  for (const status of ['queued', 'running', 'paused'] as const) {
    live.push(await addRun(store, makeRun({ id: `live-${status}`, status, createdAt: T0 })));
  }
  return { old, recent, live };
}

const ids = (runs: readonly Run[]) => runs.map((r) => r.id).sort();

async function storedIds(store: Store): Promise<string[]> {
  return (await store.listRuns({ limit: 1000 })).items.map((r) => r.id).sort();
}

export function retentionTests(ctx: SuiteContext): void {
  it('deletes terminal runs that ended before the cutoff, with all they had', async () => {
    const store = await ctx.open();
    const { old, recent, live } = await fixture(store);
    const result = await store.prune({ olderThan: CUTOFF });
    expect(result).toMatchObject({
      runs: 12,
      tasks: 24,
      logs: 24,
      inbox: 0,
      kept: 0,
      dryRun: false,
      corrupt: [],
    });
    // idx-all, -status, -workflow, -ns, -ns-status: five entries a run.
    expect(result.entries).toBe(12 * 5);
    expect(await storedIds(store)).toEqual(ids([...recent, ...live]));
    for (const run of old) {
      expect(await store.listTasks(run.id)).toEqual([]);
      expect(await store.readLogs(run.id)).toEqual([]);
    }
    expect(await store.verify()).toMatchObject({ ok: true, runs: 5 });
    const raw = await rawEntries(store);
    if (raw !== null) expect(raw.filter((line) => line.includes('old-'))).toEqual([]);
    if (store.supports.compaction) {
      expect(result).toMatchObject({ compacted: true, compactionSkipped: null });
    } else {
      expect(result.compacted).toBe(false);
      expect(result.compactionSkipped).toMatch(/compaction/);
    }
  });

  it('a dry run counts the same and changes nothing', async () => {
    const store = await ctx.open();
    await fixture(store);
    const before = await snapshot(store);
    const dry = await store.prune({ olderThan: CUTOFF, keep: 2, dryRun: true });
    expect(await snapshot(store)).toEqual(before);
    expect(dry).toMatchObject({ dryRun: true, compacted: false });
    const real = await store.prune({ olderThan: CUTOFF, keep: 2 });
    const counts = ({ runs, tasks, logs, inbox, entries, kept }: typeof dry) => ({
      runs,
      tasks,
      logs,
      inbox,
      entries,
      kept,
    });
    expect(counts(dry)).toEqual(counts(real));
  });

  it('keep: the newest N runs stay whatever their age', async () => {
    const store = await ctx.open();
    const { old, recent, live } = await fixture(store);
    // The two recent terminal runs are the newest; three old ones are kept with them.
    const result = await store.prune({ olderThan: CUTOFF, keep: 5 });
    expect(result).toMatchObject({ runs: 9, kept: 3 });
    const kept = old.slice(-3);
    expect(await storedIds(store)).toEqual(ids([...kept, ...recent, ...live]));
  });

  it('statuses: only runs with those statuses go', async () => {
    const store = await ctx.open();
    const { old } = await fixture(store);
    const result = await store.prune({ olderThan: CUTOFF, statuses: ['failed'] });
    expect(result.runs).toBe(4);
    const left = await storedIds(store);
    for (const run of old) expect(left.includes(run.id)).toBe(run.status !== 'failed');
  });

  it('a child is judged on its own: it stays when it does not qualify', async () => {
    const store = await ctx.open();
    const parent = await addRun(
      store,
      makeRun({ id: 'parent', status: 'completed', createdAt: T0, endedAt: T0 + DAY }),
    );
    const child = await addRun(
      store,
      makeRun({
        id: 'child',
        status: 'failed',
        parentRunId: parent.id,
        parentTaskId: 'sub',
        depth: 1,
        createdAt: T0,
        endedAt: T0 + DAY,
      }),
    );
    expect((await store.prune({ olderThan: CUTOFF, statuses: ['completed'] })).runs).toBe(1);
    expect(await store.getRun(child.id)).toEqual(child);
    expect(await store.getRun(parent.id)).toBeUndefined();
  });

  it('progress is reported as runs are deleted', async () => {
    const store = await ctx.open();
    await fixture(store);
    const progress: PruneProgress[] = [];
    await store.prune({ olderThan: CUTOFF, batchSize: 2, onProgress: (p) => progress.push(p) });
    const deletes = progress.filter((p) => p.phase !== 'compact');
    expect(deletes.length).toBeGreaterThanOrEqual(6);
    for (let i = 1; i < deletes.length; i++) {
      expect(deletes[i]!.runs).toBeGreaterThanOrEqual(deletes[i - 1]!.runs);
    }
    expect(deletes.at(-1)!.runs).toBe(12);
  });

  it('nothing to delete: nothing changes', async () => {
    const store = await ctx.open();
    await fixture(store);
    const before = await snapshot(store);
    const result = await store.prune({ olderThan: T0 });
    expect(result).toMatchObject({
      runs: 0,
      compacted: false,
      compactionSkipped: 'nothing was deleted',
    });
    expect(await snapshot(store)).toEqual(before);
  });

  it('bad options are refused', async () => {
    const store = await ctx.open();
    await expectTypeError(() => store.prune(undefined as never));
    await expectTypeError(() => store.prune({} as never));
    await expectCairnError(() => store.prune({ olderThan: Number.NaN }), 'INVALID_ARGUMENT');
    await expectCairnError(() => store.prune({ olderThan: 1, keep: -1 }), 'INVALID_ARGUMENT');
    await expectCairnError(() => store.prune({ olderThan: 1, keep: 1.5 }), 'INVALID_ARGUMENT');
    await expectCairnError(
      () => store.prune({ olderThan: 1, statuses: ['running' as never] }),
      'INVALID_ARGUMENT',
    );
    await expectTypeError(() => store.prune({ olderThan: 1, dryRun: 'yes' as never }));
  });
}
