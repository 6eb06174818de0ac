import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import {
  CairnError,
  ManualClock,
  workflow,
  type EngineEvents,
  type RetryOptions,
  type StepContext,
} from '../src/index.js';
import { deferred, never, openForTest, rejectsWithCode, tick, until } from './support.js';

const input = z.object({}).default({});

/** What a step function may do with its signal once its timeout aborts it. */
const onAbort: [string, (signal: AbortSignal) => Promise<unknown>][] = [
  [
    'rejects with an AbortError, as fetch does',
    (signal) =>
      new Promise((_, reject) =>
        signal.addEventListener('abort', () =>
          reject(new DOMException('This operation was aborted', 'AbortError')),
        ),
      ),
  ],
  [
    'resolves with a value',
    (signal) =>
      new Promise((resolve) => signal.addEventListener('abort', () => resolve('partial'))),
  ],
  [
    'rejects with an error of its own',
    (signal) =>
      new Promise((_, reject) =>
        signal.addEventListener('abort', () => reject(new Error('socket closed'))),
      ),
  ],
  ['never settles', () => never()],
];

/**
 * An engine on a manual clock with a workflow of one step, `call`, that times out after 5 s:
 * `attempt(step)` is what each attempt does; `started` gets each attempt's context.
 */
async function timingOut(retry: RetryOptions | number, attempt: (s: StepContext) => unknown) {
  const clock = new ManualClock();
  const started: StepContext[] = [];
  const wf = workflow('timing-out', {
    input,
    run: async (ctx) =>
      ctx.step(
        'call',
        (s) => {
          started.push(s);
          return attempt(s);
        },
        { timeout: '5s', retry },
      ),
  });
  const { engine } = await openForTest({ workflows: [wf], clock });
  return { clock, engine, started, handle: await engine.start(wf, {}) };
}

describe('a step whose timeout fired', () => {
  it.each(onAbort)('is STEP_TIMEOUT when the step function %s', async (_what, behave) => {
    const failed: EngineEvents['task:failed'][] = [];
    const { clock, engine, started, handle } = await timingOut(1, (s) => behave(s.signal));
    engine.on('task:failed', (e) => failed.push(e));
    await until(() => started.length === 1, 'the step to start');
    await clock.advance(4999);
    expect(started[0]!.signal.aborted).toBe(false);
    await clock.advance(1);
    expect(started[0]!.signal.aborted).toBe(true);
    expect((started[0]!.signal.reason as CairnError).code).toBe('STEP_TIMEOUT');
    await rejectsWithCode(handle.result(), 'STEP_TIMEOUT');
    const [task] = await engine.tasks(handle.id);
    expect(task).toMatchObject({ status: 'failed', error: { code: 'STEP_TIMEOUT' } });
    expect(task!.output).toBeUndefined();
    expect(task!.attempts.map((a) => a.error?.code)).toEqual(['STEP_TIMEOUT']);
    expect(failed.map((e) => [e.error.code, e.willRetry])).toEqual([['STEP_TIMEOUT', false]]);
  });

  it.each(onAbort)(
    'is retried by the retry policy when the step function %s',
    async (_what, behave) => {
      const { clock, engine, started, handle } = await timingOut(
        { attempts: 2, initialDelay: 100, jitter: 0 },
        (s) => (s.attempt === 1 ? behave(s.signal) : 'second attempt'),
      );
      await tick(clock, 5000);
      await tick(clock, 100);
      expect(await handle.result()).toBe('second attempt');
      expect(started.map((s) => s.signal.aborted)).toEqual([true, false]);
      const [task] = await engine.tasks(handle.id);
      expect(task).toMatchObject({ status: 'completed', attempt: 2, error: null });
      expect(task!.attempts.map((a) => a.error?.code ?? null)).toEqual(['STEP_TIMEOUT', null]);
    },
  );

  it('completes when its result came before the timer fired', async () => {
    const result = deferred<string>();
    const { clock, engine, started, handle } = await timingOut(1, () => result.promise);
    await until(() => started.length === 1, 'the step to start');
    // The result arrives, and the timer falls due before the engine has seen it.
    result.resolve('in time');
    const advanced = clock.advance(5000);
    expect(await handle.result()).toBe('in time');
    await advanced;
    const [task] = await engine.tasks(handle.id);
    expect(task).toMatchObject({ status: 'completed', error: null });
    expect(task!.attempts.map((a) => a.error)).toEqual([null]);
  });
});

describe('step timeouts', () => {
  it('does not time out a step that finishes in time, and leaves no timer behind', async () => {
    const clock = new ManualClock();
    const wf = workflow('in-time', {
      input,
      run: async (ctx) => ctx.step('quick', () => 'fast', { timeout: '1h' }),
    });
    const { engine } = await openForTest({ workflows: [wf], clock });
    expect(await (await engine.start(wf, {})).result()).toBe('fast');
    expect(clock.pending).toBe(0);
  });

  it.each([['-1s'], ['soon'], [-5], [NaN], ['11000d']])(
    'fails the run on timeout %s with INVALID_ARGUMENT',
    async (timeout) => {
      const wf = workflow('bad-timeout', {
        input,
        run: async (ctx) => ctx.step('s', () => 1, { timeout: timeout as never }),
      });
      const { engine } = await openForTest({ workflows: [wf], clock: new ManualClock() });
      await rejectsWithCode((await engine.start(wf, {})).result(), 'INVALID_ARGUMENT');
    },
  );
});
