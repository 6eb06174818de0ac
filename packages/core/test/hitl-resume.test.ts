import { afterEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { MemoryStore } from '@cairn/store';
import { workflow, type CairnError } from '../src/index.js';
import { Harness, deferred, until, type Deferred } from './hitl-support.js';
import { open, rejectsWithCode } from './support.js';

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

  it('is still validated: refused early input stays visible and the wait waits', async () => {
    h = await Harness.create([early]);
    const handle = await h.engine.start(early, {});
    await until(async () => (await h.store.getTask(handle.id, 'prepare')) !== undefined, 'step');

    const kept = await h.engine.resumeTask(handle.id, 'approval', { ok: 'maybe' });
    expect(kept.status).toBe('kept');
    gate.resolve();
    await h.untilStatus(handle.id, 'paused');
    const refused = {
      at: h.clock.now(),
      data: { ok: 'maybe' },
      issues: [expect.objectContaining({ code: 'invalid_type', path: ['ok'] })],
    };

    // On the wait's record (moved there from the inbox), the wait still waiting...
    expect(await h.store.getTask(handle.id, 'approval')).toMatchObject({
      status: 'waiting',
      meta: { refusedInput: refused },
    });
    expect(await h.store.getInbox(handle.id, 'approval')).toBeUndefined();
    expect(await h.engine.get(handle.id)).toMatchObject({ pausedTaskId: 'approval' });
    // ...in an event and a log line...
    expect(h.named('task:input-refused')).toEqual([
      { runId: handle.id, taskId: 'approval', issues: refused.issues },
    ]);
    expect(h.named('warning')).toEqual([]);
    const logs = await h.store.readLogs(handle.id);
    expect(logs.map((l) => [l.level, l.data])).toEqual([
      ['warn', { taskId: 'approval', issues: refused.issues }],
    ]);
    // ...in the approvals inbox and in the diagnosis.
    expect((await h.engine.listWaiting()).items).toEqual([
      expect.objectContaining({ taskId: 'approval', refusedInput: refused }),
    ]);
    const diagnosis = await h.engine.diagnose(handle.id);
    expect(diagnosis.waiting[0]?.refusedInput).toEqual(refused);
    expect(diagnosis.inbox).toEqual([]);
    expect(diagnosis.findings).toContainEqual(expect.stringContaining('was refused by its schema'));

    // A correct answer still resumes it; the record keeps what was refused.
    await h.engine.resumeTask(handle.id, 'approval', { ok: false });
    await expect(h.engine.handle(handle.id).result()).resolves.toEqual({
      prepared: 'ready',
      ok: false,
    });
    expect(await h.store.getTask(handle.id, 'approval')).toMatchObject({
      status: 'completed',
      meta: { refusedInput: refused },
    });
  });

  it('is refused on a recorded wait after a restart, and stays refused across the next', async () => {
    h = await Harness.create([chain]);
    const runId = await pausedRun(chain);
    // What a crash can leave: input acknowledged as kept for a wait recorded as waiting.
    await h.engine.close();
    await h.store.putInbox(runId, 'first', { ok: 'later' });
    await h.restart();
    await h.engine.resumeTask(runId, 'first', { ok: 'still no' }).catch(() => undefined);
    await until(
      async () => (await h.store.getTask(runId, 'first'))?.meta.refusedInput !== undefined,
      'the refusal',
    );
    expect((await h.store.getTask(runId, 'first'))?.meta.refusedInput).toMatchObject({
      data: { ok: 'later' },
    });
    expect(await h.store.listInbox(runId)).toEqual([]);
    await h.restart();
    await h.engine.resumeTask(runId, 'first', { ok: true });
    await h.untilStatus(runId, 'running');
    expect(h.named('task:input-refused')).toHaveLength(1);
  });

  it('keeps the issues but not the input when both do not fit on the wait', async () => {
    const { engine, store } = await open({
      workflows: [early],
      store: new MemoryStore({ maxRecordBytes: 600 }),
    });
    try {
      const handle = await engine.start(early, {});
      await until(async () => (await store.getTask(handle.id, 'prepare')) !== undefined, 'step');
      await engine.resumeTask(handle.id, 'approval', { ok: 'x'.repeat(450) });
      gate.resolve();
      await until(async () => (await handle.status()) === 'paused', 'the pause');
      const refused = (await store.getTask(handle.id, 'approval'))?.meta.refusedInput;
      expect(refused).toMatchObject({ issues: [expect.anything()] });
      expect(refused).not.toHaveProperty('data');
      expect(await store.listInbox(handle.id)).toEqual([]);
    } finally {
      await engine.close();
      await store.close();
    }
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
