import { expect, it } from 'vitest';
import { RUN_STATUSES, type Run, type Task } from '../records.js';
import type { Store } from '../store.js';
import type { ListRunsQuery } from '../store-types.js';
import { allPages, type SuiteContext } from './context.js';
import { finished, makeRun, makeSleep, makeTask, makeWait, withStatus } from './fixtures.js';

/** Newest first; runs created in the same millisecond by id, highest first. */
function newestFirst(a: Run, b: Run): number {
  return b.createdAt - a.createdAt || (a.id < b.id ? 1 : a.id > b.id ? -1 : 0);
}

function byKey(a: Task, b: Task): number {
  const x = `${a.runId}\u0000${a.taskId}`;
  const y = `${b.runId}\u0000${b.taskId}`;
  return x < y ? -1 : x > y ? 1 : 0;
}

function matches(run: Run, query: ListRunsQuery): boolean {
  return (
    (query.status === undefined || run.status === query.status) &&
    (query.workflow === undefined || run.workflow === query.workflow) &&
    (query.namespace === undefined || run.namespace === query.namespace)
  );
}

const WORKFLOWS = ['expense-approval', 'onboarding', 'expense'];
const NAMESPACES = ['acme', 'globex'];

/** 60 runs across statuses, workflows and namespaces; a few share a creation time. */
async function seedRuns(store: Store): Promise<Run[]> {
  const runs: Run[] = [];
  for (let i = 0; i < 60; i++) {
    const status = RUN_STATUSES[(i * 7) % RUN_STATUSES.length]!;
    const base = makeRun({
      status,
      workflow: WORKFLOWS[i % WORKFLOWS.length]!,
      namespace: NAMESPACES[Math.floor(i / 5) % NAMESPACES.length]!,
    });
    runs.push(i % 10 === 9 ? { ...base, createdAt: runs[i - 1]!.createdAt } : base);
  }
  // Written out of creation order, in one checkpoint and in several.
  const shuffled = [...runs].reverse();
  await store.checkpoint({ runs: shuffled.slice(0, 30) });
  for (const run of shuffled.slice(30)) await store.createRun(run);
  return runs;
}

const QUERIES: ListRunsQuery[] = [
  {},
  { status: 'running' },
  { status: 'paused' },
  { status: 'completed' },
  { workflow: 'expense' },
  { workflow: 'expense-approval' },
  { namespace: 'acme' },
  { namespace: 'globex', status: 'failed' },
  { workflow: 'onboarding', status: 'queued' },
  { workflow: 'expense', namespace: 'acme' },
  { workflow: 'onboarding', namespace: 'globex', status: 'cancelled' },
  { status: 'queued', namespace: 'nobody' },
];

