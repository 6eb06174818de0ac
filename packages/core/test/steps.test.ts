import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { MemoryStore } from '@cairn/store';
import {
  CairnError,
  ManualClock,
  TerminalError,
  workflow,
  type Engine,
  type EngineOptions,
  type StepContext,
} from '../src/index.js';
import { closeAfterTest, crash, deferred, open, rejectsWithCode, tick, until } from './support.js';

const input = z.object({}).default({});

async function setup(
  options: Omit<EngineOptions, 'store'>,
  store?: MemoryStore,
): Promise<{ engine: Engine; store: MemoryStore }> {
  const opened = await open(store ? { ...options, store } : options);
  closeAfterTest(opened.store);
  return opened;
}

describe('checkpointing', () => {
  it('records each step with its output, attempt, seq, timing and kind', async () => {
    const clock = new ManualClock();
    const wf = workflow('record', {
      input,
      run: async (ctx) => {
        const a = await ctx.step('a', () => 1);
        const b = await ctx.step('b', async () => ({ text: 'two', list: [a, 2] }));
        await ctx.step('c', () => undefined);
        return b;
      },
    });
    const { engine } = await setup({ workflows: [wf], clock });
    const handle = await engine.start(wf, {});
    expect(await handle.result()).toEqual({ text: 'two', list: [1, 2] });
    const tasks = await engine.tasks(handle.id);
    expect(tasks.map((t) => [t.taskId, t.seq, t.kind, t.status, t.attempt])).toEqual([
      ['a', 0, 'step', 'completed', 1],
      ['b', 1, 'step', 'completed', 1],
      ['c', 2, 'step', 'completed', 1],
    ]);
    expect(tasks[0]!.output).toBe(1);
    expect(tasks[1]!.output).toEqual({ text: 'two', list: [1, 2] });
    expect(tasks[2]!.output).toBeUndefined();
    for (const t of tasks) {
      expect(t.attempts).toHaveLength(1);
      expect(t.attempts[0]).toMatchObject({ attempt: 1, error: null });
      expect(t.endedAt).not.toBeNull();
      expect(t.durationMs).toBe(0);
      expect(t.error).toBeNull();
    }
  });

  it('checkpoints a step before the workflow goes on', async () => {
    const gate = deferred();
    const ref: { store?: MemoryStore } = {};
    let seenInStore: unknown;
    const wf = workflow('checkpoint-first', {
      input,
      run: async (ctx) => {
        await ctx.step('first', () => 'done');
        seenInStore = (await ref.store!.getTask(ctx.runId, 'first'))?.status;
        await gate.promise;
        return null;
      },
    });
    const opened = await setup({ workflows: [wf], clock: new ManualClock() });
    ref.store = opened.store;
    const engine = opened.engine;
    const handle = await engine.start(wf, {});
    await until(() => seenInStore !== undefined, 'the step record');
    expect(seenInStore).toBe('completed');
    gate.resolve();
    await handle.result();
  });

  it('passes runId, taskId, attempt and idempotencyKey to the step', async () => {
    let seen: StepContext | undefined;
    const wf = workflow('step-context', {
      input,
      run: async (ctx) => {
        await ctx.step('look', (s) => {
          seen = s;
        });
        return ctx.runId;
      },
    });
    const { engine } = await setup({ workflows: [wf], clock: new ManualClock() });
    const handle = await engine.start(wf, {});
    await handle.result();
    expect(seen).toMatchObject({
      runId: handle.id,
      taskId: 'look',
      attempt: 1,
      idempotencyKey: `${handle.id}:look`,
    });
    expect(seen!.signal.aborted).toBe(false);
  });

  it('lets a step function take its context apart, annotate included', async () => {
    const wf = workflow('step-context-parts', {
      input,
      run: async (ctx) =>
        ctx.step('parts', ({ runId, taskId, attempt, idempotencyKey, signal, annotate }) => {
          annotate({ model: 'm', promptTokens: 3 });
          return { runId, taskId, attempt, idempotencyKey, aborted: signal.aborted };
        }),
    });
    const { engine } = await setup({ workflows: [wf], clock: new ManualClock() });
    const handle = await engine.start(wf, {});
    expect(await handle.result()).toEqual({
      runId: handle.id,
      taskId: 'parts',
      attempt: 1,
      idempotencyKey: `${handle.id}:parts`,
      aborted: false,
    });
    expect((await engine.tasks(handle.id))[0]!.meta).toEqual({ model: 'm', promptTokens: 3 });
  });
});

