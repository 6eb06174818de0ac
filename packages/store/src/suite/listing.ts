import { expect, it } from 'vitest';
import { RUN_STATUSES, type Run } from '../records.js';
import type { Store } from '../store.js';
import type { RunFilter } from '../store-types.js';
import { allPages, expectCairnError, expectTypeError, type SuiteContext } from './context.js';
import { makeRun, makeSleep, makeTask, makeWait } from './fixtures.js';

const EPOCH = Date.UTC(2025, 2, 1);
const TAGS = ['urgent', 'vip', 'eu', 'us', 'beta'];

/** `count` runs spread over statuses, workflows, namespaces, tags and an hour per run. */
export function variedRuns(count: number, start = EPOCH): Run[] {
  return Array.from({ length: count }, (_, i) => {
    const status = RUN_STATUSES[i % RUN_STATUSES.length]!;
    return makeRun({
      id: `run-${String(i).padStart(5, '0')}`,
      status,
      workflow: `wf-${i % 3}`,
      namespace: `ns-${i % 4}`,
      // Some runs share a creation time: the order falls back to the run id.
      createdAt: start + Math.floor(i / 2) * 3_600_000,
      tags: TAGS.filter((_, t) => (i >> t) % 2 === 1),
    });
  });
}

/** Writes runs a batch at a time. */
export async function writeRuns(store: Store, runs: readonly Run[], batch = 500): Promise<void> {
  for (let i = 0; i < runs.length; i += batch) {
    await store.checkpoint({ runs: runs.slice(i, i + batch) });
  }
}

/** What `listRuns(filter)` must return: the matching runs, newest first (then by id, descending). */
export function expected(runs: readonly Run[], filter: RunFilter): string[] {
  return runs
    .filter(
      (r) =>
        (filter.status === undefined || r.status === filter.status) &&
        (filter.workflow === undefined || r.workflow === filter.workflow) &&
        (filter.namespace === undefined || r.namespace === filter.namespace) &&
        (filter.since === undefined || r.createdAt >= filter.since) &&
        (filter.until === undefined || r.createdAt < filter.until) &&
        (filter.tags ?? []).every((t) => r.tags.includes(t)),
    )
    .sort((a, b) => b.createdAt - a.createdAt || (a.id < b.id ? 1 : -1))
    .map((r) => r.id);
}

/** Every page of `listRuns(filter)` with `limit`, flattened; checks each page's size. */
export async function listAll(store: Store, filter: RunFilter, limit: number): Promise<string[]> {
  const pages = await allPages((cursor) => store.listRuns({ ...filter, limit, cursor }));
  for (const page of pages.slice(0, -1)) expect(page.length).toBe(limit);
  return pages.flat().map((r) => r.id);
}

const hour = 3_600_000;

