import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { workflow, type CairnError } from '../src/index.js';
import { Harness, deferred, settle, until, type Deferred } from './hitl-support.js';

let gates: Record<'a' | 'b', Deferred<void>>;
let calls: Record<string, number>;

function call(name: string): void {
  calls[name] = (calls[name] ?? 0) + 1;
}

const batch = workflow('batch', {
  input: z.object({ n: z.number() }),
  async run(ctx, input) {
    const [a, b] = await Promise.all([
      ctx.step('a', async () => {
        call('a');
        await gates.a.promise;
        return input.n;
      }),
      ctx.step('b', async () => {
        call('b');
        await gates.b.promise;
        return input.n * 10;
      }),
    ]);
    const c = await ctx.step('c', () => {
      call('c');
      return a + b;
    });
    const d = await ctx.step('d', () => {
      call('d');
      return c * 2;
    });
    return { a, b, c, d };
  },
});

const napper = workflow('napper', {
  input: z.object({}),
  async run(ctx) {
    await ctx.step('before', () => call('before'));
    await ctx.sleep('nap', '1h');
    const woke = ctx.now();
    await ctx.step('after', () => call('after'));
    return woke;
  },
});

const approver = workflow('approver', {
  input: z.object({}),
  async run(ctx) {
    const decision = await ctx.waitForInput('approval', { schema: z.object({ ok: z.boolean() }) });
    const sent = await ctx.step('notify', () => {
      call('notify');
      return decision.ok ? 'approved' : 'rejected';
    });
    return sent;
  },
});

let h: Harness;
beforeEach(() => {
  gates = { a: deferred(), b: deferred() };
  calls = {};
});
afterEach(async () => {
  gates.a.resolve();
  gates.b.resolve();
  await h?.close();
});

function failure(promise: Promise<unknown>): Promise<CairnError | null> {
  return promise.then(
    () => null,
    (error: CairnError) => error,
  );
}