describe('replay', () => {
  it('returns recorded results after a restart without running the functions again', async () => {
    const calls = { a: 0, b: 0, c: 0 };
    const hang = deferred<string>();
    const make = (bHangs: boolean) =>
      workflow('replay', {
        input,
        run: async (ctx) => {
          const a = await ctx.step('a', () => {
            calls.a++;
            return { n: 41 };
          });
          const b = await ctx.step('b', () => {
            calls.b++;
            return bHangs ? hang.promise : 'b-again';
          });
          const c = await ctx.step('c', () => {
            calls.c++;
            return a.n + 1;
          });
          return { a, b, c };
        },
      });
    const clock = new ManualClock();
    const first = await setup({ workflows: [make(true)], clock });
    const handle = await first.engine.start('replay', {});
    await until(() => calls.b === 1, 'step b to start');
    const second = await crash(first.store, { workflows: [make(false)], clock });
    closeAfterTest(second.store);
    const result = await second.engine.handle(handle.id).result();
    expect(result).toEqual({ a: { n: 41 }, b: 'b-again', c: 42 });
    expect(calls).toEqual({ a: 1, b: 2, c: 1 });
  });

  it('replays a failed step as the same failure without running it again', async () => {
    let calls = 0;
    const hang = deferred();
    const make = (hangs: boolean) =>
      workflow('replay-failure', {
        input,
        run: async (ctx) => {
          let code: unknown;
          try {
            await ctx.step(
              'fails',
              () => {
                calls++;
                throw new TerminalError('no');
              },
              { retry: 1 },
            );
          } catch (error) {
            code = (error as CairnError).code;
          }
          await ctx.step('after', () => (hangs ? hang.promise : null));
          return code;
        },
      });
    const clock = new ManualClock();
    const first = await setup({ workflows: [make(true)], clock });
    const handle = await first.engine.start('replay-failure', {});
    await until(async () => (await first.store.getTask(handle.id, 'after')) !== undefined);
    const second = await crash(first.store, { workflows: [make(false)], clock });
    closeAfterTest(second.store);
    expect(await second.engine.handle(handle.id).result()).toBe('STEP_FAILED');
    expect(calls).toBe(1);
    const task = await second.store.getTask(handle.id, 'fails');
    expect(task).toMatchObject({ status: 'failed', attempt: 1 });
    expect(task?.error?.name).toBe('TerminalError');
  });
});

describe('step names', () => {
  it('suffixes a name used again by call order: x, x#2, x#3', async () => {
    const wf = workflow('names', {
      input,
      run: async (ctx) => {
        const out: number[] = [];
        for (let i = 0; i < 3; i++) out.push(await ctx.step('x', () => i));
        out.push(await ctx.step('y', () => 10));
        out.push(await ctx.step('x', () => 3));
        return out;
      },
    });
    const { engine } = await setup({ workflows: [wf], clock: new ManualClock() });
    const handle = await engine.start(wf, {});
    expect(await handle.result()).toEqual([0, 1, 2, 10, 3]);
    expect((await engine.tasks(handle.id)).map((t) => t.taskId)).toEqual([
      'x',
      'x#2',
      'x#3',
      'y',
      'x#4',
    ]);
  });

  it.each([
    ['an empty id', ''],
    ['an id with #', 'a#1'],
    ['an id starting with $', '$now'],
    ['an id with a control character', 'a\nb'],
    ['an id of 101 characters', 'x'.repeat(101)],
  ])('fails the run on %s with INVALID_ARGUMENT', async (_label, id) => {
    const wf = workflow('bad-name', {
      input,
      run: async (ctx) => ctx.step(id, () => 1),
    });
    const { engine } = await setup({ workflows: [wf], clock: new ManualClock() });
    const handle = await engine.start(wf, {});
    await rejectsWithCode(handle.result(), 'INVALID_ARGUMENT');
    expect(await engine.tasks(handle.id)).toEqual([]);
  });

  it('refuses an id that is not a string with a TypeError', async () => {
    let thrown: unknown;
    const wf = workflow('bad-name-type', {
      input,
      run: async (ctx) => {
        try {
          await ctx.step(7 as never, () => 1);
        } catch (error) {
          thrown = error;
        }
        return null;
      },
    });
    const { engine } = await setup({ workflows: [wf], clock: new ManualClock() });
    await (await engine.start(wf, {})).result();
    expect(thrown).toBeInstanceOf(TypeError);
    expect((thrown as { code: string }).code).toBe('INVALID_ARGUMENT');
  });
});