export function listingTests(ctx: SuiteContext): void {
  it('since and until bound the creation time: since inclusive, until exclusive', async () => {
    const store = await ctx.open();
    const runs = variedRuns(40);
    await writeRuns(store, runs);
    const since = EPOCH + 3 * hour;
    const until = EPOCH + 9 * hour;
    const ids = (await store.listRuns({ since, until })).items.map((r) => r.id);
    expect(ids).toEqual(expected(runs, { since, until }));
    expect(ids).toHaveLength(12);
    expect((await store.listRuns({ since: EPOCH + 19 * hour })).items).toHaveLength(2);
    expect((await store.listRuns({ until: EPOCH + hour })).items).toHaveLength(2);
    // A fractional bound is a bound on whole milliseconds.
    expect((await store.listRuns({ since: since - 0.5, until: until + 0.5 })).items).toHaveLength(
      14,
    );
    expect((await store.listRuns({ since: until, until: since })).items).toEqual([]);
  });

  it('tags: a run must have every tag asked for', async () => {
    const store = await ctx.open();
    const runs = variedRuns(64);
    await writeRuns(store, runs);
    for (const tags of [['urgent'], ['vip', 'eu'], ['beta', 'urgent', 'us'], ['nope']]) {
      const ids = await listAll(store, { tags }, 1000);
      expect(ids).toEqual(expected(runs, { tags }));
    }
    expect((await store.verify()).ok).toBe(true);
  });

  it('a tag index entry is written with the run, and deleted with it', async () => {
    const store = await ctx.open();
    const run = makeRun({ tags: ['a', 'a', 'b'] });
    await store.createRun(run);
    expect((await store.listRuns({ tags: ['a', 'b'] })).items).toEqual([run]);
    await store.deleteRun(run.id);
    expect((await store.listRuns({ tags: ['a'] })).items).toEqual([]);
    expect(await store.verify()).toMatchObject({ ok: true, entries: 0 });
  });

  it('tags that cannot be a key part are kept on the run but not indexed', async () => {
    const store = await ctx.open();
    const run = makeRun({ tags: ['', 'tab\there', 'fine'] });
    await store.createRun(run);
    expect((await store.getRun(run.id))?.tags).toEqual(['', 'tab\there', 'fine']);
    expect((await store.listRuns({ tags: ['fine'] })).items.map((r) => r.id)).toEqual([run.id]);
    expect((await store.verify()).ok).toBe(true);
  });

  it('every combination of filters pages through the right runs, newest first', async () => {
    const store = await ctx.open();
    const runs = variedRuns(300);
    await writeRuns(store, runs);
    const filters: RunFilter[] = [
      { namespace: 'ns-1', status: 'completed', tags: ['vip'] },
      { status: 'paused', workflow: 'wf-2', since: EPOCH + 20 * hour },
      { workflow: 'wf-0', namespace: 'ns-2', until: EPOCH + 100 * hour },
      { tags: ['urgent', 'eu'], namespace: 'ns-3' },
      { namespace: 'ns-0', since: EPOCH + 10 * hour, until: EPOCH + 120 * hour },
      { since: EPOCH + 50 * hour, tags: ['beta'] },
      { workflow: 'wf-1', status: 'failed', namespace: 'ns-1', tags: ['us'] },
    ];
    for (const filter of filters) {
      const want = expected(runs, filter);
      expect(await listAll(store, filter, 7)).toEqual(want);
      expect(await listAll(store, filter, 1000)).toEqual(want);
    }
  });

  it('a run changing status moves between the filtered listings', async () => {
    const store = await ctx.open();
    const run = makeRun({ status: 'running', tags: ['vip'], namespace: 'acme' });
    await store.createRun(run);
    const query = { status: 'completed' as const, tags: ['vip'], namespace: 'acme' };
    expect((await store.listRuns(query)).items).toEqual([]);
    const done = { ...run, status: 'completed' as const, endedAt: run.createdAt + 1 };
    await store.checkpoint({ runs: [done] });
    expect((await store.listRuns(query)).items).toEqual([done]);
  });

  it('a checkpoint that rewrites what a run is filed under moves it between listings', async () => {
    const store = await ctx.open();
    const run = makeRun({ tags: ['vip', 'eu'], namespace: 'acme', workflow: 'billing' });
    await store.createRun(run);
    const moved: Run = {
      ...run,
      tags: ['eu', 'beta'],
      namespace: 'globex',
      workflow: 'invoicing',
      createdAt: run.createdAt + 5 * hour,
    };
    await store.checkpoint({ runs: [moved] });
    const ids = async (filter: RunFilter): Promise<string[]> =>
      (await store.listRuns(filter)).items.map((r) => r.id);
    for (const old of [
      { tags: ['vip'] },
      { namespace: 'acme' },
      { workflow: 'billing' },
      { namespace: 'acme', status: run.status },
      { until: run.createdAt + hour },
    ]) {
      expect(await ids(old)).toEqual([]);
    }
    for (const now of [
      { tags: ['eu', 'beta'] },
      { namespace: 'globex', status: run.status },
      { workflow: 'invoicing' },
      { since: run.createdAt + 4 * hour },
      {},
    ]) {
      expect(await ids(now)).toEqual([run.id]);
    }
    expect(await store.verify()).toMatchObject({ ok: true });
    await store.deleteRun(run.id);
    expect(await store.verify()).toMatchObject({ ok: true, entries: 0 });
  });

  it('a checkpoint that rewrites a task moves or drops its waiting entry and timer', async () => {
    const store = await ctx.open();
    const run = makeRun({ status: 'paused', isPaused: true });
    const wait = makeWait(run);
    const nap = makeSleep(run);
    await store.createRun(run);
    await store.checkpoint({ tasks: [wait, nap] });
    const later = { ...nap, wakeAt: nap.wakeAt! + 3 * hour };
    // A wait rewritten as a step has no waiting entry and no timer any more.
    const step = makeTask(run, { taskId: wait.taskId, seq: wait.seq, status: 'completed' });
    await store.checkpoint({ tasks: [later, step] });
    expect((await store.listWaiting()).items).toEqual([]);
    const timers = await store.dueTimers(Number.MAX_SAFE_INTEGER);
    expect(timers.map((t) => [t.taskId, t.at])).toEqual([[nap.taskId, later.wakeAt]]);
    expect(await store.verify()).toMatchObject({ ok: true });
  });

  it('bad filters are refused', async () => {
    const store = await ctx.open();
    await expectTypeError(() => store.listRuns({ since: '2025' as unknown as number }));
    await expectCairnError(() => store.listRuns({ until: Number.NaN }), 'INVALID_ARGUMENT');
    await expectCairnError(() => store.listRuns({ since: Infinity }), 'INVALID_ARGUMENT');
    await expectTypeError(() => store.listRuns({ tags: 'vip' as unknown as string[] }));
    await expectCairnError(() => store.listRuns({ tags: [''] }), 'INVALID_ARGUMENT');
    await expectTypeError(() => store.listRuns({ tags: [5 as unknown as string] }));
    await expectCairnError(
      () => store.listRuns({ tags: Array.from({ length: 65 }, (_, i) => `t${i}`) }),
      'INVALID_ARGUMENT',
    );
  });
}
