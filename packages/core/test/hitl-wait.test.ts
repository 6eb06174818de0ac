import { afterEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { workflow, type CairnError } from '../src/index.js';
import { Harness, until } from './hitl-support.js';

const HOUR = 3_600_000;
const Decision = z.object({ approved: z.boolean(), by: z.string().min(1) });

let stepRuns = 0;
const expense = workflow('expense', {
  input: z.object({ id: z.string(), amount: z.number().positive() }),
  async run(ctx, input) {
    const risk = await ctx.step('score', () => {
      stepRuns++;
      return { high: input.amount > 100 };
    });
    const decision = await ctx.waitForInput('approval', {
      schema: Decision,
      timeout: '48h',
      description: 'Approve the expense',
    });
    if (!decision.approved) return { status: 'rejected', by: decision.by, risk };
    const paid = await ctx.step('pay', () => `paid-${input.id}`);
    return { status: 'paid', by: decision.by, risk, paid };
  },
});

const twoApprovals = workflow('two-approvals', {
  input: z.object({ id: z.string() }),
  async run(ctx, input) {
    const [legal, finance] = await Promise.all([
      ctx.waitForInput('legal', { schema: z.object({ ok: z.boolean() }) }),
      ctx.waitForInput('finance', { schema: z.object({ limit: z.number().int() }) }),
    ]);
    return { id: input.id, legal: legal.ok, limit: finance.limit };
  },
});

const review = workflow('review', {
  input: z.object({}),
  async run(ctx) {
    const notes: string[] = [];
    for (;;) {
      const verdict = await ctx.waitForInput('review', {
        schema: z.object({ ok: z.boolean(), note: z.string() }),
      });
      notes.push(verdict.note);
      if (verdict.ok) return notes;
    }
  },
});

const Form = z.object({
  amount: z.string().transform((s) => Number(s)),
  urgent: z.boolean().default(false),
});
const form = workflow('form', {
  input: z.object({}),
  async run(ctx) {
    const answer = await ctx.waitForInput('form', { schema: Form });
    const doubled = await ctx.step('double', () => answer.amount * 2);
    return { ...answer, doubled };
  },
});

let h: Harness;
afterEach(async () => {
  await h?.close();
  stepRuns = 0;
});

async function startExpense(amount = 500): Promise<string> {
  const handle = await h.engine.start(expense, { id: 'e-1', amount });
  await h.untilStatus(handle.id, 'paused');
  return handle.id;
}

function code(promise: Promise<unknown>): Promise<string | undefined> {
  return promise.then(
    () => undefined,
    (error: CairnError) => error.code,
  );
}

describe('waitForInput', () => {
  it('records a waiting task with its JSON schema and timeout; the run pauses out of memory', async () => {
    h = await Harness.create([expense]);
    const t0 = h.clock.now();
    const runId = await startExpense();

    const task = await h.store.getTask(runId, 'approval');
    expect(task).toMatchObject({
      kind: 'wait',
      status: 'waiting',
      schema: z.toJSONSchema(Decision, { io: 'input' }),
      timeoutAt: t0 + 48 * HOUR,
      resumedBy: null,
    });
    const run = await h.engine.get(runId);
    expect(run).toMatchObject({ status: 'paused', isPaused: true, pausedTaskId: 'approval' });
    expect(h.engine.activeRuns).toBe(0);
    expect((await h.store.verify()).ok).toBe(true);
  });

  it('resumeTask with a valid payload continues the run to the right output', async () => {
    h = await Harness.create([expense]);
    const runId = await startExpense();
    const result = await h.engine.resumeTask(
      runId,
      'approval',
      { approved: true, by: 'ann' },
      { by: 'ann@example.com' },
    );
    expect(result).toEqual({ status: 'resumed', runId, taskId: 'approval' });
    await expect(h.engine.handle(runId).result()).resolves.toEqual({
      status: 'paid',
      by: 'ann',
      risk: { high: true },
      paid: 'paid-e-1',
    });
    expect(await h.store.getTask(runId, 'approval')).toMatchObject({
      status: 'completed',
      output: { approved: true, by: 'ann' },
      resumedBy: 'ann@example.com',
    });
    expect(await h.engine.get(runId)).toMatchObject({
      status: 'completed',
      isPaused: false,
      pausedTaskId: null,
    });
    // The step before the wait ran once: replay returned its recorded result.
    expect(stepRuns).toBe(1);
    expect((await h.store.verify()).ok).toBe(true);
  });

  it('refuses invalid input with INVALID_RESUME_INPUT and the zod issues, changing no byte', async () => {
    h = await Harness.create([expense]);
    const runId = await startExpense();
    const before = await h.snapshot();

    const error = await h.engine.resumeTask(runId, 'approval', { approved: 'yes', by: '' }).then(
      () => null,
      (e: CairnError) => e,
    );
    expect(error?.code).toBe('INVALID_RESUME_INPUT');
    const issues = error?.details?.issues as { path: unknown[]; code: string }[];
    expect(issues.map((i) => i.path)).toEqual([['approved'], ['by']]);
    expect(issues.every((i) => typeof i.code === 'string')).toBe(true);

    // The run was loaded to validate; it leaves memory again without writing anything.
    await until(() => h.engine.activeRuns === 0, 'the run to leave memory');
    expect(await h.snapshot()).toEqual(before);
    expect(await h.engine.get(runId)).toMatchObject({ status: 'paused', pausedTaskId: 'approval' });

    // It is still resumable.
    await h.engine.resumeTask(runId, 'approval', { approved: false, by: 'bob' });
    await expect(h.engine.handle(runId).result()).resolves.toMatchObject({ status: 'rejected' });
  });

  it('is NOT_WAITING for a completed task (no second effect) and for a step task', async () => {
    h = await Harness.create([expense]);
    const runId = await startExpense();
    expect(await code(h.engine.resumeTask(runId, 'score', { approved: true, by: 'x' }))).toBe(
      'NOT_WAITING',
    );
    await h.engine.resumeTask(runId, 'approval', { approved: true, by: 'ann' });
    await h.engine.handle(runId).result();
    const before = await h.snapshot();
    const events = h.events.length;

    expect(await code(h.engine.resumeTask(runId, 'approval', { approved: false, by: 'bob' }))).toBe(
      'NOT_WAITING',
    );
    expect(await code(h.engine.resumeTask(runId, 'pay', { approved: true, by: 'x' }))).toBe(
      'NOT_WAITING',
    );
    expect(await h.snapshot()).toEqual(before);
    expect(h.events.length).toBe(events);
    expect((await h.engine.get(runId)).output).toMatchObject({ status: 'paid', by: 'ann' });
  });

  it('is NOT_WAITING for a step task of a run that is still paused, and changes nothing', async () => {
    h = await Harness.create([expense]);
    const runId = await startExpense();
    const before = await h.snapshot();
    expect(await code(h.engine.resumeTask(runId, 'score', {}))).toBe('NOT_WAITING');
    await until(() => h.engine.activeRuns === 0, 'the run to leave memory');
    expect(await h.snapshot()).toEqual(before);
  });

  it('is NOT_FOUND for an unknown run', async () => {
    h = await Harness.create([expense]);
    expect(await code(h.engine.resumeTask('no-such-run', 'approval', {}))).toBe('NOT_FOUND');
    expect(await code(h.engine.resume('no-such-run', {}))).toBe('NOT_FOUND');
  });

  it('lets exactly one of two concurrent resumes of one task win', async () => {
    h = await Harness.create([expense]);
    const runId = await startExpense();
    const outcomes = await Promise.allSettled([
      h.engine.resumeTask(runId, 'approval', { approved: true, by: 'ann' }, { by: 'ann' }),
      h.engine.resumeTask(runId, 'approval', { approved: false, by: 'bob' }, { by: 'bob' }),
    ]);
    const won = outcomes.filter((o) => o.status === 'fulfilled');
    const lost = outcomes.filter((o) => o.status === 'rejected');
    expect(won).toHaveLength(1);
    expect(lost).toHaveLength(1);
    expect((lost[0]!.reason as CairnError).code).toBe('NOT_WAITING');
    const output = await h.engine.handle<{ by: string }>(runId).result();
    const task = await h.store.getTask(runId, 'approval');
    expect(task?.resumedBy).toBe(output.by);
    expect(h.named('task:resumed')).toHaveLength(1);
  });

  it('lets exactly one of many concurrent resumes win, also when the run is in memory', async () => {
    h = await Harness.create([twoApprovals]);
    const handle = await h.engine.start(twoApprovals, { id: 'c' });
    await h.untilStatus(handle.id, 'paused');
    // The first resume loads the run; the others race it for the same task.
    const outcomes = await Promise.allSettled(
      Array.from({ length: 5 }, (_, i) => h.engine.resumeTask(handle.id, 'legal', { ok: i < 3 })),
    );
    expect(outcomes.filter((o) => o.status === 'fulfilled')).toHaveLength(1);
    for (const o of outcomes) {
      if (o.status === 'rejected') expect((o.reason as CairnError).code).toBe('NOT_WAITING');
    }
    await h.untilStatus(handle.id, 'paused');
    expect(await h.store.getTask(handle.id, 'legal')).toMatchObject({
      status: 'completed',
      output: { ok: true },
    });
  });
});

describe('waits with the same name, and schemas that transform', () => {
  it('a wait called again gets a suffixed id; each is resumed in turn, across restarts', async () => {
    h = await Harness.create([review]);
    const handle = await h.engine.start(review, {});
    await h.untilStatus(handle.id, 'paused');
    await h.engine.resumeTask(handle.id, 'review', { ok: false, note: 'fix typos' });
    await h.untilStatus(handle.id, 'paused');
    expect(await h.engine.get(handle.id)).toMatchObject({ pausedTaskId: 'review#2' });
    await h.restart();
    await expect(
      h.engine.resumeTask(handle.id, 'review', { ok: true, note: 'again?' }),
    ).rejects.toMatchObject({ code: 'NOT_WAITING' });
    await h.engine.resumeTask(handle.id, 'review#2', { ok: false, note: 'one more' });
    await h.untilStatus(handle.id, 'paused');
    await h.restart();
    await h.engine.resumeTask(handle.id, 'review#3', { ok: true, note: 'ship it' });
    await expect(h.engine.handle(handle.id).result()).resolves.toEqual([
      'fix typos',
      'one more',
      'ship it',
    ]);
  });

  it("stores the schema's input side for forms; the workflow gets the parsed value, also on replay", async () => {
    h = await Harness.create([form]);
    const handle = await h.engine.start(form, {});
    await h.untilStatus(handle.id, 'paused');
    const task = await h.store.getTask(handle.id, 'form');
    // What a form must send: `amount` a string, `urgent` optional.
    expect(task?.schema).toEqual(z.toJSONSchema(Form, { io: 'input' }));
    expect(task?.schema).toMatchObject({
      properties: { amount: { type: 'string' } },
      required: ['amount'],
    });
    await h.engine.resumeTask(handle.id, 'form', { amount: '21' });
    await expect(h.engine.handle(handle.id).result()).resolves.toEqual({
      amount: 21,
      urgent: false,
      doubled: 42,
    });
    // The payload is recorded as sent.
    expect((await h.store.getTask(handle.id, 'form'))?.output).toEqual({ amount: '21' });
  });
});

describe('parallel waits', () => {
  it('resumed one at a time: paused at the remaining wait, then completed', async () => {
    h = await Harness.create([twoApprovals]);
    const handle = await h.engine.start(twoApprovals, { id: 'p-1' });
    await h.untilStatus(handle.id, 'paused');
    expect(await handle.run()).toMatchObject({ pausedTaskId: 'legal', isPaused: true });
    const waiting = await h.engine.listWaiting({ runId: handle.id });
    // Within a run, waiting tasks are listed in key order (task id), not by seq.
    expect(waiting.items.map((w) => w.taskId).sort()).toEqual(['finance', 'legal']);
    const legal = await h.store.getTask(handle.id, 'legal');
    const finance = await h.store.getTask(handle.id, 'finance');
    expect(legal?.group).toBe(finance?.group);

    await h.engine.resumeTask(handle.id, 'legal', { ok: true });
    await h.untilStatus(handle.id, 'paused');
    expect(await handle.run()).toMatchObject({
      status: 'paused',
      isPaused: true,
      pausedTaskId: 'finance',
    });
    expect(h.engine.activeRuns).toBe(0);
    expect((await h.engine.listWaiting({ runId: handle.id })).items.map((w) => w.taskId)).toEqual([
      'finance',
    ]);

    // Across a restart too.
    await h.restart();
    expect(await h.engine.get(handle.id)).toMatchObject({
      status: 'paused',
      pausedTaskId: 'finance',
    });
    await h.engine.resumeTask(handle.id, 'finance', { limit: 900 });
    await expect(h.engine.handle(handle.id).result()).resolves.toEqual({
      id: 'p-1',
      legal: true,
      limit: 900,
    });
    expect((await h.store.verify()).ok).toBe(true);
  });

  it('both resumed at once: each lands once and the run completes', async () => {
    h = await Harness.create([twoApprovals]);
    const handle = await h.engine.start(twoApprovals, { id: 'p-3' });
    await h.untilStatus(handle.id, 'paused');
    const [legal, finance] = await Promise.all([
      h.engine.resumeTask(handle.id, 'legal', { ok: true }),
      h.engine.resumeTask(handle.id, 'finance', { limit: 2 }),
    ]);
    expect([legal.status, finance.status]).toEqual(['resumed', 'resumed']);
    await expect(h.engine.handle(handle.id).result()).resolves.toEqual({
      id: 'p-3',
      legal: true,
      limit: 2,
    });
    expect(h.named('task:resumed').map((e) => e.taskId)).toEqual(['legal', 'finance']);
  });

  it('resuming the second wait first leaves the run paused at the first', async () => {
    h = await Harness.create([twoApprovals]);
    const handle = await h.engine.start(twoApprovals, { id: 'p-2' });
    await h.untilStatus(handle.id, 'paused');
    await h.engine.resumeTask(handle.id, 'finance', { limit: 5 });
    await h.untilStatus(handle.id, 'paused');
    expect((await handle.run()).pausedTaskId).toBe('legal');
    await h.engine.resumeTask(handle.id, 'legal', { ok: false });
    await expect(h.engine.handle(handle.id).result()).resolves.toEqual({
      id: 'p-2',
      legal: false,
      limit: 5,
    });
  });
});

describe('lifecycle events', () => {
  it('reports task:waiting, run:paused, task:resumed and run:resumed in order', async () => {
    h = await Harness.create([expense]);
    const runId = await startExpense();
    await h.engine.resumeTask(runId, 'approval', { approved: true, by: 'ann' }, { by: 'ann' });
    await h.engine.handle(runId).result();

    const names = h.events
      .map((e) => e.name)
      .filter((n) => n.startsWith('run:') || n === 'task:waiting' || n === 'task:resumed');
    expect(names).toEqual([
      'run:started',
      'task:waiting',
      'run:paused',
      'task:resumed',
      'run:resumed',
      'run:completed',
    ]);
    expect(h.named('task:waiting')[0]).toEqual({
      runId,
      taskId: 'approval',
      schema: z.toJSONSchema(Decision, { io: 'input' }),
      timeoutAt: expect.any(Number) as number,
    });
    expect(h.named('run:paused')[0]).toEqual({
      runId,
      workflow: 'expense',
      pausedTaskId: 'approval',
      reason: 'waiting',
    });
    expect(h.named('task:resumed')[0]).toEqual({ runId, taskId: 'approval', by: 'ann' });
    expect(h.named('run:resumed')[0]).toEqual({ runId, workflow: 'expense' });
    expect(h.named('warning')).toEqual([]);
  });
});