describe('retries', () => {
  function flaky(failures: number, error: () => unknown = () => new Error('flaky')) {
    const state = { calls: 0, attempts: [] as number[] };
    const fn = (s: StepContext): string => {
      state.calls++;
      state.attempts.push(s.attempt);
      if (state.calls <= failures) throw error();
      return 'ok';
    };
    return { state, fn };
  }

  it('retries with exponential backoff on the clock, recording every attempt', async () => {
    const clock = new ManualClock();
    const { state, fn } = flaky(2);
    const wf = workflow('backoff', {
      input,
      run: async (ctx) =>
        ctx.step('flaky', fn, {
          retry: { attempts: 3, initialDelay: '100ms', factor: 2, jitter: 0 },
        }),
    });
    const { engine } = await setup({ workflows: [wf], clock });
    const retrying: boolean[] = [];
    engine.on('task:failed', (e) => retrying.push(e.willRetry));
    const handle = await engine.start(wf, {});
    await until(() => retrying.length === 1, 'the first failure');
    expect(state.calls).toBe(1);
    await tick(clock, 99);
    expect(state.calls).toBe(1);
    await clock.advance(1);
    await until(() => retrying.length === 2, 'the second failure');
    expect(state.calls).toBe(2);
    await tick(clock, 199);
    expect(state.calls).toBe(2);
    await clock.advance(1);
    expect(await handle.result()).toBe('ok');
    expect(state.attempts).toEqual([1, 2, 3]);
    expect(retrying).toEqual([true, true]);
    const task = (await engine.tasks(handle.id))[0]!;
    expect(task.status).toBe('completed');
    expect(task.attempt).toBe(3);
    expect(task.attempts.map((a) => [a.attempt, a.error?.message ?? null])).toEqual([
      [1, 'flaky'],
      [2, 'flaky'],
      [3, null],
    ]);
    expect(task.attempts[1]!.startedAt - task.attempts[0]!.startedAt).toBe(100);
    expect(task.attempts[2]!.startedAt - task.attempts[1]!.startedAt).toBe(200);
  });

  it('caps the delay at maxDelay', async () => {
    const clock = new ManualClock();
    const { state, fn } = flaky(3);
    const wf = workflow('max-delay', {
      input,
      run: async (ctx) =>
        ctx.step('flaky', fn, {
          retry: { attempts: 4, initialDelay: '1s', factor: 10, maxDelay: '2s', jitter: 0 },
        }),
    });
    const { engine } = await setup({ workflows: [wf], clock });
    const handle = await engine.start(wf, {});
    await tick(clock, 1000);
    await until(() => state.calls === 2);
    await tick(clock, 1999);
    expect(state.calls).toBe(2);
    await clock.advance(1);
    await until(() => state.calls === 3);
    await tick(clock, 2000);
    expect(await handle.result()).toBe('ok');
  });

  it('fails with STEP_FAILED after the last attempt', async () => {
    const clock = new ManualClock();
    const { state, fn } = flaky(99);
    const wf = workflow('exhausted', {
      input,
      run: async (ctx) => ctx.step('flaky', fn, { retry: { attempts: 2, initialDelay: 10 } }),
    });
    const { engine } = await setup({ workflows: [wf], clock });
    const handle = await engine.start(wf, {});
    await tick(clock, 100);
    await rejectsWithCode(handle.result(), 'STEP_FAILED');
    expect(state.calls).toBe(2);
    const task = (await engine.tasks(handle.id))[0]!;
    expect(task).toMatchObject({ status: 'failed', attempt: 2 });
    expect(task.error?.message).toBe('flaky');
    expect(task.attempts).toHaveLength(2);
    const run = await handle.run();
    expect(run.status).toBe('failed');
    expect(run.error?.code).toBe('STEP_FAILED');
  });

  it('takes a number as the count of attempts in all', async () => {
    const clock = new ManualClock();
    const { state, fn } = flaky(99);
    const wf = workflow('retry-number', {
      input,
      run: async (ctx) => ctx.step('flaky', fn, { retry: 1 }),
    });
    const { engine } = await setup({ workflows: [wf], clock });
    const handle = await engine.start(wf, {});
    await rejectsWithCode(handle.result(), 'STEP_FAILED');
    expect(state.calls).toBe(1);
    expect(clock.pending).toBe(0);
  });

  it('uses the engine default of 3 attempts, and the engine retry option', async () => {
    const clockA = new ManualClock();
    const clockB = new ManualClock();
    const a = flaky(99);
    const b = flaky(99);
    const wfA = workflow('default-retry', { input, run: async (ctx) => ctx.step('s', a.fn) });
    const wfB = workflow('engine-retry', { input, run: async (ctx) => ctx.step('s', b.fn) });
    const one = await setup({ workflows: [wfA], clock: clockA });
    const two = await setup({
      workflows: [wfB],
      clock: clockB,
      retry: { attempts: 2, jitter: 0 },
    });
    const ha = await one.engine.start(wfA, {});
    const hb = await two.engine.start(wfB, {});
    // Default: 200 ms, then 400 ms (±20%).
    await tick(clockA, 240);
    await until(() => a.state.calls === 2);
    await tick(clockA, 480);
    await tick(clockB, 200);
    await rejectsWithCode(ha.result(), 'STEP_FAILED');
    await rejectsWithCode(hb.result(), 'STEP_FAILED');
    expect(a.state.calls).toBe(3);
    expect(b.state.calls).toBe(2);
  });

  it('stops at once on a TerminalError whatever the retry options', async () => {
    const clock = new ManualClock();
    const { state, fn } = flaky(99, () => new TerminalError('card declined'));
    const wf = workflow('terminal', {
      input,
      run: async (ctx) => ctx.step('pay', fn, { retry: { attempts: 10, initialDelay: 1 } }),
    });
    const { engine } = await setup({ workflows: [wf], clock });
    const handle = await engine.start(wf, {});
    await rejectsWithCode(handle.result(), 'STEP_FAILED');
    expect((await engine.tasks(handle.id))[0]!.error?.name).toBe('TerminalError');
    expect(state.calls).toBe(1);
    expect(clock.pending).toBe(0);
  });

  it('asks the retryable predicate, with the error, whether to retry', async () => {
    const clock = new ManualClock();
    const seen: string[] = [];
    const { state, fn } = flaky(99, () =>
      Object.assign(new Error('e'), { status: state.calls < 2 ? 503 : 400 }),
    );
    const wf = workflow('retryable', {
      input,
      run: async (ctx) =>
        ctx.step('call', fn, {
          retry: {
            attempts: 10,
            initialDelay: 5,
            jitter: 0,
            retryable: (e) => {
              seen.push(e.message);
              return (e as Error & { status: number }).status >= 500;
            },
          },
        }),
    });
    const { engine } = await setup({ workflows: [wf], clock });
    const handle = await engine.start(wf, {});
    await tick(clock, 5);
    await rejectsWithCode(handle.result(), 'STEP_FAILED');
    expect(state.calls).toBe(2);
    expect(seen).toEqual(['e', 'e']);
  });

  it('does not retry when the retryable predicate throws', async () => {
    const clock = new ManualClock();
    const { state, fn } = flaky(99);
    const wf = workflow('retryable-throws', {
      input,
      run: async (ctx) =>
        ctx.step('call', fn, {
          retry: {
            attempts: 5,
            retryable: () => {
              throw new Error('predicate broke');
            },
          },
        }),
    });
    const { engine } = await setup({ workflows: [wf], clock });
    await rejectsWithCode((await engine.start(wf, {})).result(), 'STEP_FAILED');
    expect(state.calls).toBe(1);
  });

  it('keeps idempotencyKey the same on every attempt while attempt counts up', async () => {
    const clock = new ManualClock();
    const keys: string[] = [];
    const attempts: number[] = [];
    const wf = workflow('idem', {
      input,
      run: async (ctx) =>
        ctx.step(
          'charge',
          (s) => {
            keys.push(s.idempotencyKey);
            attempts.push(s.attempt);
            if (s.attempt < 3) throw new Error('again');
            return s.idempotencyKey;
          },
          { retry: { attempts: 3, initialDelay: 1, jitter: 0 } },
        ),
    });
    const { engine } = await setup({ workflows: [wf], clock });
    const handle = await engine.start(wf, {});
    await tick(clock, 1);
    await until(() => attempts.length === 2);
    await tick(clock, 2);
    expect(await handle.result()).toBe(`${handle.id}:charge`);
    expect(new Set(keys)).toEqual(new Set([`${handle.id}:charge`]));
    expect(attempts).toEqual([1, 2, 3]);
  });

  it('lets a workflow catch a step failure and go on', async () => {
    const wf = workflow('catches', {
      input,
      run: async (ctx) => {
        try {
          await ctx.step(
            'bad',
            () => {
              throw new Error('nope');
            },
            { retry: 1 },
          );
        } catch (error) {
          return await ctx.step('fallback', () => `recovered from ${(error as CairnError).code}`);
        }
        return 'unreachable';
      },
    });
    const { engine } = await setup({ workflows: [wf], clock: new ManualClock() });
    const handle = await engine.start(wf, {});
    expect(await handle.result()).toBe('recovered from STEP_FAILED');
    const tasks = await engine.tasks(handle.id);
    expect(tasks.map((t) => [t.taskId, t.status])).toEqual([
      ['bad', 'failed'],
      ['fallback', 'completed'],
    ]);
  });

  it.each([
    ['attempts 0', { attempts: 0 }],
    ['attempts 1.5', { attempts: 1.5 }],
    ['attempts 1001', { attempts: 1001 }],
    ['factor 0.5', { factor: 0.5 }],
    ['jitter 2', { jitter: 2 }],
    ['jitter NaN', { jitter: NaN }],
    ['initialDelay -1s', { initialDelay: '-1s' }],
    ['maxDelay soon', { maxDelay: 'soon' }],
  ])('fails the run on retry %s with INVALID_ARGUMENT, before running the step', async (_l, r) => {
    let calls = 0;
    const wf = workflow('bad-retry', {
      input,
      run: async (ctx) => ctx.step('s', () => calls++, { retry: r as never }),
    });
    const { engine } = await setup({ workflows: [wf], clock: new ManualClock() });
    await rejectsWithCode((await engine.start(wf, {})).result(), 'INVALID_ARGUMENT');
    expect(calls).toBe(0);
  });
});

