import { storePort } from '../engine-port.js';
import { expect, it } from 'vitest';
import { LevelBackedStore } from '../level-backed-store.js';
import type { Run } from '../records.js';
import { type Store } from '../store.js';
import { usageOfStep, type UsageDelta } from '../usage.js';
import { failBatches } from './atomic.js';
import { expectCairnError, expectTypeError, itIf, rawDb, type SuiteContext } from './context.js';
import { makeRun, makeTask } from './fixtures.js';
import { rawEntries } from './snapshot.js';

const DAY = 86_400_000;
const JAN1 = Date.UTC(2025, 0, 1);

function delta(overrides: Partial<UsageDelta> = {}): UsageDelta {
  return {
    day: '2025-01-01',
    namespace: 'default',
    workflow: 'llm',
    model: 'gpt-x',
    steps: 1,
    promptTokens: 100,
    completionTokens: 20,
    totalTokens: 120,
    ...overrides,
  };
}

/** A checkpoint completing one step of `run` that carries `usage`. */
async function step(store: Store, run: Run, usage: UsageDelta[]): Promise<void> {
  await store.checkpoint({ tasks: [makeTask(run)], usage });
}

export function usageTests(ctx: SuiteContext): void {
  it('usageOfStep reads model and tokens from meta, numbers only', () => {
    const run = { namespace: 'acme', workflow: 'llm' };
    const at = JAN1 + 3 * DAY + 5;
    const base = { startedAt: at - 5, endedAt: at };
    expect(
      usageOfStep(run, {
        ...base,
        meta: { model: 'gpt-x', promptTokens: 10, completionTokens: 4, totalTokens: 15 },
      }),
    ).toEqual({
      day: '2025-01-04',
      namespace: 'acme',
      workflow: 'llm',
      model: 'gpt-x',
      steps: 1,
      promptTokens: 10,
      completionTokens: 4,
      totalTokens: 15,
    });
    // No total: prompt plus completion. Not numbers, negative or NaN: zero. No model: '-'.
    expect(usageOfStep(run, { ...base, meta: { promptTokens: 3, completionTokens: 4 } })).toEqual(
      expect.objectContaining({ model: '-', totalTokens: 7 }),
    );
    expect(
      usageOfStep(run, {
        ...base,
        meta: { model: 42, promptTokens: '9', completionTokens: -1, totalTokens: Number.NaN },
      }),
    ).toEqual(
      expect.objectContaining({ model: '-', promptTokens: 0, completionTokens: 0, totalTokens: 0 }),
    );
    expect(usageOfStep(run, { ...base, meta: { model: 'a\u0000b' } }).model).toBe('ab');
  });

  it('checkpoints add their usage; queries group by namespace, workflow, model or day', async () => {
    const store = await ctx.open();
    const run = makeRun();
    await store.createRun(run);
    await step(store, run, [delta()]);
    await step(store, run, [
      delta({ model: 'gpt-y', promptTokens: 1, completionTokens: 2, totalTokens: 3 }),
    ]);
    await step(store, run, [
      delta({
        day: '2025-01-02',
        namespace: 'acme',
        workflow: 'etl',
        model: '-',
        promptTokens: 0,
        completionTokens: 0,
        totalTokens: 0,
      }),
      delta({ day: '2025-01-03' }),
    ]);
    expect(await store.usage({ by: 'model' })).toEqual([
      { key: '-', steps: 1, promptTokens: 0, completionTokens: 0, totalTokens: 0 },
      { key: 'gpt-x', steps: 2, promptTokens: 200, completionTokens: 40, totalTokens: 240 },
      { key: 'gpt-y', steps: 1, promptTokens: 1, completionTokens: 2, totalTokens: 3 },
    ]);
    expect((await store.usage({ by: 'day' })).map((r) => [r.key, r.steps])).toEqual([
      ['2025-01-01', 2],
      ['2025-01-02', 1],
      ['2025-01-03', 1],
    ]);
    expect((await store.usage({ by: 'namespace' })).map((r) => [r.key, r.steps])).toEqual([
      ['acme', 1],
      ['default', 3],
    ]);
    expect((await store.usage({ by: 'workflow', namespace: 'default' })).map((r) => r.key)).toEqual(
      ['llm'],
    );
    // Bounds are days (inclusive), given as days or as times in ms.
    const jan2 = await store.usage({ by: 'model', since: '2025-01-02', until: '2025-01-02' });
    expect(jan2.map((r) => r.key)).toEqual(['-']);
    const fromMs = await store.usage({ by: 'day', since: JAN1 + DAY + 5, until: JAN1 + 2 * DAY });
    expect(fromMs.map((r) => r.key)).toEqual(['2025-01-02', '2025-01-03']);
    expect(await store.usage({ by: 'model', workflow: 'nope' })).toEqual([]);
  });

  it('checkpoints in the same tick all count (they share a batch)', async () => {
    const store = await ctx.open();
    const run = makeRun();
    await store.createRun(run);
    await Promise.all(Array.from({ length: 50 }, () => step(store, run, [delta()])));
    expect(await store.usage({ by: 'model' })).toEqual([
      { key: 'gpt-x', steps: 50, promptTokens: 5000, completionTokens: 1000, totalTokens: 6000 },
    ]);
  });

  it('a soft checkpoint through the engine path counts its usage too', async () => {
    const store = await ctx.open();
    const run = makeRun();
    await store.createRun(run);
    await storePort(store).write({ tasks: [makeTask(run)], usage: [delta()] }, { durable: false });
    expect(await store.usage({ by: 'model' })).toEqual([
      { key: 'gpt-x', steps: 1, promptTokens: 100, completionTokens: 20, totalTokens: 120 },
    ]);
  });

  itIf(ctx.supports.persistence, 'the backend does not keep data (supports.persistence)')(
    'usage totals survive a reopen, and go on from there',
    async () => {
      let store = await ctx.open();
      const run = makeRun();
      await store.createRun(run);
      await step(store, run, [delta(), delta({ workflow: 'other' })]);
      store = await ctx.reopen(store);
      await step(store, run, [delta()]);
      expect(await store.usage({ by: 'workflow' })).toEqual([
        { key: 'llm', steps: 2, promptTokens: 200, completionTokens: 40, totalTokens: 240 },
        { key: 'other', steps: 1, promptTokens: 100, completionTokens: 20, totalTokens: 120 },
      ]);
    },
  );

  itIf(ctx.levelBacked, 'batch failures are injected into a LevelBackedStore')(
    'a checkpoint whose batch fails adds nothing to the totals',
    async () => {
      let store = await ctx.open();
      const run = makeRun();
      await store.createRun(run);
      await step(store, run, [delta()]);
      const restore = failBatches(store);
      try {
        await expectCairnError(() => step(store, run, [delta({ steps: 5 })]), 'WRITE_FAILED');
      } finally {
        restore();
      }
      expect((await store.usage({ by: 'model' }))[0]?.steps).toBe(1);
      await step(store, run, [delta()]);
      expect((await store.usage({ by: 'model' }))[0]?.steps).toBe(2);
      if (ctx.supports.persistence) {
        store = await ctx.reopen(store);
        expect((await store.usage({ by: 'model' }))[0]?.steps).toBe(2);
      }
      expect(store).toBeInstanceOf(LevelBackedStore);
    },
  );

  itIf(
    ctx.levelBacked && ctx.supports.persistence,
    'damages raw keys of a persistent LevelBackedStore',
  )('a damaged usage total does not keep the store from opening', async () => {
    let store = await ctx.open();
    const run = makeRun();
    await store.createRun(run);
    await step(store, run, [delta(), delta({ model: 'other' })]);
    const db = await rawDb(store);
    await db.put(
      ['usage', '2025-01-01', 'default', 'llm', 'gpt-x'].join('\u0000'),
      new Uint8Array([0xc1]),
    );
    store = await ctx.reopen(store);
    expect((await store.usage({ by: 'model' })).map((r) => [r.key, r.steps])).toEqual([
      ['other', 1],
    ]);
    await step(store, run, [delta()]);
    expect((await store.usage({ by: 'model' })).map((r) => [r.key, r.steps])).toEqual([
      ['gpt-x', 1],
      ['other', 1],
    ]);
  });

  it('deleting a run keeps the usage it recorded (usage is history)', async () => {
    const store = await ctx.open();
    const run = makeRun();
    await store.createRun(run);
    await step(store, run, [delta()]);
    await store.deleteRun(run.id);
    expect((await store.usage({ by: 'model' }))[0]?.steps).toBe(1);
    expect((await store.verify()).ok).toBe(true);
  });

  it('a bad usage delta is refused and nothing is written', async () => {
    const store = await ctx.open();
    const run = makeRun();
    await store.createRun(run);
    const before = await rawEntries(store);
    for (const bad of [
      delta({ day: '2025-1-1' }),
      delta({ model: '' }),
      delta({ totalTokens: -1 }),
      delta({ steps: Number.POSITIVE_INFINITY }),
      { ...delta(), namespace: undefined },
    ]) {
      await expectCairnError(
        () => store.checkpoint({ tasks: [makeTask(run)], usage: [bad as UsageDelta] }),
        'INVALID_ARGUMENT',
      );
    }
    await expectTypeError(() => store.checkpoint({ usage: 'lots' as unknown as UsageDelta[] }));
    await expectTypeError(() => store.checkpoint({ usage: [null as unknown as UsageDelta] }));
    expect(await rawEntries(store)).toEqual(before);
    expect(await store.usage({ by: 'day' })).toEqual([]);
  });

  it('bad usage queries are refused', async () => {
    const store = await ctx.open();
    await expectTypeError(() => store.usage(undefined as never));
    await expectTypeError(() => store.usage({} as never));
    await expectCairnError(() => store.usage({ by: 'run' as never }), 'INVALID_ARGUMENT');
    await expectCairnError(
      () => store.usage({ by: 'day', since: '2025/01/01' }),
      'INVALID_ARGUMENT',
    );
    await expectCairnError(
      () => store.usage({ by: 'day', until: '2025-02-30' }),
      'INVALID_ARGUMENT',
    );
    await expectCairnError(() => store.usage({ by: 'day', since: Number.NaN }), 'INVALID_ARGUMENT');
    await expectTypeError(() => store.usage({ by: 'day', since: {} as never }));
    await expectCairnError(() => store.usage({ by: 'day', namespace: '' }), 'INVALID_ARGUMENT');
  });
}
