import { afterEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { workflow, type CairnError } from '../src/index.js';
import { Harness, deferred, until, type Deferred } from './hitl-support.js';
import { rejectsWithCode } from './support.js';

const Ok = z.object({ ok: z.boolean() });

const sameSchema = workflow('same-schema', {
  input: z.object({}),
  async run(ctx) {
    const [a, b, c] = await Promise.all([
      ctx.waitForInput('a', { schema: Ok }),
      ctx.waitForInput('b', { schema: Ok }),
      ctx.waitForInput('c', { schema: Ok }),
    ]);
    return [a.ok, b.ok, c.ok];
  },
});

const mixed = workflow('mixed', {
  input: z.object({}),
  async run(ctx) {
    const [legal, finance] = await Promise.all([
      ctx.waitForInput('legal', { schema: Ok }),
      ctx.waitForInput('finance', { schema: z.object({ limit: z.number().int() }) }),
    ]);
    return { legal: legal.ok, limit: finance.limit };
  },
});

let gate: Deferred<void> = deferred();
const early = workflow('early', {
  input: z.object({}),
  async run(ctx) {
    const prepared = await ctx.step('prepare', async () => {
      await gate.promise;
      return 'ready';
    });
    const decision = await ctx.waitForInput('approval', { schema: Ok });
    return { prepared, ok: decision.ok };
  },
});

const chain = workflow('chain', {
  input: z.object({}),
  async run(ctx) {
    const first = await ctx.waitForInput('first', { schema: Ok });
    await ctx.sleep('cool-off', '1h');
    const second = await ctx.waitForInput('second', { schema: z.object({ n: z.number() }) });
    return { first: first.ok, n: second.n };
  },
});

let h: Harness;
afterEach(async () => {
  gate.resolve();
  gate = deferred();
  await h?.close();
});

async function pausedRun(wf: typeof sameSchema | typeof mixed | typeof chain): Promise<string> {
  const handle = await h.engine.start(wf, {});
  await h.untilStatus(handle.id, 'paused');
  return handle.id;
}

function failure(promise: Promise<unknown>): Promise<CairnError | null> {
  return promise.then(
    () => null,
    (error: CairnError) => error,
  );
}

describe('engine.resume (whole run)', () => {
  it('resumes every waiting task with one payload', async () => {
    h = await Harness.create([sameSchema]);
    const runId = await pausedRun(sameSchema);
    const run = await h.engine.resume(runId, { ok: true }, { by: 'ops' });
    expect(run.status).not.toBe('paused');
    await expect(h.engine.handle(runId).result()).resolves.toEqual([true, true, true]);
    const tasks = await h.engine.tasks(runId);
    expect(tasks.map((t) => [t.taskId, t.status, t.resumedBy])).toEqual([
      ['a', 'completed', 'ops'],
      ['b', 'completed', 'ops'],
      ['c', 'completed', 'ops'],
    ]);
    expect(h.named('task:resumed').map((e) => e.taskId)).toEqual(['a', 'b', 'c']);
    expect(h.named('run:resumed')).toHaveLength(1);
  });

  it('resumes with a map keyed by task id', async () => {
    h = await Harness.create([mixed]);
    const runId = await pausedRun(mixed);
    await h.engine.resume(runId, { legal: { ok: false }, finance: { limit: 12 } });
    await expect(h.engine.handle(runId).result()).resolves.toEqual({ legal: false, limit: 12 });
  });

  it('is all or nothing: one invalid payload refuses them all and changes no byte', async () => {
    h = await Harness.create([mixed]);
    const runId = await pausedRun(mixed);
    const before = await h.snapshot();

    const keyed = await failure(
      h.engine.resume(runId, { legal: { ok: true }, finance: { limit: 'lots' } }),
    );
    expect(keyed?.code).toBe('INVALID_RESUME_INPUT');
    expect(keyed?.details?.issues).toBeDefined();
    // One payload for all: valid for `legal`, not for `finance`.
    const single = await failure(h.engine.resume(runId, { ok: true }));
    expect(single?.code).toBe('INVALID_RESUME_INPUT');
    // No payload for a run that waits for input.
    const none = await failure(h.engine.resume(runId));
    expect(none?.code).toBe('INVALID_RESUME_INPUT');

    await until(() => h.engine.activeRuns === 0, 'the run to leave memory');
    expect(await h.snapshot()).toEqual(before);
    expect(h.named('task:resumed')).toEqual([]);
    expect(await h.engine.get(runId)).toMatchObject({ status: 'paused', pausedTaskId: 'legal' });

    await h.engine.resume(runId, { legal: { ok: true }, finance: { limit: 1 } });
    await expect(h.engine.handle(runId).result()).resolves.toEqual({ legal: true, limit: 1 });
  });

  it('refuses to resume a run that has ended', async () => {
    h = await Harness.create([sameSchema]);
    const runId = await pausedRun(sameSchema);
    await h.engine.resume(runId, { ok: true });
    await h.engine.handle(runId).result();
    expect((await failure(h.engine.resume(runId, { ok: true })))?.code).toBe('INVALID_TRANSITION');
  });

  it('resumes a run restarted while paused', async () => {
    h = await Harness.create([sameSchema]);
    const runId = await pausedRun(sameSchema);
    await h.restart();
    expect(h.engine.activeRuns).toBe(0);
    await h.engine.resume(runId, { a: { ok: true }, b: { ok: false }, c: { ok: true } });
    await expect(h.engine.handle(runId).result()).resolves.toEqual([true, false, true]);
  });
});

describe('input sent before the wait is reached (inbox)', () => {
  it('is kept and consumed when the run gets to the wait, without pausing', async () => {
    h = await Harness.create([early]);
    const handle = await h.engine.start(early, {});
    await until(async () => (await h.store.getTask(handle.id, 'prepare')) !== undefined, 'step');

    const kept = await h.engine.resumeTask(handle.id, 'approval', { ok: true }, { by: 'ann' });
    expect(kept).toEqual({ status: 'kept', runId: handle.id, taskId: 'approval' });
    expect((await h.store.getInbox(handle.id, 'approval'))?.data).toEqual({ ok: true });

    gate.resolve();
    await expect(handle.result()).resolves.toEqual({ prepared: 'ready', ok: true });
    expect(await h.store.getTask(handle.id, 'approval')).toMatchObject({
      status: 'completed',
      output: { ok: true },
    });
    expect(await h.store.getInbox(handle.id, 'approval')).toBeUndefined();
    expect(h.named('run:paused')).toEqual([]);
    expect((await h.store.verify()).ok).toBe(true);
  });

  it('is still validated: invalid early input is dropped with a warning and the wait waits', async () => {
    h = await Harness.create([early]);
    const handle = await h.engine.start(early, {});
    await until(async () => (await h.store.getTask(handle.id, 'prepare')) !== undefined, 'step');

    const kept = await h.engine.resumeTask(handle.id, 'approval', { ok: 'maybe' });
    expect(kept.status).toBe('kept');
    gate.resolve();
    await h.untilStatus(handle.id, 'paused');

    expect(await h.store.getTask(handle.id, 'approval')).toMatchObject({ status: 'waiting' });
    expect(await h.store.getInbox(handle.id, 'approval')).toBeUndefined();
    const warnings = h.named('warning');
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatchObject({ runId: handle.id });
    expect(await h.engine.get(handle.id)).toMatchObject({ pausedTaskId: 'approval' });

    await h.engine.resumeTask(handle.id, 'approval', { ok: false });
    await expect(h.engine.handle(handle.id).result()).resolves.toEqual({
      prepared: 'ready',
      ok: false,
    });
  });

  it('is kept for a paused run and survives restarts until the wait is reached', async () => {
    h = await Harness.create([chain]);
    const runId = await pausedRun(chain);

    // The run waits on "first": input for "second" is kept only when asked for.
    await rejectsWithCode(h.engine.resumeTask(runId, 'second', { n: 7 }), 'NOT_WAITING');
    expect((await h.engine.resumeTask(runId, 'second', { n: 7 }, { keep: true })).status).toBe(
      'kept',
    );
    await h.restart();
    await h.engine.resumeTask(runId, 'first', { ok: true });
    // The run now sleeps (in memory); restart during the sleep.
    await until(async () => (await h.store.getTask(runId, 'cool-off')) !== undefined, 'sleep');
    await h.restart();
    expect((await h.store.getInbox(runId, 'second'))?.data).toEqual({ n: 7 });
    await h.clock.advance(3_600_000);
    await expect(h.engine.handle(runId).result()).resolves.toEqual({ first: true, n: 7 });
    expect(await h.store.getInbox(runId, 'second')).toBeUndefined();
    expect(h.named('run:paused')).toHaveLength(1);
  });

  it('is refused for a task that exists and is not waiting', async () => {
    h = await Harness.create([early]);
    const handle = await h.engine.start(early, {});
    await until(async () => (await h.store.getTask(handle.id, 'prepare')) !== undefined, 'step');
    // `prepare` is a step in flight: not a wait.
    expect((await failure(h.engine.resumeTask(handle.id, 'prepare', { ok: true })))?.code).toBe(
      'NOT_WAITING',
    );
    gate.resolve();
    await h.untilStatus(handle.id, 'paused');
  });
});