describe('metadata', () => {
  it('records a meta object, a meta function of the result and annotate()', async () => {
    const wf = workflow('llm', {
      input,
      run: async (ctx) => {
        await ctx.step('fixed', () => 1, { meta: { model: 'small-1', temperature: 0 } });
        await ctx.step('derived', () => ({ text: 'hi', usage: { prompt: 3, completion: 2 } }), {
          meta: (r) => ({
            model: 'large-2',
            promptTokens: r.usage.prompt,
            completionTokens: r.usage.completion,
            totalTokens: r.usage.prompt + r.usage.completion,
          }),
        });
        await ctx.step(
          'annotated',
          (s) => {
            s.annotate({ model: 'mid-3' });
            s.annotate({ totalTokens: 42, finishReason: 'stop' });
            return 'ok';
          },
          { meta: { model: 'overridden', team: 'a' } },
        );
        return null;
      },
    });
    const { engine } = await setup({ workflows: [wf], clock: new ManualClock() });
    const handle = await engine.start(wf, {});
    await handle.result();
    const [fixed, derived, annotated] = await engine.tasks(handle.id);
    expect(fixed!.meta).toEqual({ model: 'small-1', temperature: 0 });
    expect(derived!.meta).toEqual({
      model: 'large-2',
      promptTokens: 3,
      completionTokens: 2,
      totalTokens: 5,
    });
    expect(annotated!.meta).toEqual({
      model: 'mid-3',
      team: 'a',
      totalTokens: 42,
      finishReason: 'stop',
    });
  });

  it('keeps annotations made by a failed attempt', async () => {
    const wf = workflow('annotate-fail', {
      input,
      run: async (ctx) =>
        ctx.step(
          's',
          (s) => {
            s.annotate({ tried: true });
            throw new TerminalError('x');
          },
          { retry: 1 },
        ),
    });
    const { engine } = await setup({ workflows: [wf], clock: new ManualClock() });
    const handle = await engine.start(wf, {});
    await rejectsWithCode(handle.result(), 'STEP_FAILED');
    expect((await engine.tasks(handle.id))[0]!.meta).toEqual({ tried: true });
  });

  it('refuses annotations that are not objects or cannot be stored', async () => {
    const codes: unknown[] = [];
    const wf = workflow('annotate-bad', {
      input,
      run: async (ctx) =>
        ctx.step('s', (s) => {
          for (const bad of [null, 'text', { f: () => 1 }]) {
            try {
              s.annotate(bad as never);
            } catch (error) {
              codes.push([error instanceof TypeError, (error as CairnError).code]);
            }
          }
          return 'ok';
        }),
    });
    const { engine } = await setup({ workflows: [wf], clock: new ManualClock() });
    const handle = await engine.start(wf, {});
    expect(await handle.result()).toBe('ok');
    expect(codes).toEqual([
      [true, 'INVALID_ARGUMENT'],
      [true, 'INVALID_ARGUMENT'],
      [false, 'NOT_SERIALIZABLE'],
    ]);
    expect((await engine.tasks(handle.id))[0]!.meta).toEqual({});
  });

  it('fails the step with NOT_SERIALIZABLE when the meta function returns something unstorable', async () => {
    const wf = workflow('meta-bad', {
      input,
      run: async (ctx) => ctx.step('s', () => 1, { meta: () => ({ at: Symbol('x') }) }),
    });
    const { engine } = await setup({ workflows: [wf], clock: new ManualClock() });
    await rejectsWithCode((await engine.start(wf, {})).result(), 'NOT_SERIALIZABLE');
  });
});

