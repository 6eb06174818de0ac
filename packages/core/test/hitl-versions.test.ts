import { afterEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { MemoryStore } from '@cairn/store';
import { workflow, type CairnError } from '../src/index.js';
import { Harness, snapshot, until } from './hitl-support.js';

const HOUR = 3_600_000;
const Sign = z.object({ signed: z.boolean() });
const ran: string[] = [];

const v1 = workflow('deal', {
  version: '1',
  input: z.object({ id: z.string() }),
  async run(ctx, input) {
    const quote = await ctx.step('quote', () => {
      ran.push('v1:quote');
      return 100;
    });
    const signature = await ctx.waitForInput('sign', { schema: Sign, timeout: '10h' });
    await ctx.step('close', () => ran.push('v1:close'));
    return { code: 'v1', id: input.id, quote, signed: signature.signed };
  },
});

const v2 = workflow('deal', {
  version: '2',
  input: z.object({ id: z.string() }),
  async run(ctx, input) {
    // Different steps: replaying a v1 run on this code would be non-deterministic.
    const price = await ctx.step('price', () => {
      ran.push('v2:price');
      return 200;
    });
    const approval = await ctx.waitForInput('approve', { schema: Sign });
    return { code: 'v2', id: input.id, price, signed: approval.signed };
  },
});

const napV1 = workflow('nap', {
  version: '1',
  input: z.object({}),
  async run(ctx) {
    await ctx.sleep('rest', '1h');
    return 'v1';
  },
});

const napV2 = workflow('nap', {
  version: '2',
  input: z.object({}),
  async run() {
    return 'v2';
  },
});

let h: Harness;
afterEach(async () => {
  ran.length = 0;
  await h?.close();
});

function failure(promise: Promise<unknown>): Promise<CairnError | null> {
  return promise.then(
    () => null,
    (error: CairnError) => error,
  );
}

describe('versions', () => {
  it('refuses to resume a run whose version is not registered, and leaves it untouched', async () => {
    h = await Harness.create([v1]);
    const handle = await h.engine.start(v1, { id: 'd-1' });
    await h.untilStatus(handle.id, 'paused');
    expect((await handle.run()).version).toBe('1');

    await h.restart([v2]);
    const before = await h.snapshot();
    // Recovery does not touch a paused run at all.
    expect(h.named('problem')).toEqual([]);

    const byTask = await failure(h.engine.resumeTask(handle.id, 'sign', { signed: true }));
    expect(byTask?.code).toBe('VERSION_NOT_REGISTERED');
    expect(byTask?.details).toMatchObject({
      runId: handle.id,
      workflow: 'deal',
      version: '1',
      registered: ['2'],
    });
    expect((await failure(h.engine.resume(handle.id, { signed: true })))?.code).toBe(
      'VERSION_NOT_REGISTERED',
    );
    // The wait's timeout falls due: reported, not acted on.
    await h.clock.advance(10 * HOUR);
    expect(h.named('problem').map((p) => [p.runId, p.error.code])).toEqual([
      [handle.id, 'VERSION_NOT_REGISTERED'],
    ]);
    expect(h.engine.activeRuns).toBe(0);
    expect(await h.snapshot()).toEqual(before);
    expect(ran).toEqual(['v1:quote']);

    // New runs use v2 meanwhile.
    const fresh = await h.engine.start('deal', { id: 'd-2' });
    await h.untilStatus(fresh.id, 'paused');
    expect((await fresh.run()).version).toBe('2');

    // An engine with both versions finishes the old run on v1 code (its wait timed out).
    await h.restart([v1, v2]);
    await h.clock.advance(0);
    await expect(h.engine.handle(handle.id).result()).rejects.toMatchObject({
      code: 'WAIT_TIMEOUT',
    });
    await h.engine.resumeTask(fresh.id, 'approve', { signed: true });
    await expect(h.engine.handle(fresh.id).result()).resolves.toMatchObject({ code: 'v2' });
  });

  it('an engine registering both versions resumes the old run on v1 code', async () => {
    h = await Harness.create([v1]);
    const handle = await h.engine.start(v1, { id: 'd-3' });
    await h.untilStatus(handle.id, 'paused');
    await h.restart([v2]);
    await expect(h.engine.resumeTask(handle.id, 'sign', { signed: true })).rejects.toMatchObject({
      code: 'VERSION_NOT_REGISTERED',
    });
    await h.restart([v2, v1]);
    await h.engine.resumeTask(handle.id, 'sign', { signed: true });
    await expect(h.engine.handle(handle.id).result()).resolves.toEqual({
      code: 'v1',
      id: 'd-3',
      quote: 100,
      signed: true,
    });
    expect(ran).toEqual(['v1:quote', 'v1:close']);
    expect((await h.engine.get(handle.id)).version).toBe('1');
  });

  it('recovery leaves a running run of an unregistered version as it is, with a problem event', async () => {
    h = await Harness.create([napV1]);
    const handle = await h.engine.start(napV1, {});
    await until(async () => (await h.store.getTask(handle.id, 'rest')) !== undefined, 'the rest');
    await h.engine.close();
    const memory = h.store.memory;
    await h.store.close();
    const peek = new MemoryStore({ db: memory });
    await peek.open();
    const before = await snapshot(peek);
    await peek.close();

    await h.restart([napV2]);
    const problems = h.named('problem');
    expect(problems.map((p) => [p.runId, p.error.code])).toEqual([
      [handle.id, 'VERSION_NOT_REGISTERED'],
    ]);
    expect(h.named('run:recovered')).toEqual([]);
    expect(h.engine.activeRuns).toBe(0);
    await h.clock.advance(2 * HOUR);
    expect(await h.engine.get(handle.id)).toMatchObject({
      status: 'running',
      version: '1',
      recoveries: 0,
    });
    expect(await h.snapshot()).toEqual(before);

    await h.restart([napV1, napV2]);
    await expect(h.engine.handle(handle.id).result()).resolves.toBe('v1');
  });
});