describe('operator pause', () => {
  it('waits for in-flight steps, starts nothing new, and survives a restart until resumed', async () => {
    h = await Harness.create([batch]);
    const handle = await h.engine.start(batch, { n: 2 });
    await until(() => calls.a === 1 && calls.b === 1, 'both steps to start');

    let resolved = false;
    const pausing = h.engine.pause(handle.id).then((run) => {
      resolved = true;
      return run;
    });
    await settle(5);
    expect(resolved).toBe(false);
    // Asked for, not yet paused: steps are still running.
    expect(await h.engine.get(handle.id)).toMatchObject({
      status: 'running',
      pauseRequested: true,
    });

    gates.a.resolve();
    await settle(5);
    expect(resolved).toBe(false);
    expect(await h.store.getTask(handle.id, 'a')).toMatchObject({ status: 'completed', output: 2 });

    gates.b.resolve();
    const paused = await pausing;
    expect(paused).toMatchObject({
      status: 'paused',
      isPaused: true,
      pausedTaskId: 'c',
      pauseRequested: true,
    });
    // Both in-flight steps were checkpointed; `c` never started.
    const tasks = await h.engine.tasks(handle.id);
    expect(tasks.map((t) => [t.taskId, t.status])).toEqual([
      ['a', 'completed'],
      ['b', 'completed'],
    ]);
    expect(calls).toEqual({ a: 1, b: 1 });
    expect(h.engine.activeRuns).toBe(0);
    expect(h.named('run:paused')).toEqual([
      { runId: handle.id, workflow: 'batch', pausedTaskId: 'c', reason: 'operator' },
    ]);

    await h.restart();
    await settle(5);
    expect(await h.engine.get(handle.id)).toMatchObject({ status: 'paused', pausedTaskId: 'c' });
    expect(h.engine.activeRuns).toBe(0);
    expect(calls).toEqual({ a: 1, b: 1 });
    expect(h.named('run:recovered')).toEqual([]);

    const resumed = await h.engine.resume(handle.id);
    expect(resumed.isPaused).toBe(false);
    await expect(h.engine.handle(handle.id).result()).resolves.toEqual({
      a: 2,
      b: 20,
      c: 22,
      d: 44,
    });
    expect(calls).toEqual({ a: 1, b: 1, c: 1, d: 1 });
    expect(h.named('run:resumed')).toEqual([{ runId: handle.id, workflow: 'batch' }]);
    expect((await h.store.verify()).ok).toBe(true);
  });

  it('resumes in the same process', async () => {
    h = await Harness.create([batch]);
    const handle = await h.engine.start(batch, { n: 1 });
    await until(() => calls.a === 1 && calls.b === 1, 'both steps to start');
    const pausing = h.engine.pause(handle.id);
    gates.a.resolve();
    gates.b.resolve();
    expect((await pausing).pausedTaskId).toBe('c');
    await h.engine.resume(handle.id);
    await expect(handle.result()).resolves.toEqual({ a: 1, b: 10, c: 11, d: 22 });
  });

  it('pauses a sleeping run; the timer does not wake it until it is resumed', async () => {
    h = await Harness.create([napper]);
    const t0 = h.clock.now();
    const handle = await h.engine.start(napper, {});
    await until(async () => (await h.store.getTask(handle.id, 'nap')) !== undefined, 'the nap');
    const paused = await h.engine.pause(handle.id);
    expect(paused).toMatchObject({ status: 'paused', pausedTaskId: 'nap' });
    await until(() => h.engine.activeRuns === 0, 'the run to leave memory');

    await h.clock.advance(2 * 3_600_000);
    expect(await h.engine.get(handle.id)).toMatchObject({ status: 'paused' });
    await h.restart();
    await h.clock.advance(1000);
    expect(await h.engine.get(handle.id)).toMatchObject({ status: 'paused' });
    expect(calls).toEqual({ before: 1 });

    await h.engine.resume(handle.id);
    // The nap ended long ago: the run goes on; the sleep records its original wake time.
    const woke = await h.engine.handle<number>(handle.id).result();
    expect(woke).toBe(t0 + 2 * 3_600_000 + 1000);
    expect(await h.store.getTask(handle.id, 'nap')).toMatchObject({
      status: 'completed',
      wakeAt: t0 + 3_600_000,
    });
    expect(calls).toEqual({ before: 1, after: 1 });
  });

  it('holds a waiting run: input is taken, but nothing runs until resume()', async () => {
    h = await Harness.create([approver]);
    const handle = await h.engine.start(approver, {});
    await h.untilStatus(handle.id, 'paused');
    const paused = await h.engine.pause(handle.id);
    expect(paused).toMatchObject({ status: 'paused', pauseRequested: true });

    await h.engine.resumeTask(handle.id, 'approval', { ok: true });
    await until(() => h.engine.activeRuns === 0, 'the run to leave memory');
    expect(await h.engine.get(handle.id)).toMatchObject({
      status: 'paused',
      pausedTaskId: 'notify',
    });
    expect(calls).toEqual({});

    await h.restart();
    await h.engine.resume(handle.id);
    await expect(h.engine.handle(handle.id).result()).resolves.toBe('approved');
    expect(calls).toEqual({ notify: 1 });
  });

  it('resume(runId, data) of a run paused by an operator at a wait ends the pause and delivers the data', async () => {
    h = await Harness.create([approver]);
    const handle = await h.engine.start(approver, {});
    await h.untilStatus(handle.id, 'paused');
    await h.engine.pause(handle.id);
    await h.restart();

    await expect(h.engine.resume(handle.id, { ok: 'no' })).rejects.toMatchObject({
      code: 'INVALID_RESUME_INPUT',
    });
    await until(() => h.engine.activeRuns === 0, 'the run to leave memory');
    expect(await h.engine.get(handle.id)).toMatchObject({
      status: 'paused',
      pauseRequested: true,
    });

    await h.engine.resume(handle.id, { ok: false });
    await expect(h.engine.handle(handle.id).result()).resolves.toBe('rejected');
    expect(h.named('run:resumed')).toHaveLength(1);
  });

  it('resume(runId) of a run paused by an operator at a wait leaves it waiting', async () => {
    h = await Harness.create([approver]);
    const handle = await h.engine.start(approver, {});
    await h.untilStatus(handle.id, 'paused');
    await h.engine.pause(handle.id);
    await h.engine.resume(handle.id);
    await h.untilStatus(handle.id, 'paused');
    expect(await h.engine.get(handle.id)).toMatchObject({
      pausedTaskId: 'approval',
      pauseRequested: false,
    });
    await h.engine.resumeTask(handle.id, 'approval', { ok: true });
    await expect(h.engine.handle(handle.id).result()).resolves.toBe('approved');
  });

  it('refuses to pause an ended run and to resume a run that is not paused', async () => {
    h = await Harness.create([batch, approver]);
    const handle = await h.engine.start(batch, { n: 1 });
    await until(() => calls.a === 1, 'a step to start');
    expect((await failure(h.engine.resume(handle.id)))?.code).toBe('NOT_PAUSED');
    gates.a.resolve();
    gates.b.resolve();
    await handle.result();
    expect((await failure(h.engine.pause(handle.id)))?.code).toBe('INVALID_TRANSITION');
    expect((await failure(h.engine.pause('no-such-run')))?.code).toBe('NOT_FOUND');
  });

  it('pausing twice is harmless', async () => {
    h = await Harness.create([batch]);
    const handle = await h.engine.start(batch, { n: 3 });
    await until(() => calls.a === 1 && calls.b === 1, 'both steps to start');
    const first = h.engine.pause(handle.id);
    const second = h.engine.pause(handle.id);
    gates.a.resolve();
    gates.b.resolve();
    const [one, two] = await Promise.all([first, second]);
    expect(one.pausedTaskId).toBe('c');
    expect(two.pausedTaskId).toBe('c');
    expect(await h.engine.pause(handle.id)).toMatchObject({ status: 'paused', pausedTaskId: 'c' });
    expect(h.named('run:paused')).toHaveLength(1);
    await h.engine.resume(handle.id);
    await expect(handle.result()).resolves.toMatchObject({ d: 66 });
  });
});