describe('results that cannot be stored, and odd throws', () => {
  it.each([
    ['a function', () => () => 1],
    ['a bigint', () => 10n],
    ['a class instance', () => new URL('https://example.com')],
    ['a Map', () => new Map([[1, 2]])],
    ['a symbol', () => Symbol('s')],
    [
      'a cycle',
      () => {
        const o: Record<string, unknown> = {};
        o.o = o;
        return o;
      },
    ],
  ])(
    'fails the step with NOT_SERIALIZABLE when it returns %s, without retrying',
    async (_l, make) => {
      let calls = 0;
      const wf = workflow('unstorable', {
        input,
        run: async (ctx) =>
          ctx.step(
            's',
            () => {
              calls++;
              return make() as never;
            },
            { retry: 5 },
          ),
      });
      const { engine } = await setup({ workflows: [wf], clock: new ManualClock() });
      const handle = await engine.start(wf, {});
      await rejectsWithCode(handle.result(), 'NOT_SERIALIZABLE');
      expect(calls).toBe(1);
      const task = (await engine.tasks(handle.id))[0]!;
      expect(task.status).toBe('failed');
      expect(task.error?.code).toBe('NOT_SERIALIZABLE');
      expect(task.output).toBeUndefined();
    },
  );

  it('fails the run when the result is too large to checkpoint, leaving no task running', async () => {
    const store = new MemoryStore({ maxRecordBytes: 4096 });
    const wf = workflow('too-large', {
      input,
      run: async (ctx) => {
        await ctx.step('small', () => 'fits');
        return ctx.step('large', () => 'x'.repeat(10_000));
      },
    });
    const { engine } = await setup({ workflows: [wf], clock: new ManualClock() }, store);
    const handle = await engine.start(wf, {});
    await rejectsWithCode(handle.result(), 'VALUE_TOO_LARGE');
    const run = await handle.run();
    expect(run.status).toBe('failed');
    expect(run.error?.code).toBe('VALUE_TOO_LARGE');
    const tasks = await engine.tasks(handle.id);
    expect(tasks.map((t) => [t.taskId, t.status, t.error?.code ?? null])).toEqual([
      ['small', 'completed', null],
      ['large', 'failed', 'VALUE_TOO_LARGE'],
    ]);
    expect(tasks[1]!.output).toBeUndefined();
    expect((await store.verify()).ok).toBe(true);
  });

  it('keeps no meta made from a result the store refused, and counts no usage for it', async () => {
    const store = new MemoryStore({ maxRecordBytes: 4096 });
    const wf = workflow('too-large-meta', {
      input,
      run: async (ctx) =>
        ctx.step('large', () => 'x'.repeat(10_000), {
          meta: { model: 'm' },
          retry: 1,
        }),
    });
    const metaOf = workflow('too-large-meta-fn', {
      input,
      run: async (ctx) =>
        ctx.step('large', () => 'x'.repeat(10_000), {
          meta: (v: string) => ({ length: v.length, promptTokens: 7 }),
          retry: 1,
        }),
    });
    const { engine } = await setup({ workflows: [wf, metaOf], clock: new ManualClock() }, store);
    for (const def of [wf, metaOf]) {
      const handle = await engine.start(def, {});
      await rejectsWithCode(handle.result(), 'VALUE_TOO_LARGE');
      const [task] = await engine.tasks(handle.id);
      expect(task!.status).toBe('failed');
      expect(task!.meta).toEqual(def === wf ? { model: 'm' } : {});
      expect(task!.output).toBeUndefined();
    }
    expect(await store.usage({ by: 'workflow' })).toEqual([]);
  });

  it.each([
    ['a string', 'plain string', 'plain string'],
    ['an object', { reason: 'x' }, '{"reason":"x"}'],
    ['a number', 42, '42'],
    ['undefined', undefined, 'undefined'],
    ['null', null, 'null'],
  ])('normalises a step that throws %s into an Error', async (_l, thrown, message) => {
    const wf = workflow('throws-odd', {
      input,
      run: async (ctx) =>
        ctx.step(
          's',
          () => {
            throw thrown;
          },
          { retry: 1 },
        ),
    });
    const { engine } = await setup({ workflows: [wf], clock: new ManualClock() });
    const handle = await engine.start(wf, {});
    const error = await rejectsWithCode(handle.result(), 'STEP_FAILED');
    expect(error).toBeInstanceOf(CairnError);
    const task = (await engine.tasks(handle.id))[0]!;
    expect(task.error?.message).toBe(message);
    expect(task.error?.name).toBe('Error');
  });

  it('normalises a step that rejects with a non-Error, and retries it', async () => {
    const clock = new ManualClock();
    let calls = 0;
    const wf = workflow('rejects-odd', {
      input,
      run: async (ctx) =>
        ctx.step(
          's',
          async () => {
            calls++;
            // eslint-disable-next-line @typescript-eslint/prefer-promise-reject-errors -- on purpose
            if (calls === 1) return Promise.reject('not an error');
            return 'fine';
          },
          { retry: { attempts: 2, initialDelay: 1, jitter: 0 } },
        ),
    });
    const { engine } = await setup({ workflows: [wf], clock });
    const handle = await engine.start(wf, {});
    await tick(clock, 1);
    expect(await handle.result()).toBe('fine');
    expect((await engine.tasks(handle.id))[0]!.attempts[0]!.error?.message).toBe('not an error');
  });

  it('keeps a custom error code in the details of the task record and of STEP_FAILED', async () => {
    let caught: CairnError | undefined;
    const wf = workflow('custom-code', {
      input,
      run: async (ctx) => {
        try {
          await ctx.step(
            's',
            () => {
              throw Object.assign(new Error('rate limited'), { code: 'E_RATE' });
            },
            { retry: 1 },
          );
        } catch (error) {
          caught = error as CairnError;
        }
        return null;
      },
    });
    const { engine } = await setup({ workflows: [wf], clock: new ManualClock() });
    const handle = await engine.start(wf, {});
    await handle.result();
    expect(caught).toBeInstanceOf(CairnError);
    expect(caught!.code).toBe('STEP_FAILED');
    expect(caught!.details).toMatchObject({ originalCode: 'E_RATE', name: 'Error' });
    expect((await engine.tasks(handle.id))[0]!.error).toMatchObject({
      code: 'STEP_FAILED',
      details: { originalCode: 'E_RATE' },
    });
  });

  it.each([
    ['fn is not a function', (ctx: { step: (...a: unknown[]) => unknown }) => ctx.step('s', 1)],
    [
      'options is null',
      (ctx: { step: (...a: unknown[]) => unknown }) => ctx.step('s', () => 1, null),
    ],
    [
      'retry is a string',
      (ctx: { step: (...a: unknown[]) => unknown }) => ctx.step('s', () => 1, { retry: 'x' }),
    ],
    [
      'meta is a number',
      (ctx: { step: (...a: unknown[]) => unknown }) => ctx.step('s', () => 1, { meta: 3 }),
    ],
  ])('refuses a step call where %s with a TypeError', async (_l, call) => {
    let thrown: unknown;
    const wf = workflow('bad-step-call', {
      input,
      run: async (ctx) => {
        try {
          await call(ctx as never);
        } catch (error) {
          thrown = error;
        }
        return null;
      },
    });
    const { engine } = await setup({ workflows: [wf], clock: new ManualClock() });
    const handle = await engine.start(wf, {});
    await handle.result();
    expect(thrown).toBeInstanceOf(TypeError);
    expect((thrown as { code: string }).code).toBe('INVALID_ARGUMENT');
    expect(await engine.tasks(handle.id)).toEqual([]);
  });
});

