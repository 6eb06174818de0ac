import { afterEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import {
  listWaitingTasks,
  workflow,
  type ListWaitingOptions,
  type WaitingTask,
} from '../src/index.js';
import { Harness, until } from './hitl-support.js';

const alpha = workflow('alpha', {
  version: '3',
  input: z.object({ n: z.number() }),
  async run(ctx, input) {
    const answer = await ctx.waitForInput('ok', {
      schema: z.object({ ok: z.boolean() }),
      timeout: '1d',
      description: `Approve #${input.n}`,
    });
    return answer.ok;
  },
});

const beta = workflow('beta', {
  input: z.object({ n: z.number() }),
  async run(ctx) {
    const [x, y] = await Promise.all([
      ctx.waitForInput('x', { schema: z.number() }),
      ctx.waitForInput('y', { schema: z.number() }),
    ]);
    return x + y;
  },
});

let h: Harness;
afterEach(async () => {
  await h?.close();
});

interface Started {
  readonly runId: string;
  readonly workflow: string;
  readonly namespace: string;
}

async function startAll(): Promise<Started[]> {
  const plan: [typeof alpha | typeof beta, string][] = [
    [alpha, 'a'],
    [beta, 'a'],
    [alpha, 'b'],
    [alpha, 'a'],
    [beta, 'b'],
    [alpha, 'a'],
    [beta, 'a'],
    [alpha, 'b'],
  ];
  const started: Started[] = [];
  for (const [i, [wf, namespace]] of plan.entries()) {
    const handle = await h.engine.start(wf, { n: i }, { namespace });
    started.push({ runId: handle.id, workflow: wf.name, namespace });
    await h.untilStatus(handle.id, 'paused');
    await h.clock.advance(1000);
  }
  return started;
}

/** Every page of a listing, following cursors. */
async function allPages(options: ListWaitingOptions): Promise<WaitingTask[][]> {
  const pages: WaitingTask[][] = [];
  let cursor: string | null = null;
  for (let i = 0; i < 100; i++) {
    const page = await h.engine.listWaiting({ ...options, cursor });
    expect(page.corrupt).toEqual([]);
    pages.push(page.items);
    cursor = page.cursor;
    if (cursor === null) return pages;
  }
  throw new Error('the cursor never ended');
}

const key = (w: WaitingTask): string => `${w.runId}/${w.taskId}`;

describe('listWaiting', () => {
  it('lists waiting tasks across runs, oldest run first, with what a form needs', async () => {
    h = await Harness.create([alpha, beta]);
    const t0 = h.clock.now();
    const started = await startAll();
    const { items, cursor } = await h.engine.listWaiting();
    expect(cursor).toBeNull();
    expect(items).toHaveLength(5 + 3 * 2);
    // Oldest run first (run ids are time-ordered).
    const runOrder = [...new Set(items.map((w) => w.runId))];
    expect(runOrder).toEqual(started.map((s) => s.runId));
    expect(items[0]).toEqual({
      runId: started[0]!.runId,
      taskId: 'ok',
      workflow: 'alpha',
      version: '3',
      namespace: 'a',
      schema: z.toJSONSchema(z.object({ ok: z.boolean() }), { io: 'input' }),
      description: 'Approve #0',
      waitingSince: t0,
      timeoutAt: t0 + 86_400_000,
      refusedInput: null,
    });
    const betaTasks = items.filter((w) => w.runId === started[1]!.runId);
    expect(betaTasks.map((w) => w.taskId).sort()).toEqual(['x', 'y']);
    expect(betaTasks[0]).toMatchObject({ description: null, timeoutAt: null, version: '1' });
  });

  it('filters by namespace, workflow, both, and run', async () => {
    h = await Harness.create([alpha, beta]);
    const started = await startAll();
    const expected = (pred: (s: Started) => boolean): string[] =>
      started
        .filter(pred)
        .flatMap((s) => (s.workflow === 'alpha' ? [s.runId] : [s.runId, s.runId]));

    const runsOf = async (options: ListWaitingOptions): Promise<string[]> =>
      (await h.engine.listWaiting(options)).items.map((w) => w.runId);

    expect(await runsOf({ namespace: 'a' })).toEqual(expected((s) => s.namespace === 'a'));
    expect(await runsOf({ namespace: 'b' })).toEqual(expected((s) => s.namespace === 'b'));
    expect(await runsOf({ workflow: 'beta' })).toEqual(expected((s) => s.workflow === 'beta'));
    expect(await runsOf({ namespace: 'b', workflow: 'alpha' })).toEqual(
      expected((s) => s.namespace === 'b' && s.workflow === 'alpha'),
    );
    expect(await runsOf({ runId: started[4]!.runId })).toEqual([
      started[4]!.runId,
      started[4]!.runId,
    ]);
    expect(await runsOf({ namespace: 'nobody' })).toEqual([]);
    expect(await runsOf({ workflow: 'gamma' })).toEqual([]);
  });

  it('pages with a cursor: every task once, in order, whatever the page size and filter', async () => {
    h = await Harness.create([alpha, beta]);
    await startAll();
    const filters: ListWaitingOptions[] = [
      {},
      { namespace: 'a' },
      { namespace: 'b' },
      { workflow: 'alpha' },
      { workflow: 'beta', namespace: 'b' },
    ];
    for (const filter of filters) {
      const whole = (await h.engine.listWaiting(filter)).items.map(key);
      for (const limit of [1, 2, 3, 4, 7, 100]) {
        const pages = await allPages({ ...filter, limit });
        for (const page of pages) expect(page.length).toBeLessThanOrEqual(limit);
        // Only the last page may be short.
        for (const page of pages.slice(0, -1)) expect(page).toHaveLength(limit);
        expect(pages.flat().map(key), `${JSON.stringify(filter)} limit ${limit}`).toEqual(whole);
      }
    }
  });

  it('listWaitingTasks reads a store alone, in pages larger than a store page', async () => {
    h = await Harness.create([alpha]);
    const count = 1_050;
    for (let i = 0; i < count; i++) {
      await h.engine.start(alpha, { n: i }, { namespace: i % 2 === 1 ? 'odd' : 'even' });
    }
    await until(
      async () => (await listWaitingTasks(h.store, { limit: 2000 })).items.length === count,
      'every run waiting',
    );
    const all = await listWaitingTasks(h.store, { limit: 2000 });
    expect(all.cursor).toBeNull();
    const first = await listWaitingTasks(h.store, { limit: 1020 });
    expect(first.items).toHaveLength(1020);
    const rest = await listWaitingTasks(h.store, { limit: 1020, cursor: first.cursor });
    expect(rest.items).toHaveLength(count - 1020);
    expect(rest.cursor).toBeNull();
    expect([...first.items, ...rest.items].map(key)).toEqual(all.items.map(key));
    // The same listing as the engine's, filters included.
    const odd = await listWaitingTasks(h.store, { namespace: 'odd', limit: 1000 });
    expect(odd.items).toHaveLength(count / 2);
    expect(odd.items).toEqual(
      (await h.engine.listWaiting({ namespace: 'odd', limit: 1000 })).items,
    );
    expect((await listWaitingTasks(h.store)).items).toEqual(all.items.slice(0, 100));
  });

  it('no longer lists a task once it is resumed, and lists the survivors after a restart', async () => {
    h = await Harness.create([alpha, beta]);
    const started = await startAll();
    await h.engine.resumeTask(started[0]!.runId, 'ok', { ok: true });
    await h.engine.resumeTask(started[1]!.runId, 'x', 4);
    await h.untilStatus(started[1]!.runId, 'paused');
    await h.restart();
    const items = (await h.engine.listWaiting()).items;
    expect(items).toHaveLength(9);
    expect(items.map(key)).not.toContain(`${started[0]!.runId}/ok`);
    expect(items.map(key)).not.toContain(`${started[1]!.runId}/x`);
    expect(items.map(key)).toContain(`${started[1]!.runId}/y`);
  });
});
