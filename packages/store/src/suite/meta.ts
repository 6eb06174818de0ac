import { expect, it } from 'vitest';
import { expectCairnError, type SuiteContext } from './context.js';

export function metaTests(ctx: SuiteContext): void {
  it('putMeta then getMeta returns the value; a second put replaces it', async () => {
    const store = await ctx.open();
    const value = { owner: 'ops', since: new Date(0), limits: [1, 2, 3], on: true };
    await store.putMeta('engine', value);
    expect(await store.getMeta('engine')).toEqual(value);
    await store.putMeta('engine', 'replaced');
    expect(await store.getMeta('engine')).toBe('replaced');
  });

  it('getMeta of an unknown name is undefined', async () => {
    const store = await ctx.open();
    expect(await store.getMeta('never-set')).toBeUndefined();
  });

  it('names are independent, prefixes included', async () => {
    const store = await ctx.open();
    await store.putMeta('a', 1);
    await store.putMeta('ab', 2);
    await store.putMeta('a/b', 3);
    expect([
      await store.getMeta('a'),
      await store.getMeta('ab'),
      await store.getMeta('a/b'),
    ]).toEqual([1, 2, 3]);
  });

  it('the names the store manages cannot be written, and stay as they were', async () => {
    const store = await ctx.open();
    const version = await store.getMeta('schemaVersion');
    await expectCairnError(() => store.putMeta('schemaVersion', 999), 'INVALID_ARGUMENT');
    await expectCairnError(() => store.putMeta('migration', { done: 0 }), 'INVALID_ARGUMENT');
    await expectCairnError(() => store.putMeta('logSeq', 0), 'INVALID_ARGUMENT');
    const applied = await store.getMeta('appliedSeq');
    await expectCairnError(() => store.putMeta('appliedSeq', 0), 'INVALID_ARGUMENT');
    expect(await store.getMeta('appliedSeq')).toEqual(applied);
    expect(await store.getMeta('schemaVersion')).toBe(version);
    expect(store.schemaVersion).toBe(version);
  });

  it('meta is not a run: it is not listed and does not affect verify()', async () => {
    const store = await ctx.open();
    await store.putMeta('engine', { id: 'x' });
    expect((await store.listRuns()).items).toEqual([]);
    expect(await store.verify()).toMatchObject({ ok: true, runs: 0, tasks: 0 });
  });
}
