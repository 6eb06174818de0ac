import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { isUuid } from '@cairn/store';
import { ManualClock, workflow } from '../src/index.js';
import {
  closeAfterTest,
  crash,
  type Deferred,
  deferred,
  openForTest,
  settle,
  until,
} from './support.js';

const input = z.object({}).default({});

const setup = openForTest;

/** Counts steps running at once and holds each until released. */
function tracker() {
  const state = { running: 0, max: 0, started: [] as string[] };
  const gates = new Map<string, Deferred<void>>();
  const step = (name: string) => async (): Promise<string> => {
    state.running++;
    state.max = Math.max(state.max, state.running);
    state.started.push(name);
    const gate = deferred();
    gates.set(name, gate);
    try {
      await gate.promise;
      return name;
    } finally {
      state.running--;
    }
  };
  const release = (name: string): void => gates.get(name)!.resolve();
  const releaseAll = (): void => {
    for (const g of gates.values()) g.resolve();
  };
  return { state, step, release, releaseAll };
}

/** Releases held steps until `total` have run, letting the engine start the next ones. */
async function drain(t: ReturnType<typeof tracker>, total: number): Promise<void> {
  for (let i = 0; i < 200; i++) {
    if (t.state.started.length >= total && t.state.running === 0) return;
    t.releaseAll();
    await settle();
  }
  throw new Error('the steps did not all run');
}

describe('parallel groups', () => {
  it('gives steps started together one group, and steps started later another', async () => {
    const wf = workflow('groups', {
      input,
      run: async (ctx) => {
        await ctx.step('first', () => 0);
        const [a, b, c] = await Promise.all([
          ctx.step('a', () => 1),
          ctx.step('b', async () => 2),
          ctx.step('c', () => 3),
        ]);
        const [d, e] = await Promise.all([ctx.step('d', () => 4), ctx.step('e', () => 5)]);
        await ctx.step('last', () => 6);
        return [a, b, c, d, e];
      },
    });
    const { engine } = await setup({ workflows: [wf], clock: new ManualClock() });
    const handle = await engine.start(wf, {});
    expect(await handle.result()).toEqual([1, 2, 3, 4, 5]);
    const tasks = await engine.tasks(handle.id);
    const group = Object.fromEntries(tasks.map((t) => [t.taskId, t.group]));
    expect(group.a).toBe(group.b);
    expect(group.b).toBe(group.c);
    expect(group.d).toBe(group.e);
    expect(new Set([group.first, group.a, group.d, group.last]).size).toBe(4);
    expect(tasks.map((t) => t.seq)).toEqual([0, 1, 2, 3, 4, 5, 6]);
  });

  it('runs branches in parallel; each branch continues in a group of its own', async () => {
    const wf = workflow('branches', {
      input,
      run: async (ctx) => {
        const branch = async (name: string): Promise<string> => {
          const x = await ctx.step(`${name}-1`, () => name);
          return ctx.step(`${name}-2`, () => `${x}!`);
        };
        return Promise.all([branch('left'), branch('right')]);
      },
    });
    const { engine } = await setup({ workflows: [wf], clock: new ManualClock() });
    const handle = await engine.start(wf, {});
    expect(await handle.result()).toEqual(['left!', 'right!']);
    const group = Object.fromEntries(
      (await engine.tasks(handle.id)).map((t) => [t.taskId, t.group]),
    );
    expect(group['left-1']).toBe(group['right-1']);
    expect(group['left-2']).not.toBe(group['left-1']);
  });

  it('keeps the first error of Promise.all and still records every step', async () => {
    const wf = workflow('all-fails', {
      input,
      run: async (ctx) =>
        Promise.all([
          ctx.step('ok', () => 1),
          ctx.step(
            'bad',
            () => {
              throw new Error('x');
            },
            { retry: 1 },
          ),
        ]),
    });
    const { engine } = await setup({ workflows: [wf], clock: new ManualClock() });
    const handle = await engine.start(wf, {});
    await expect(handle.result()).rejects.toMatchObject({ code: 'STEP_FAILED' });
    const status = Object.fromEntries(
      (await engine.tasks(handle.id)).map((t) => [t.taskId, t.status]),
    );
    expect(status).toEqual({ ok: 'completed', bad: 'failed' });
  });
});

