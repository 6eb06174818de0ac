import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { ManualClock, workflow } from '../src/index.js';
import { deferred, openForTest, rejectsWithCode, snapshot, until } from './support.js';

const setup = openForTest;

function counted<S extends z.ZodType>(name: string, schema: S) {
  const state = { calls: 0 };
  const gate = deferred();
  const wf = workflow(name, {
    input: schema,
    run: async (ctx) => {
      state.calls++;
      await ctx.step('hold', () => gate.promise);
      return 'done';
    },
  });
  return { wf, state, gate };
}

describe('starting with an id', () => {
  it('uses the given id', async () => {
    const { wf, gate } = counted('given-id', z.object({ n: z.number() }));
    const { engine } = await setup({ workflows: [wf], clock: new ManualClock() });
    const handle = await engine.start(wf, { n: 1 }, { id: 'order-1' });
    expect(handle.id).toBe('order-1');
    expect((await engine.get('order-1')).input).toEqual({ n: 1 });
    gate.resolve();
    expect(await handle.result()).toBe('done');
  });

  it('returns the same run for the same id and input, without a second run', async () => {
    const { wf, state, gate } = counted('same-input', z.object({ n: z.number() }));
    const { engine, store } = await setup({ workflows: [wf], clock: new ManualClock() });
    const a = await engine.start(wf, { n: 1 }, { id: 'same' });
    await until(() => state.calls === 1);
    const before = await snapshot(store);
    const b = await engine.start(wf, { n: 1 }, { id: 'same' });
    expect(b.id).toBe(a.id);
    expect(await snapshot(store)).toEqual(before);
    gate.resolve();
    expect(await a.result()).toBe('done');
    expect(await b.result()).toBe('done');
    expect(state.calls).toBe(1);
    expect((await store.listRuns()).items).toHaveLength(1);
  });

  it('returns a finished run again, without running it again', async () => {
    const { wf, state, gate } = counted('finished', z.object({ n: z.number() }));
    gate.resolve();
    const { engine } = await setup({ workflows: [wf], clock: new ManualClock() });
    await (await engine.start(wf, { n: 1 }, { id: 'done-once' })).result();
    const again = await engine.start(wf, { n: 1 }, { id: 'done-once' });
    expect(await again.status()).toBe('completed');
    expect(await again.result()).toBe('done');
    expect(state.calls).toBe(1);
  });

  it('compares the parsed input: defaults and key order do not matter', async () => {
    const { wf, gate } = counted(
      'parsed-compare',
      z.object({ a: z.number(), b: z.string().default('x') }),
    );
    const { engine, store } = await setup({ workflows: [wf], clock: new ManualClock() });
    await engine.start(wf, { a: 1 }, { id: 'p' });
    await engine.start(wf, { b: 'x', a: 1 }, { id: 'p' });
    gate.resolve();
    expect((await store.listRuns()).items).toHaveLength(1);
  });

  it.each([
    ['minus zero', { n: -0 }],
    ['a Uint8Array', { bytes: new Uint8Array([1, 2, 3]) }],
    ['a Date', { at: new Date(1000) }],
    ['an array with a hole', { list: Object.assign(new Array<number>(3), { 0: 1, 2: 3 }) }],
    ['an object without prototype', Object.assign(Object.create(null) as object, { k: 1 })],
    ['a __proto__ key', JSON.parse('{"__proto__":{"polluted":1},"x":1}') as unknown],
    ['NaN', { n: NaN }],
  ])('treats the same input with %s as the same input', async (_label, value) => {
    const { wf, gate } = counted('stored-forms', z.any());
    const { engine, store } = await setup({ workflows: [wf], clock: new ManualClock() });
    const a = await engine.start(wf, value, { id: 'same-form' });
    const b = await engine.start(wf, value, { id: 'same-form' });
    expect(b.id).toBe(a.id);
    gate.resolve();
    expect((await store.listRuns()).items).toHaveLength(1);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });

  it('refuses the same id with other input with CONFLICT, changing nothing', async () => {
    const { wf, state, gate } = counted('other-input', z.object({ n: z.number() }));
    const { engine, store } = await setup({ workflows: [wf], clock: new ManualClock() });
    await engine.start(wf, { n: 1 }, { id: 'x' });
    await until(() => state.calls === 1);
    const before = await snapshot(store);
    await rejectsWithCode(engine.start(wf, { n: 2 }, { id: 'x' }), 'CONFLICT');
    expect(await snapshot(store)).toEqual(before);
    gate.resolve();
    expect(state.calls).toBe(1);
  });

  it('refuses the same id for another workflow with CONFLICT', async () => {
    const one = counted('first-wf', z.object({ n: z.number() }));
    const two = counted('second-wf', z.object({ n: z.number() }));
    const { engine, store } = await setup({
      workflows: [one.wf, two.wf],
      clock: new ManualClock(),
    });
    await engine.start(one.wf, { n: 1 }, { id: 'shared' });
    const before = await snapshot(store);
    await rejectsWithCode(engine.start(two.wf, { n: 1 }, { id: 'shared' }), 'CONFLICT');
    expect(await snapshot(store)).toEqual(before);
    one.gate.resolve();
    expect(two.state.calls).toBe(0);
  });

  it('creates one run for concurrent starts with the same id and input', async () => {
    const { wf, state, gate } = counted('concurrent', z.object({ n: z.number() }));
    const { engine, store } = await setup({ workflows: [wf], clock: new ManualClock() });
    const handles = await Promise.all(
      Array.from({ length: 10 }, () => engine.start(wf, { n: 1 }, { id: 'race' })),
    );
    expect(new Set(handles.map((h) => h.id))).toEqual(new Set(['race']));
    gate.resolve();
    await Promise.all(handles.map((h) => h.result()));
    expect(state.calls).toBe(1);
    expect((await store.listRuns()).items).toHaveLength(1);
  });

  it('lets exactly one of concurrent starts with different input win', async () => {
    const { wf, state, gate } = counted('concurrent-conflict', z.object({ n: z.number() }));
    const { engine, store } = await setup({ workflows: [wf], clock: new ManualClock() });
    const results = await Promise.allSettled(
      [1, 2, 3, 4].map((n) => engine.start(wf, { n }, { id: 'contested' })),
    );
    const won = results.filter((r) => r.status === 'fulfilled');
    const lost = results.filter((r) => r.status === 'rejected');
    expect(won).toHaveLength(1);
    expect(lost.map((r) => (r.reason as { code: string }).code)).toEqual([
      'CONFLICT',
      'CONFLICT',
      'CONFLICT',
    ]);
    gate.resolve();
    const run = await engine.get('contested');
    expect(run.input).toEqual({ n: 1 });
    await engine.handle('contested').result();
    expect(state.calls).toBe(1);
    expect((await store.listRuns()).items).toHaveLength(1);
  });

  it('gives runs started without an id distinct, time-ordered ids', async () => {
    const { wf, gate } = counted('no-id', z.object({ n: z.number() }));
    gate.resolve();
    const { engine } = await setup({ workflows: [wf], clock: new ManualClock() });
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) ids.push((await engine.start(wf, { n: 1 })).id);
    expect(new Set(ids).size).toBe(5);
    expect([...ids].sort()).toEqual(ids);
  });
});