export function indexTests(ctx: SuiteContext): void {
  it('listRuns by each index returns the matching runs, newest first', async () => {
    const store = await ctx.open();
    const runs = await seedRuns(store);
    for (const query of QUERIES) {
      const page = await store.listRuns({ ...query, limit: 1000 });
      const expected = runs.filter((r) => matches(r, query)).sort(newestFirst);
      expect(page.items, JSON.stringify(query)).toEqual(expected);
      expect(page.cursor).toBeNull();
      expect(page.corrupt).toEqual([]);
    }
  });

  it('cursor pagination walks every index with no duplicates or gaps', async () => {
    const store = await ctx.open();
    const runs = await seedRuns(store);
    for (const query of QUERIES) {
      for (const limit of [1, 3, 7, 1000]) {
        const pages = await allPages((cursor) => store.listRuns({ ...query, limit, cursor }));
        for (const page of pages) expect(page.length).toBeLessThanOrEqual(limit);
        const expected = runs.filter((r) => matches(r, query)).sort(newestFirst);
        expect(pages.flat(), `${JSON.stringify(query)} limit ${limit}`).toEqual(expected);
        if (expected.length > limit && query.workflow === undefined) {
          // One index per query: every page but the last is full.
          for (const page of pages.slice(0, -1)) expect(page).toHaveLength(limit);
        }
      }
    }
  });

  it('a listing that ends on a page boundary says so: the last cursor is null', async () => {
    const store = await ctx.open();
    const runs = Array.from({ length: 6 }, () => makeRun());
    await store.checkpoint({ runs });
    const first = await store.listRuns({ limit: 3 });
    expect(first.items).toHaveLength(3);
    expect(first.cursor).not.toBeNull();
    const second = await store.listRuns({ limit: 3, cursor: first.cursor });
    expect(second.items).toHaveLength(3);
    expect(second.cursor).toBeNull();
    expect([...first.items, ...second.items]).toEqual([...runs].sort(newestFirst));
  });

  it('limit defaults to 100', async () => {
    const store = await ctx.open();
    const runs = Array.from({ length: 105 }, () => makeRun({ status: 'queued' }));
    await store.checkpoint({ runs });
    const page = await store.listRuns();
    expect(page.items).toHaveLength(100);
    expect(page.cursor).not.toBeNull();
    const rest = await store.listRuns({ cursor: page.cursor });
    expect(rest.items).toHaveLength(5);
    expect(rest.cursor).toBeNull();
  });

  it('pagination stays exact while runs are created, changed and deleted between pages', async () => {
    const store = await ctx.open();
    const runs = Array.from({ length: 12 }, () => makeRun());
    await store.checkpoint({ runs });
    const sorted = [...runs].sort(newestFirst);
    const first = await store.listRuns({ limit: 4 });
    expect(first.items).toEqual(sorted.slice(0, 4));
    // A newer run appears, a seen one and an unseen one change, an unseen one is deleted.
    await store.createRun(makeRun());
    await store.checkpoint({ runs: [withStatus(sorted[1]!, 'completed')] });
    const changed = withStatus(sorted[6]!, 'paused');
    await store.checkpoint({ runs: [changed] });
    await store.deleteRun(sorted[8]!.id);
    const rest = await allPages((cursor) =>
      store.listRuns({ limit: 4, cursor: cursor ?? first.cursor }),
    );
    const expected = sorted.slice(4).filter((r) => r.id !== sorted[8]!.id);
    expect(rest.flat()).toEqual(expected.map((r) => (r.id === changed.id ? changed : r)));
  });

  it('a status change moves the run between status indexes', async () => {
    const store = await ctx.open();
    let run = makeRun({ status: 'queued', namespace: 'acme' });
    await store.createRun(run);
    for (const status of ['running', 'paused', 'running', 'completed'] as const) {
      run = withStatus(run, status);
      await store.checkpoint({ runs: [run] });
      for (const other of RUN_STATUSES) {
        const ids = (await store.listRuns({ status: other })).items.map((r) => r.id);
        const inNs = (await store.listRuns({ status: other, namespace: 'acme' })).items;
        expect(ids, `${status} listed as ${other}`).toEqual(other === status ? [run.id] : []);
        expect(inNs.map((r) => r.id)).toEqual(other === status ? [run.id] : []);
      }
      expect((await store.listRuns()).items).toEqual([run]);
    }
    expect((await store.verify()).ok).toBe(true);
  });

  it('listWaiting lists waiting tasks across runs, oldest run first, and per run', async () => {
    const store = await ctx.open();
    const waiting: Task[] = [];
    for (let i = 0; i < 5; i++) {
      const run = makeRun({ status: i % 2 === 0 ? 'paused' : 'running' });
      await store.createRun(run);
      const tasks = [
        makeWait(run, { taskId: 'b-approve' }),
        makeWait(run, { taskId: 'a-review', timeoutAt: null }),
        makeTask(run),
        makeSleep(run),
        finished(makeWait(run, { taskId: 'c-done' })),
      ];
      await store.checkpoint({ tasks });
      waiting.push(tasks[0]!, tasks[1]!);
    }
    waiting.sort(byKey);
    const all = await store.listWaiting();
    expect(all.items).toEqual(waiting);
    expect(all.cursor).toBeNull();
    const runId = waiting[4]!.runId;
    expect((await store.listWaiting({ runId })).items).toEqual(
      waiting.filter((t) => t.runId === runId),
    );
    expect((await store.listWaiting({ runId: 'no-such-run' })).items).toEqual([]);
    for (const limit of [1, 3, 4]) {
      const pages = await allPages((cursor) => store.listWaiting({ limit, cursor }));
      expect(pages.flat()).toEqual(waiting);
      const one = await allPages((cursor) => store.listWaiting({ runId, limit, cursor }));
      expect(one.flat()).toEqual(waiting.filter((t) => t.runId === runId));
    }
  });

  it('listWaiting fills a large page (a backend may read keys in smaller chunks)', async () => {
    const store = await ctx.open();
    const runs: Run[] = [];
    const writes: Promise<void>[] = [];
    for (let i = 0; i < 700; i++) {
      const run = makeRun({ status: 'paused' });
      runs.push(run);
      writes.push(
        store.checkpoint({
          runs: [run],
          tasks: [makeWait(run, { taskId: `approval-from-a-rather-long-task-name-${i}` })],
        }),
      );
    }
    await Promise.all(writes);
    const page = await store.listWaiting({ limit: 1000 });
    expect(page.items).toHaveLength(700);
    expect(page.cursor).toBeNull();
    const first = await store.listWaiting({ limit: 650 });
    expect(first.items).toHaveLength(650);
    expect(first.cursor).not.toBeNull();
    const rest = await store.listWaiting({ limit: 650, cursor: first.cursor });
    expect(rest.items).toHaveLength(50);
    expect(new Set([...first.items, ...rest.items].map((t) => t.runId)).size).toBe(700);
  });

  it('a resumed or timed-out wait leaves listWaiting', async () => {
    const store = await ctx.open();
    const run = makeRun({ status: 'paused' });
    await store.createRun(run);
    const a = makeWait(run, { taskId: 'a' });
    const b = makeWait(run, { taskId: 'b' });
    await store.checkpoint({ tasks: [a, b] });
    await store.checkpoint({ tasks: [finished(a)] });
    expect((await store.listWaiting()).items).toEqual([b]);
    await store.checkpoint({ tasks: [finished(b, { status: 'timed_out', output: undefined })] });
    expect((await store.listWaiting()).items).toEqual([]);
    expect((await store.verify()).ok).toBe(true);
  });

  it('dueTimers lists sleeps and wait timeouts due by `at` (inclusive), earliest first', async () => {
    const store = await ctx.open();
    const runs = [makeRun(), makeRun()];
    await store.checkpoint({ runs });
    const [r1, r2] = runs as [Run, Run];
    const tasks = [
      makeSleep(r1, { taskId: 's1', wakeAt: 5_000 }),
      makeWait(r1, { taskId: 'w1', timeoutAt: 2_000 }),
      makeWait(r1, { taskId: 'w-none', timeoutAt: null }),
      makeSleep(r2, { taskId: 's2', wakeAt: 2_000 }),
      makeWait(r2, { taskId: 'w2', timeoutAt: 9_000 }),
      makeTask(r2, { taskId: 'step' }),
    ];
    await store.checkpoint({ tasks });
    const at2000 = [r1.id, r2.id].sort().map((runId) => ({
      at: 2_000,
      runId,
      taskId: runId === r1.id ? 'w1' : 's2',
    }));
    expect(await store.dueTimers(1_999)).toEqual([]);
    expect(await store.dueTimers(2_000)).toEqual(at2000);
    expect(await store.dueTimers(4_999.9)).toEqual(at2000);
    expect(await store.dueTimers(5_000)).toEqual([
      ...at2000,
      { at: 5_000, runId: r1.id, taskId: 's1' },
    ]);
    const all = await store.dueTimers(Number.MAX_SAFE_INTEGER);
    expect(all.map((t) => t.at)).toEqual([2_000, 2_000, 5_000, 9_000]);
    expect(await store.dueTimers(Number.POSITIVE_INFINITY)).toEqual(all);
    expect(await store.dueTimers(9_000, 2)).toEqual(all.slice(0, 2));
    expect(await store.dueTimers(-1)).toEqual([]);
    expect(await store.nextTimer()).toEqual(all[0]);
  });

  it('dueTimers handles real clock times', async () => {
    const store = await ctx.open();
    const run = makeRun();
    await store.createRun(run);
    const now = Date.now();
    await store.checkpoint({
      tasks: [
        makeSleep(run, { taskId: 'soon', wakeAt: now + 1_000 }),
        makeSleep(run, { taskId: 'later', wakeAt: now + 86_400_000 }),
      ],
    });
    expect(await store.dueTimers(now)).toEqual([]);
    expect((await store.dueTimers(now + 1_000)).map((t) => t.taskId)).toEqual(['soon']);
    expect((await store.dueTimers(Number.MAX_SAFE_INTEGER)).map((t) => t.taskId)).toEqual([
      'soon',
      'later',
    ]);
    expect((await store.dueTimers(Number.POSITIVE_INFINITY)).map((t) => t.taskId)).toEqual([
      'soon',
      'later',
    ]);
    expect(await store.dueTimers(Number.NEGATIVE_INFINITY)).toEqual([]);
    expect((await store.nextTimer())?.taskId).toBe('soon');
  });

  it('a finished sleep or wait removes its timer', async () => {
    const { store, sleep, wait } = await sleepAndWait(ctx);
    expect(await store.dueTimers(10_000)).toHaveLength(2);
    await store.checkpoint({ tasks: [finished(sleep)] });
    expect((await store.dueTimers(10_000)).map((t) => t.taskId)).toEqual([wait.taskId]);
    await store.checkpoint({ tasks: [finished(wait, { status: 'timed_out' })] });
    expect(await store.dueTimers(10_000)).toEqual([]);
    expect(await store.nextTimer()).toBeUndefined();
    expect((await store.verify()).ok).toBe(true);
  });

  // The engine never changes a field that keys an entry; a checkpoint from outside it may, and
  // then the entries of the record it replaces that the new one does not have are deleted.
  it('a sleep whose wakeAt moves, or a wait whose timeoutAt is cleared, leaves no stale timer', async () => {
    const { store, run, sleep, wait } = await sleepAndWait(ctx);
    await store.checkpoint({
      tasks: [
        { ...sleep, wakeAt: 5_000 },
        { ...wait, timeoutAt: null },
      ],
    });
    expect(await store.dueTimers(10_000)).toEqual([
      { at: 5_000, runId: run.id, taskId: sleep.taskId },
    ]);
    expect((await store.nextTimer())?.at).toBe(5_000);
    expect((await store.listWaiting()).items.map((t) => t.taskId)).toEqual([wait.taskId]);
    expect((await store.verify()).ok).toBe(true);
  });

  it('a run whose workflow, namespace or createdAt changes leaves no stale index entry', async () => {
    const store = await ctx.open();
    const run = makeRun({ workflow: 'before', namespace: 'ns-before', createdAt: 1_000 });
    await store.createRun(run);
    const moved = {
      ...run,
      workflow: 'after',
      namespace: 'ns-after',
      createdAt: 2_000,
      status: 'paused' as const,
      isPaused: true,
    };
    await store.checkpoint({ runs: [moved] });
    const ids = async (query: ListRunsQuery): Promise<string[]> =>
      (await store.listRuns(query)).items.map((r) => r.id);
    expect(await ids({ workflow: 'before' })).toEqual([]);
    expect(await ids({ namespace: 'ns-before' })).toEqual([]);
    expect(await ids({ namespace: 'ns-before', status: run.status })).toEqual([]);
    expect(await ids({ workflow: 'after' })).toEqual([run.id]);
    expect(await ids({ namespace: 'ns-after', status: 'paused' })).toEqual([run.id]);
    expect(await ids({ until: 1_500 })).toEqual([]);
    expect(await ids({ since: 1_500 })).toEqual([run.id]);
    expect(await ids({})).toEqual([run.id]);
    expect(await store.verify()).toMatchObject({ ok: true, problems: [] });
  });
}

/** A store holding a run with a sleep (waking at 1,000) and a wait (timing out at 2,000). */
async function sleepAndWait(
  ctx: SuiteContext,
): Promise<{ store: Store; run: Run; sleep: Task; wait: Task }> {
  const store = await ctx.open();
  const run = makeRun();
  await store.createRun(run);
  const sleep = makeSleep(run, { wakeAt: 1_000 });
  const wait = makeWait(run, { timeoutAt: 2_000 });
  await store.checkpoint({ tasks: [sleep, wait] });
  return { store, run, sleep, wait };
}