describe('concurrency limits', () => {
  it('runs at most `concurrency` steps at once across all runs', async () => {
    const t = tracker();
    const wf = workflow('wide', {
      input: z.object({ tag: z.string() }),
      run: async (ctx, i) =>
        Promise.all([1, 2, 3, 4].map((n) => ctx.step(`s${n}`, t.step(`${i.tag}${n}`)))),
    });
    const { engine } = await setup({ workflows: [wf], clock: new ManualClock(), concurrency: 3 });
    const h1 = await engine.start(wf, { tag: 'a' });
    const h2 = await engine.start(wf, { tag: 'b' });
    await until(() => t.state.running === 3, 'three steps running');
    expect(t.state.started).toHaveLength(3);
    await drain(t, 8);
    t.releaseAll();
    expect(await h1.result()).toEqual(['a1', 'a2', 'a3', 'a4']);
    expect(await h2.result()).toEqual(['b1', 'b2', 'b3', 'b4']);
    expect(t.state.max).toBe(3);
    expect(t.state.started).toHaveLength(8);
  });

  it("respects a workflow's own concurrency across its runs, not other workflows'", async () => {
    const limited = tracker();
    const free = tracker();
    const narrow = workflow('narrow', {
      input: z.object({ tag: z.string() }),
      concurrency: 2,
      run: async (ctx, i) =>
        Promise.all([1, 2, 3].map((n) => ctx.step(`s${n}`, limited.step(`${i.tag}${n}`)))),
    });
    const open3 = workflow('open', {
      input: z.object({ tag: z.string() }),
      run: async (ctx, i) =>
        Promise.all([1, 2, 3].map((n) => ctx.step(`s${n}`, free.step(`${i.tag}${n}`)))),
    });
    const { engine } = await setup({ workflows: [narrow, open3], clock: new ManualClock() });
    const handles = [
      await engine.start(narrow, { tag: 'x' }),
      await engine.start(narrow, { tag: 'y' }),
      await engine.start(open3, { tag: 'z' }),
    ];
    await until(() => limited.state.running === 2 && free.state.running === 3, 'steps to start');
    expect(limited.state.started).toHaveLength(2);
    await drain(free, 3);
    await drain(limited, 6);
    await Promise.all(handles.map((h) => h.result()));
    expect(limited.state.max).toBe(2);
    expect(free.state.max).toBe(3);
  });

  it('does not let a waiting retry hold a slot', async () => {
    const clock = new ManualClock();
    let flakyCalls = 0;
    const other = deferred();
    let otherRan = false;
    const wf = workflow('retry-slot', {
      input,
      run: async (ctx) =>
        Promise.all([
          ctx.step(
            'flaky',
            () => {
              flakyCalls++;
              if (flakyCalls === 1) throw new Error('again');
              return 'ok';
            },
            { retry: { attempts: 2, initialDelay: '1h', jitter: 0 } },
          ),
          ctx.step('other', async () => {
            otherRan = true;
            await other.promise;
            return 'other';
          }),
        ]),
    });
    const { engine } = await setup({ workflows: [wf], clock, concurrency: 1 });
    const handle = await engine.start(wf, {});
    await until(() => otherRan, 'the second step to get the only slot');
    other.resolve();
    await until(() => clock.pending > 0);
    await clock.advance(3_600_000);
    expect(await handle.result()).toEqual(['ok', 'other']);
  });
});

describe('recorded values', () => {
  it('records now(), random() and uuid() and replays them identically after a restart', async () => {
    const hang = deferred<string>();
    let firstSeen: unknown;
    const make = (hangs: boolean) =>
      workflow('recorded', {
        input,
        run: async (ctx) => {
          const values = {
            now: ctx.now(),
            random: ctx.random(),
            uuid: ctx.uuid(),
            now2: ctx.now(),
          };
          if (hangs) firstSeen = values;
          await ctx.step('wait', () => (hangs ? hang.promise : 'later'));
          return { ...values, after: ctx.now() };
        },
      });
    const clock = new ManualClock();
    const first = await setup({ workflows: [make(true)], clock });
    const handle = await first.engine.start('recorded', {});
    await until(() => firstSeen !== undefined, 'the values');
    await until(async () => (await first.store.getTask(handle.id, 'wait')) !== undefined);
    await clock.advance(60_000);
    const second = await crash(first.store, { workflows: [make(false)], clock });
    closeAfterTest(second.store);
    const result = (await second.engine.handle(handle.id).result()) as Record<string, unknown>;
    expect(result).toMatchObject(firstSeen as Record<string, unknown>);
    const seen = firstSeen as { now: number; random: number; uuid: string };
    expect(seen.now).toBe(Date.UTC(2030, 0, 1));
    expect(result.after).toBe(seen.now + 60_000);
    expect(seen.random).toBeGreaterThanOrEqual(0);
    expect(seen.random).toBeLessThan(1);
    expect(isUuid(seen.uuid)).toBe(true);
    const tasks = await second.engine.tasks(handle.id);
    expect(tasks.map((t) => t.taskId)).toEqual([
      '$now',
      '$random',
      '$uuid',
      '$now#2',
      'wait',
      '$now#3',
    ]);
  });

  it('gives every call a new value in one run', async () => {
    const wf = workflow('fresh', {
      input,
      run: async (ctx) => [ctx.uuid(), ctx.uuid(), ctx.random(), ctx.random()],
    });
    const { engine } = await setup({ workflows: [wf], clock: new ManualClock() });
    const [u1, u2, r1, r2] = (await (await engine.start(wf, {})).result()) as [
      string,
      string,
      number,
      number,
    ];
    expect(u1).not.toBe(u2);
    expect(r1).not.toBe(r2);
  });

  it('replays recorded values in parallel branches after a restart', async () => {
    const hang = deferred();
    const firstIds: string[] = [];
    const make = (hangs: boolean) =>
      workflow('recorded-branches', {
        input,
        run: async (ctx) => {
          const branch = async (name: string) => {
            const id = ctx.uuid();
            if (hangs) firstIds.push(id);
            await ctx.step(name, () => (hangs && name === 'b' ? hang.promise : null));
            return id;
          };
          return Promise.all([branch('a'), branch('b')]);
        },
      });
    const clock = new ManualClock();
    const first = await setup({ workflows: [make(true)], clock });
    const handle = await first.engine.start('recorded-branches', {});
    await until(async () => (await first.store.getTask(handle.id, 'a'))?.status === 'completed');
    const second = await crash(first.store, { workflows: [make(false)], clock });
    closeAfterTest(second.store);
    const ids = (await second.engine.handle(handle.id).result()) as string[];
    expect(firstIds).toHaveLength(2);
    expect(ids).toEqual(firstIds);
    const stored = await second.engine.tasks(handle.id);
    expect(ids).toEqual(stored.filter((t) => t.taskId.startsWith('$uuid')).map((t) => t.output));
  });
});
