import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { CairnError, ManualClock, workflow } from '../src/index.js';
import { deferred, never, openForTest, rejectsWithCode, snapshot, until } from './support.js';

const input = z.object({}).default({});

const setup = openForTest;

describe('cancelling a running run', () => {
  it('aborts the signal of the step in flight and ends the run cancelled', async () => {
    let stepSignal: AbortSignal | undefined;
    let runSignal: AbortSignal | undefined;
    const wf = workflow('cancel-inflight', {
      input,
      run: async (ctx) => {
        runSignal = ctx.signal;
        await ctx.step('done-first', () => 1);
        return ctx.step('hang', (s) => {
          stepSignal = s.signal;
          return never<number>();
        });
      },
    });
    const { engine, store } = await setup({ workflows: [wf], clock: new ManualClock() });
    const events: string[] = [];
    engine.on('run:cancelled', (e) => events.push(`cancelled:${e.runId}`));
    engine.on('run:failed', (e) => events.push(`failed:${e.runId}`));
    const handle = await engine.start(wf, {});
    await until(() => stepSignal !== undefined, 'the step');
    const run = await engine.cancel(handle.id);
    expect(run.status).toBe('cancelled');
    expect(run.error?.code).toBe('CANCELLED');
    expect(run.endedAt).not.toBeNull();
    expect(stepSignal!.aborted).toBe(true);
    expect((stepSignal!.reason as CairnError).code).toBe('CANCELLED');
    expect(runSignal!.aborted).toBe(true);
    await rejectsWithCode(handle.result(), 'CANCELLED');
    expect(await handle.status()).toBe('cancelled');
    const tasks = await engine.tasks(handle.id);
    expect(tasks.map((t) => [t.taskId, t.status])).toEqual([
      ['done-first', 'completed'],
      ['hang', 'cancelled'],
    ]);
    expect(events).toEqual([`cancelled:${handle.id}`]);
    expect(engine.activeRuns).toBe(0);
    expect((await store.verify()).ok).toBe(true);
  });

  it('does not record the result of a step that finishes after the cancel', async () => {
    const gate = deferred<string>();
    let started = false;
    const after: string[] = [];
    const wf = workflow('cancel-late-result', {
      input,
      run: async (ctx) => {
        await ctx.step('ignores-signal', () => {
          started = true;
          return gate.promise;
        });
        after.push('went on');
        return 'done';
      },
    });
    const { engine, store } = await setup({ workflows: [wf], clock: new ManualClock() });
    const handle = await engine.start(wf, {});
    await until(() => started);
    await engine.cancel(handle.id);
    const before = await snapshot(store);
    gate.resolve('late');
    await until(() => true);
    for (let i = 0; i < 5; i++) await until(() => true);
    expect(await snapshot(store)).toEqual(before);
    expect((await engine.tasks(handle.id))[0]!.status).toBe('cancelled');
    expect(after).toEqual([]);
  });

  it('starts nothing new when the workflow catches the cancellation and goes on', async () => {
    let started = false;
    let second: unknown;
    const wf = workflow('cancel-caught', {
      input,
      run: async (ctx) => {
        try {
          await ctx.step('hang', () => {
            started = true;
            return never();
          });
        } catch {
          try {
            await ctx.step('cleanup', () => 'should not run');
          } catch (error) {
            second = error;
          }
        }
        return 'finished anyway';
      },
    });
    const { engine } = await setup({ workflows: [wf], clock: new ManualClock() });
    const handle = await engine.start(wf, {});
    await until(() => started);
    await engine.cancel(handle.id);
    await until(() => second !== undefined, 'the second step call to be refused');
    expect((second as CairnError).code).toBe('CANCELLED');
    expect(await handle.status()).toBe('cancelled');
    expect((await engine.tasks(handle.id)).map((t) => t.taskId)).toEqual(['hang']);
  });

  it('stops a step waiting for its retry delay', async () => {
    const clock = new ManualClock();
    let calls = 0;
    const wf = workflow('cancel-in-backoff', {
      input,
      run: async (ctx) =>
        ctx.step(
          'flaky',
          () => {
            calls++;
            throw new Error('again');
          },
          { retry: { attempts: 5, initialDelay: '1m', jitter: 0 } },
        ),
    });
    const { engine } = await setup({ workflows: [wf], clock });
    const handle = await engine.start(wf, {});
    await until(() => clock.pending > 0, 'the retry delay');
    await engine.cancel(handle.id);
    await clock.advance(10 * 60_000);
    expect(calls).toBe(1);
    await rejectsWithCode(handle.result(), 'CANCELLED');
    expect(clock.pending).toBe(0);
  });

  it('answers concurrent cancels of one run with the cancelled run', async () => {
    let started = false;
    const wf = workflow('cancel-twice', {
      input,
      run: async (ctx) =>
        ctx.step('hang', () => {
          started = true;
          return never();
        }),
    });
    const { engine } = await setup({ workflows: [wf], clock: new ManualClock() });
    const cancelled: string[] = [];
    engine.on('run:cancelled', (e) => cancelled.push(e.runId));
    const handle = await engine.start(wf, {});
    await until(() => started);
    const runs = await Promise.all([engine.cancel(handle.id), engine.cancel(handle.id)]);
    expect(runs.map((r) => r.status)).toEqual(['cancelled', 'cancelled']);
    expect((await engine.cancel(handle.id)).status).toBe('cancelled');
    expect(cancelled).toEqual([handle.id]);
  });

  it('cancels a run paused on a wait, ending the waiting task', async () => {
    const wf = workflow('cancel-waiting', {
      input,
      run: async (ctx) => ctx.waitForInput('approve', { schema: z.object({ ok: z.boolean() }) }),
    });
    const { engine, store } = await setup({ workflows: [wf], clock: new ManualClock() });
    const handle = await engine.start(wf, {});
    await until(async () => (await handle.status()) === 'paused', 'the pause');
    const run = await engine.cancel(handle.id);
    expect(run).toMatchObject({ status: 'cancelled', isPaused: false, pausedTaskId: null });
    expect((await engine.tasks(handle.id))[0]!.status).toBe('cancelled');
    expect((await engine.listWaiting()).items).toEqual([]);
    await rejectsWithCode(handle.result(), 'CANCELLED');
    expect((await store.verify()).ok).toBe(true);
  });
});

describe('cancelling what cannot be cancelled', () => {
  it('refuses a completed or failed run with INVALID_TRANSITION, changing nothing', async () => {
    const ok = workflow('ends-ok', { input, run: async () => 1 });
    const bad = workflow('ends-bad', {
      input,
      run: async () => {
        throw new Error('x');
      },
    });
    const { engine, store } = await setup({ workflows: [ok, bad], clock: new ManualClock() });
    const a = await engine.start(ok, {});
    await a.result();
    const b = await engine.start(bad, {});
    await b.result().catch(() => undefined);
    const before = await snapshot(store);
    await rejectsWithCode(engine.cancel(a.id), 'INVALID_TRANSITION');
    await rejectsWithCode(engine.cancel(b.id), 'INVALID_TRANSITION');
    expect(await snapshot(store)).toEqual(before);
    expect(await a.status()).toBe('completed');
  });

  it('refuses an unknown run with NOT_FOUND', async () => {
    const wf = workflow('any', { input, run: async () => 1 });
    const { engine, store } = await setup({ workflows: [wf], clock: new ManualClock() });
    const before = await snapshot(store);
    await rejectsWithCode(engine.cancel('no-such-run'), 'NOT_FOUND');
    expect(await snapshot(store)).toEqual(before);
  });
});
