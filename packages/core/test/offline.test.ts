import { afterEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import {
  CairnError,
  offlineCancel,
  offlinePause,
  offlineResume,
  offlineResumeTask,
  workflow,
} from '../src/index.js';
import { Harness, deferred, snapshot, until, type Deferred } from './hitl-support.js';
import { rejectsWithCode } from './support.js';

/**
 * Offline run operations: a tool opens the store with no workflow code (no engine), answers,
 * pauses, resumes or cancels runs; the next engine carries on from what it wrote.
 */

const Decision = z.object({ approved: z.boolean(), by: z.string().min(2) });
let scored = 0;
let paid = 0;

const expense = workflow('expense-approval', {
  input: z.object({ id: z.string(), amount: z.number() }),
  async run(ctx, input) {
    const risk = await ctx.step('score-risk', () => {
      scored++;
      return { high: input.amount > 1000 };
    });
    if (!risk.high) return { status: 'auto' };
    const decision = await ctx.waitForInput('manager-approval', { schema: Decision });
    if (!decision.approved) return { status: 'rejected', by: decision.by };
    await ctx.step('pay', () => {
      paid++;
      return 'ok';
    });
    return { status: 'paid', by: decision.by };
  },
});

const Ok = z.object({ ok: z.boolean() });
const contract = workflow('contract', {
  input: z.object({}),
  async run(ctx) {
    const [legal, finance, security] = await Promise.all([
      ctx.waitForInput('legal', { schema: Ok }),
      ctx.waitForInput('finance', { schema: z.object({ limit: z.number().int() }) }),
      ctx.waitForInput('security', { schema: Ok }),
    ]);
    return { legal: legal.ok, limit: finance.limit, security: security.ok };
  },
});

let gate: Deferred<void> = deferred();
const slow = workflow('slow', {
  input: z.object({}),
  async run(ctx) {
    const a = await ctx.step('first', async () => {
      await gate.promise;
      return 1;
    });
    const b = await ctx.step('second', () => 2);
    return a + b;
  },
});

const child = workflow('child', {
  input: z.object({}),
  async run(ctx) {
    await ctx.waitForInput('child-approval', { schema: Ok });
    return 'child done';
  },
});
const parent = workflow('parent', {
  input: z.object({}),
  async run(ctx) {
    const [c, approval] = await Promise.all([
      ctx.child('sub', child, {}),
      ctx.waitForInput('parent-approval', { schema: Ok }),
    ]);
    return { c, approval };
  },
});

const ALL = [expense, contract, slow, child, parent];

let h: Harness;
afterEach(async () => {
  gate.resolve();
  gate = deferred();
  scored = 0;
  paid = 0;
  await h?.close();
});

/** A run started in an engine that pauses at a wait; the engine is then closed. */
async function pausedExpense(): Promise<string> {
  h = await Harness.create(ALL);
  const handle = await h.engine.start(expense, { id: 'e-1', amount: 1250 });
  await h.untilStatus(handle.id, 'paused');
  await h.engine.close();
  return handle.id;
}

async function expectCode(promise: Promise<unknown>, code: string): Promise<CairnError> {
  const error = await promise.then(
    () => expect.fail(`expected ${code}`),
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(CairnError);
  expect((error as CairnError).code).toBe(code);
  return error as CairnError;
}

describe('offlineResumeTask', () => {
  it('a run paused in an engine, resumed offline, is completed by the next engine', async () => {
    const runId = await pausedExpense();
    const result = await offlineResumeTask(
      h.store,
      runId,
      'manager-approval',
      { approved: true, by: 'maria' },
      { by: 'cli:ops' },
    );
    expect(result).toMatchObject({ status: 'resumed', runId, taskId: 'manager-approval' });
    expect(result.run).toMatchObject({ status: 'queued', isPaused: false, pausedTaskId: null });
    expect(await h.store.getRun(runId)).toEqual(result.run);
    const task = await h.store.getTask(runId, 'manager-approval');
    expect(task).toMatchObject({
      status: 'completed',
      output: { approved: true, by: 'maria' },
      resumedBy: 'cli:ops',
    });
    expect((await h.store.listWaiting()).items).toEqual([]);
    expect(await h.store.dueTimers(Number.MAX_SAFE_INTEGER)).toEqual([]);

    await h.restart();
    await expect(h.engine.handle(runId).result()).resolves.toEqual({ status: 'paid', by: 'maria' });
    const run = await h.engine.get(runId);
    expect(run).toMatchObject({ status: 'completed', recoveries: 0 });
    expect(scored).toBe(1);
    expect(paid).toBe(1);
    expect(h.named('run:recovered')).toEqual([
      { runId, workflow: 'expense-approval', recoveries: 0 },
    ]);
    // The run started once, in the first engine; going on in the second is not a new start.
    expect(h.named('run:started').map((e) => e.runId)).toEqual([runId]);
  });

  it('invalid data is INVALID_RESUME_INPUT with the issues, and nothing is written', async () => {
    const runId = await pausedExpense();
    const before = await snapshot(h.store);
    const error = await expectCode(
      offlineResumeTask(h.store, runId, 'manager-approval', { approved: 'yes', by: 'm' }),
      'INVALID_RESUME_INPUT',
    );
    const issues = error.details?.issues as { path: string[] }[];
    expect(issues.map((i) => i.path.join('.')).sort()).toEqual(['approved', 'by']);
    expect(await snapshot(h.store)).toEqual(before);
  });

  it('NOT_WAITING for a task that is not waiting, NOT_FOUND for an unknown run', async () => {
    const runId = await pausedExpense();
    await expectCode(offlineResumeTask(h.store, runId, 'score-risk', {}), 'NOT_WAITING');
    await offlineResumeTask(h.store, runId, 'manager-approval', { approved: false, by: 'ada' });
    const before = await snapshot(h.store);
    await expectCode(
      offlineResumeTask(h.store, runId, 'manager-approval', { approved: true, by: 'bob' }),
      'NOT_WAITING',
    );
    await expectCode(offlineResumeTask(h.store, 'nope', 'x', {}), 'NOT_FOUND');
    expect(await snapshot(h.store)).toEqual(before);
  });

  it('two concurrent resumes of one task: exactly one wins', async () => {
    const runId = await pausedExpense();
    const results = await Promise.allSettled([
      offlineResumeTask(h.store, runId, 'manager-approval', { approved: true, by: 'one' }),
      offlineResumeTask(h.store, runId, 'manager-approval', { approved: true, by: 'two' }),
    ]);
    expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
    const lost = results.find((r) => r.status === 'rejected');
    expect((lost!.reason as CairnError).code).toBe('NOT_WAITING');
  });

  it('input for a task not reached yet is kept, and used when the run gets there', async () => {
    const runId = await pausedExpense();
    // `expense` has no task "later" (yet): as the engine does, the input is refused while the
    // run waits on another task, and kept when the caller asks for it.
    const refused = await rejectsWithCode(
      offlineResumeTask(h.store, runId, 'later', { x: 1 }),
      'NOT_WAITING',
    );
    expect((refused as CairnError).details).toMatchObject({ waiting: ['manager-approval'] });
    expect(await h.store.listInbox(runId)).toEqual([]);
    expect(
      await offlineResumeTask(h.store, runId, 'later', { x: 1 }, { keep: true }),
    ).toMatchObject({
      status: 'kept',
    });
    expect((await h.store.listInbox(runId)).map((e) => e.taskId)).toEqual(['later']);
  });

  it('parallel waits: the run stays paused at the next one until the last is answered', async () => {
    h = await Harness.create(ALL);
    const { id } = await h.engine.start(contract, {});
    await h.untilStatus(id, 'paused');
    await h.engine.close();
    const first = await offlineResumeTask(h.store, id, 'legal', { ok: true });
    expect(first.run).toMatchObject({ status: 'paused', pausedTaskId: 'finance' });
    const second = await offlineResumeTask(h.store, id, 'finance', { limit: 5 });
    expect(second.run).toMatchObject({ status: 'paused', pausedTaskId: 'security' });
    const third = await offlineResumeTask(h.store, id, 'security', { ok: false });
    expect(third.run.status).toBe('queued');
    await h.restart();
    await expect(h.engine.handle(id).result()).resolves.toEqual({
      legal: true,
      limit: 5,
      security: false,
    });
  });
});

describe('offlineResume', () => {
  it('with a map keyed by task id: those waits, all or nothing', async () => {
    h = await Harness.create(ALL);
    const { id } = await h.engine.start(contract, {});
    await h.untilStatus(id, 'paused');
    await h.engine.close();
    const before = await snapshot(h.store);
    // One bad payload refuses them all.
    await expectCode(
      offlineResume(h.store, id, { legal: { ok: true }, finance: { limit: 1.5 } }),
      'INVALID_RESUME_INPUT',
    );
    expect(await snapshot(h.store)).toEqual(before);
    const run = await offlineResume(h.store, id, { legal: { ok: true }, finance: { limit: 9 } });
    expect(run).toMatchObject({ status: 'paused', pausedTaskId: 'security' });
    // One payload for every wait left.
    expect((await offlineResume(h.store, id, { ok: true }, { by: 'ops' })).status).toBe('queued');
    expect((await h.store.getTask(id, 'security'))?.resumedBy).toBe('ops');
    await h.restart();
    await expect(h.engine.handle(id).result()).resolves.toEqual({
      legal: true,
      limit: 9,
      security: true,
    });
  });

  it('a run waiting for input needs data; a running run is NOT_PAUSED', async () => {
    const runId = await pausedExpense();
    await expectCode(offlineResume(h.store, runId), 'INVALID_RESUME_INPUT');
    await offlineResumeTask(h.store, runId, 'manager-approval', { approved: true, by: 'maria' });
    await expectCode(offlineResume(h.store, runId), 'NOT_PAUSED');
  });
});

describe('offlinePause', () => {
  it('an operator pause holds a run whose wait is answered, until it is resumed', async () => {
    const runId = await pausedExpense();
    const paused = await offlinePause(h.store, runId);
    expect(paused).toMatchObject({ status: 'paused', pauseRequested: true });
    expect(await offlinePause(h.store, runId)).toEqual(paused);
    const answered = await offlineResumeTask(h.store, runId, 'manager-approval', {
      approved: true,
      by: 'maria',
    });
    expect(answered.run).toMatchObject({ status: 'paused', pauseRequested: true });
    // Not recovered while the operator pause holds.
    await h.restart();
    expect((await h.engine.get(runId)).status).toBe('paused');
    await h.engine.close();
    const resumed = await offlineResume(h.store, runId);
    expect(resumed).toMatchObject({ status: 'queued', pauseRequested: false });
    await h.restart();
    await expect(h.engine.handle(runId).result()).resolves.toEqual({ status: 'paid', by: 'maria' });
  });

  it('a run left running by a stopped engine is paused at its next task, then resumed', async () => {
    h = await Harness.create(ALL);
    const { id } = await h.engine.start(slow, {});
    await until(async () => (await h.store.getTask(id, 'first')) !== undefined, 'first step');
    const closing = h.engine.close();
    gate.resolve();
    await closing;
    expect((await h.store.getRun(id))?.status).toBe('running');
    const paused = await offlinePause(h.store, id);
    expect(paused).toMatchObject({ status: 'paused', pauseRequested: true });
    await h.restart();
    expect((await h.engine.get(id)).status).toBe('paused');
    await h.engine.close();
    expect((await offlineResume(h.store, id)).status).toBe('queued');
    await h.restart();
    await expect(h.engine.handle(id).result()).resolves.toBe(3);
  });

  it('an ended run cannot be paused', async () => {
    h = await Harness.create(ALL);
    const handle = await h.engine.start(expense, { id: 'small', amount: 5 });
    await handle.result();
    await h.engine.close();
    await expectCode(offlinePause(h.store, handle.id), 'INVALID_TRANSITION');
    await expectCode(offlineResume(h.store, handle.id), 'INVALID_TRANSITION');
  });
});

/** A parent run waiting, with a child paused at its own wait; the engine is closed. */
async function parentWithPausedChild(): Promise<{ id: string; childId: string }> {
  h = await Harness.create(ALL);
  const { id } = await h.engine.start(parent, {});
  await until(async () => (await h.store.listWaiting()).items.length === 2, 'both waits');
  const childId = (await h.store.getTask(id, 'sub'))!.childRunId!;
  // The parent stays in memory (its child runs), so the child's record is what to watch.
  await until(async () => (await h.store.getRun(childId))?.status === 'paused', 'child paused');
  await h.engine.close();
  return { id, childId };
}

describe('offlineCancel', () => {
  it('cancels the run, its pending tasks and its running children', async () => {
    const { id, childId } = await parentWithPausedChild();
    const run = await offlineCancel(h.store, id);
    expect(run).toMatchObject({ status: 'cancelled', error: { code: 'CANCELLED' } });
    expect(await offlineCancel(h.store, id)).toEqual(run);
    expect((await h.store.getRun(childId))?.status).toBe('cancelled');
    for (const task of [...(await h.store.listTasks(id)), ...(await h.store.listTasks(childId))]) {
      expect(task.status === 'cancelled' || task.status === 'completed').toBe(true);
    }
    expect((await h.store.listWaiting()).items).toEqual([]);
    expect((await h.store.verify()).ok).toBe(true);
    await h.restart();
    await expectCode(h.engine.handle(id).result(), 'CANCELLED');
  });

  it('cancels the run when a child record is damaged, then reports that child with its code', async () => {
    const { id, childId } = await parentWithPausedChild();
    await h.store.level.put(`runs\x00${childId}`, new Uint8Array([0xc1, 0xff, 0x13]));
    const error = await offlineCancel(h.store, id).then(
      () => null,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(CairnError);
    expect(error).toMatchObject({
      code: 'CORRUPT_RECORD',
      details: { runId: id, childRunId: childId },
    });
    expect((await h.store.getRun(id))?.status).toBe('cancelled');
    // Cancelling again finds the run cancelled and its children already handled.
    expect((await offlineCancel(h.store, id)).status).toBe('cancelled');
  });

  it('a completed run cannot be cancelled', async () => {
    h = await Harness.create(ALL);
    const handle = await h.engine.start(expense, { id: 'small', amount: 5 });
    await handle.result();
    await h.engine.close();
    await expectCode(offlineCancel(h.store, handle.id), 'INVALID_TRANSITION');
  });

  it('bad arguments are refused with their code, and nothing stored changes', async () => {
    const runId = await pausedExpense();
    const before = await snapshot(h.store);
    const typeErrors = [
      offlineCancel({} as never, runId),
      offlinePause(h.store, 5 as never),
      offlineResume(h.store, runId, { approved: true, by: 'x' }, { by: 5 as never }),
      offlineResumeTask(h.store, runId, 'manager-approval', {}, { by: 5 as never }),
      offlineResumeTask(h.store, runId, 7 as never, {}),
    ];
    for (const call of typeErrors) {
      await expect(call).rejects.toBeInstanceOf(TypeError);
      await expect(call).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
    }
    for (const id of ['', 'a\u0000b', 'x'.repeat(201)]) {
      await expectCode(offlineCancel(h.store, id), 'INVALID_ARGUMENT');
      await expectCode(offlinePause(h.store, id), 'INVALID_ARGUMENT');
      await expectCode(offlineResumeTask(h.store, runId, id, {}), 'INVALID_ARGUMENT');
    }
    await expectCode(
      offlineResumeTask(h.store, runId, 'manager-approval', () => 1),
      'NOT_SERIALIZABLE',
    );
    expect(await snapshot(h.store)).toEqual(before);
  });
});
