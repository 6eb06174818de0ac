import { expect, it } from 'vitest';
import type { Task } from '../records.js';
import type { SuiteContext } from './context.js';
import { finished, makeRun, makeSleep, makeTask, makeWait } from './fixtures.js';

export function taskTests(ctx: SuiteContext): void {
  it('a checkpointed task reads back the same, every field included', async () => {
    const store = await ctx.open();
    const run = makeRun();
    await store.createRun(run);
    const task = makeTask(run, {
      taskId: 'summarise',
      status: 'failed',
      attempt: 3,
      attempts: [
        { attempt: 1, startedAt: 10, endedAt: 20, error: { message: 'rate limited', code: '429' } },
        { attempt: 2, startedAt: 30, endedAt: 40, error: { message: 'rate limited' } },
        { attempt: 3, startedAt: 50, endedAt: 60, error: { message: 'gave up', name: 'Error' } },
      ],
      error: { code: 'STEP_FAILED', message: 'gave up', stack: 'Error: gave up' },
      startedAt: 10,
      endedAt: 60,
      durationMs: 50.5,
      group: 'g-1',
      parentTaskId: 'plan',
      meta: {
        model: 'gpt-x',
        promptTokens: 1200,
        completionTokens: 300,
        totalTokens: 1500,
        finishReason: 'stop',
      },
    });
    await store.checkpoint({ tasks: [task] });
    expect(await store.getTask(run.id, 'summarise')).toEqual(task);
  });

  it('wait, sleep and child fields round-trip', async () => {
    const store = await ctx.open();
    const run = makeRun();
    await store.createRun(run);
    const wait = makeWait(run, { taskId: 'approve' });
    const sleep = makeSleep(run, { taskId: 'cool-off' });
    const child = makeTask(run, {
      taskId: 'sub',
      kind: 'child',
      status: 'running',
      childRunId: '0190a0b0-0000-7000-8000-0000000000c1',
    });
    await store.checkpoint({ tasks: [wait, sleep, child] });
    expect(await store.getTask(run.id, 'approve')).toEqual(wait);
    expect(await store.getTask(run.id, 'cool-off')).toEqual(sleep);
    expect(await store.getTask(run.id, 'sub')).toEqual(child);
  });

  it('listTasks orders by seq, whatever the write order and task ids', async () => {
    const store = await ctx.open();
    const run = makeRun();
    await store.createRun(run);
    const seqs = [5, 0, 12, 3, 1, 100, 7];
    const tasks = seqs.map((seq) => makeTask(run, { seq, taskId: `z-${100 - seq}` }));
    for (const task of tasks) await store.checkpoint({ tasks: [task] });
    const listed = await store.listTasks(run.id);
    expect(listed.map((t) => t.seq)).toEqual([...seqs].sort((a, b) => a - b));
    expect(listed).toEqual([...tasks].sort((a, b) => a.seq - b.seq));
  });

  it("listTasks holds only that run's tasks", async () => {
    const store = await ctx.open();
    const a = makeRun();
    const b = makeRun();
    await store.createRun(a);
    await store.createRun(b);
    await store.checkpoint({ tasks: [makeTask(a, { taskId: 't' }), makeTask(b, { taskId: 't' })] });
    await store.checkpoint({ tasks: [makeTask(b, { taskId: 'u' })] });
    expect((await store.listTasks(a.id)).map((t) => [t.runId, t.taskId])).toEqual([[a.id, 't']]);
    expect(await store.listTasks(b.id)).toHaveLength(2);
    expect(await store.listTasks('no-such-run')).toEqual([]);
  });

  it('a later checkpoint of a task replaces it whole', async () => {
    const store = await ctx.open();
    const run = makeRun();
    await store.createRun(run);
    const started = makeTask(run, { taskId: 'pay', status: 'running', meta: { try: 1 } });
    await store.checkpoint({ tasks: [started] }, { durable: false });
    expect(await store.getTask(run.id, 'pay')).toEqual(started);
    const done: Task = {
      ...started,
      status: 'completed',
      output: { receipt: 'r-1' },
      endedAt: started.startedAt + 3,
      durationMs: 3,
      meta: {},
    };
    await store.checkpoint({ tasks: [done] });
    expect(await store.getTask(run.id, 'pay')).toEqual(done);
    expect(await store.listTasks(run.id)).toEqual([done]);
  });

  it('getTask of an unknown run or task is undefined', async () => {
    const store = await ctx.open();
    const run = makeRun();
    await store.createRun(run);
    await store.checkpoint({ tasks: [makeTask(run, { taskId: 'known' })] });
    expect(await store.getTask(run.id, 'unknown')).toBeUndefined();
    expect(await store.getTask('unknown', 'known')).toBeUndefined();
  });

  it('a finished wait keeps its record but leaves the waiting list and its timer', async () => {
    const store = await ctx.open();
    const run = makeRun();
    await store.createRun(run);
    const wait = makeWait(run);
    await store.checkpoint({ tasks: [wait] });
    const done = finished(wait);
    await store.checkpoint({ tasks: [done] });
    expect(await store.getTask(run.id, wait.taskId)).toEqual(done);
    expect((await store.listWaiting()).items).toEqual([]);
    expect(await store.dueTimers(Number.MAX_SAFE_INTEGER)).toEqual([]);
    expect((await store.verify()).ok).toBe(true);
  });
}