describe('a step called inside another step', () => {
  type Ctx = Parameters<Parameters<typeof workflow>[1]['run']>[0];
  const child = workflow('nested-child', { input, run: async () => 1 });

  /** Runs a workflow whose step "outer" calls `inner(ctx)`; returns the run's end. */
  async function nestedRun(inner: (ctx: Ctx) => unknown) {
    const wf = workflow('nested', {
      input,
      run: async (ctx) => {
        const outer = await ctx.step('outer', () => inner(ctx));
        return ctx.step('after', () => outer);
      },
    });
    const { engine } = await setup({ workflows: [wf, child], clock: new ManualClock() });
    const handle = await engine.start(wf, {});
    const error = await rejectsWithCode(handle.result(), 'NESTED_STEP');
    return { error: error as CairnError, tasks: await engine.tasks(handle.id) };
  }

  it.each([
    ['a step', (ctx: Ctx) => ctx.step('inner', () => 1)],
    [
      'a step, awaited in an async function',
      async (ctx: Ctx) => (await ctx.step('inner', () => 1)) + 1,
    ],
    ['a wait', (ctx: Ctx) => ctx.waitForInput('inner', { schema: z.boolean() })],
    ['a sleep', (ctx: Ctx) => ctx.sleep('inner', '1s')],
    ['a child', (ctx: Ctx) => ctx.child('inner', child, {})],
    ['ctx.now()', (ctx: Ctx) => ctx.now()],
    ['ctx.uuid()', (ctx: Ctx) => ctx.uuid()],
  ])(
    'fails the outer step and the run with NESTED_STEP for %s, without retrying',
    async (_l, inner) => {
      const { error, tasks } = await nestedRun(inner);
      expect(error.details).toMatchObject({ taskId: 'outer' });
      expect(tasks.map((t) => [t.taskId, t.status, t.attempt, t.error?.code])).toEqual([
        ['outer', 'failed', 1, 'NESTED_STEP'],
      ]);
    },
  );

  it('fails it even when the step function catches the refusal', async () => {
    const { tasks } = await nestedRun(async (ctx) => {
      try {
        await ctx.step('inner', () => 1);
      } catch {
        // swallowed: the attempt fails all the same
      }
      return 2;
    });
    expect(tasks.map((t) => [t.taskId, t.status, t.error?.code])).toEqual([
      ['outer', 'failed', 'NESTED_STEP'],
    ]);
  });

  // Known limitation: a call made after the step function's first await is not seen (telling
  // it from the workflow's own calls needs AsyncLocalStorage, which on Node 20 slows every
  // promise of the process: docs/performance.md). It fails the run with NON_DETERMINISM on
  // replay instead. (Expected to fail: it turns red the day the limitation is lifted.)
  it.fails('fails with NESTED_STEP for a step called after an await in the step', async () => {
    await nestedRun(async (ctx) => {
      await Promise.resolve();
      return ctx.step('inner', () => 1);
    });
  });

  it('leaves parallel steps of the workflow function alone', async () => {
    const wf = workflow('side-by-side', {
      input,
      run: async (ctx) => {
        const gate = deferred<number>();
        const [a, b] = await Promise.all([
          ctx.step('a', () => gate.promise),
          ctx.step('b', () => {
            gate.resolve(1);
            return 2;
          }),
        ]);
        return a + b + (await ctx.step('c', () => 3));
      },
    });
    const { engine } = await setup({ workflows: [wf], clock: new ManualClock() });
    expect(await (await engine.start(wf, {})).result()).toBe(6);
  });
});
