/**
 * Closing the engine: `close({ timeout })` ends even when a step never does (its signal is
 * aborted, nothing is checkpointed as done for it, the next engine runs it again), and a
 * closed engine answers every call with `ENGINE_CLOSED`, whoever created its store.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { MemoryStore, STORE_DIR_ENV, type Checkpoint, type Task } from '@cairn/store';
import type { BackendWriteOptions } from '@cairn/store/engine';
import {
  CairnError,
  ManualClock,
  createEngine,
  workflow,
  type Engine,
  type StepContext,
} from '../src/index.js';
import { deferred, never, open, rejectsWithCode, reopen, settle, until } from './support.js';

const input = z.object({});

/** A run whose step `hang` runs `fn` (once per attempt), then a step `after`. */
function hanging(fn: (step: StepContext) => Promise<unknown>) {
  const attempts: StepContext[] = [];
  const wf = workflow('hanging', {
    input,
    run: async (ctx) => {
      const value = await ctx.step('hang', (step) => {
        attempts.push(step);
        return fn(step);
      });
      return ctx.step('after', () => ({ value }));
    },
  });
  return { wf, attempts };
}

/** An engine on a manual clock whose run is in its step `hang` (which runs `fn`). */
async function inStep(fn: (step: StepContext) => Promise<unknown>) {
  const { wf, attempts } = hanging(fn);
  const clock = new ManualClock();
  const { engine, store } = await open({ workflows: [wf], clock });
  const handle = await engine.start(wf, {});
  await until(() => attempts.length === 1, 'the step to start');
  return { engine, store, clock, handle, attempts };
}

/** Starts `close(options)` and tells whether it has ended. */
function closing(engine: Engine, options?: Parameters<Engine['close']>[0]) {
  const state = { closed: false };
  const promise = engine.close(options).then(() => {
    state.closed = true;
  });
  return { promise, state };
}

async function taskOf(store: MemoryStore, runId: string, taskId: string): Promise<Task> {
  const task = await store.getTask(runId, taskId);
  if (!task) throw new Error(`no task ${taskId}`);
  return task;
}

describe('close({ timeout })', () => {
  it('aborts a step that never ends once the timeout passes, and closes anyway', async () => {
    const { engine, store, clock, handle, attempts } = await inStep(() => never());
    await until(async () => (await store.getTask(handle.id, 'hang')) !== undefined, 'its marker');

    const close = closing(engine, { timeout: '1s' });
    await clock.advance(999);
    expect(close.state.closed).toBe(false);
    expect(attempts[0]!.signal.aborted).toBe(false);
    await clock.advance(1);
    await close.promise;
    expect(attempts[0]!.signal.aborted).toBe(true);
    expect((attempts[0]!.signal.reason as CairnError).code).toBe('ENGINE_CLOSED');
    // Nothing was checkpointed as done for it: the next engine runs it again.
    expect(await taskOf(store, handle.id, 'hang')).toMatchObject({ status: 'running', attempt: 1 });
    expect((await store.getRun(handle.id))?.status).toBe('running');
    await store.close();

    const next = hanging(async (step) => step.attempt);
    const second = await reopen(store, { workflows: [next.wf], clock });
    expect(await second.engine.handle(handle.id).result()).toEqual({ value: 2 });
    expect(next.attempts.map((s) => s.attempt)).toEqual([2]);
    await second.engine.close();
  });

  it('records nothing for a step that resolves when it sees the abort', async () => {
    const { engine, store, clock, handle } = await inStep(
      (step) =>
        new Promise((resolve) => step.signal.addEventListener('abort', () => resolve('stopped'))),
    );
    const close = closing(engine, { timeout: 10 });
    await clock.advance(10);
    await close.promise;
    await settle();
    expect(await taskOf(store, handle.id, 'hang')).toMatchObject({ status: 'running' });
    expect(await store.getTask(handle.id, 'after')).toBeUndefined();
    await store.close();
  });

  it('waits 5 seconds by default', async () => {
    const { engine, store, clock } = await inStep(() => never());
    const close = closing(engine);
    await clock.advance(4999);
    expect(close.state.closed).toBe(false);
    await clock.advance(1);
    await close.promise;
    await store.close();
  });

  it('lets a step that ends in time finish and be checkpointed, and arms nothing after', async () => {
    const gate = deferred<string>();
    const { engine, store, clock, handle, attempts } = await inStep(() => gate.promise);
    const close = closing(engine, { timeout: '1m' });
    await clock.advance(30_000);
    gate.resolve('done');
    await close.promise;
    expect(attempts[0]!.signal.aborted).toBe(false);
    expect(await taskOf(store, handle.id, 'hang')).toMatchObject({
      status: 'completed',
      output: 'done',
    });
    expect(clock.pending).toBe(0);
    await store.close();
  });

  it('waits however long with timeout: Infinity', async () => {
    const gate = deferred<string>();
    const { engine, store, clock, attempts } = await inStep(() => gate.promise);
    const close = closing(engine, { timeout: Infinity });
    await clock.advance(365 * 86_400_000);
    expect(close.state.closed).toBe(false);
    gate.resolve('late');
    await close.promise;
    expect(attempts[0]!.signal.aborted).toBe(false);
    await store.close();
  });

  it.each([
    ['a negative timeout', { timeout: -1 }, CairnError],
    ['a timeout of "soon"', { timeout: 'soon' }, CairnError],
    ['a misspelt option', { timout: '1s' }, CairnError],
    ['options that are not an object', 'fast', TypeError],
  ])('refuses %s with INVALID_ARGUMENT and stays open', async (_l, options, type) => {
    const wf = workflow('closing', { input, run: async () => 1 });
    const { engine, store } = await open({ workflows: [wf], clock: new ManualClock() });
    const error = await rejectsWithCode(engine.close(options as never), 'INVALID_ARGUMENT');
    expect(error).toBeInstanceOf(type);
    expect(await (await engine.start(wf, {})).result()).toBe(1);
    await engine.close();
    await store.close();
  });

  it('rejects result() of a run still executing with ENGINE_CLOSED', async () => {
    const { engine, store, clock, handle } = await inStep(() => never());
    const result = rejectsWithCode(handle.result(), 'ENGINE_CLOSED');
    const close = closing(engine, { timeout: 0 });
    await clock.advance(0);
    await close.promise;
    await result;
    await store.close();
  });
});

/** A memory store whose write of a child run waits for `gate`, and says when it began. */
class SlowChildStore extends MemoryStore {
  readonly writing = deferred();
  readonly gate = deferred();

  protected override async _checkpoint(
    checkpoint: Checkpoint,
    options: BackendWriteOptions,
  ): Promise<void> {
    if (checkpoint.runs?.some((run) => run.parentRunId !== null)) {
      this.writing.resolve();
      await this.gate.promise;
    }
    return super._checkpoint(checkpoint, options);
  }
}

describe('close() while a run starts a child', () => {
  it('fails neither: the next engine carries both on', async () => {
    const kid = workflow('kid', { input, run: async () => 'kid' });
    const parent = workflow('parent', {
      input,
      run: async (ctx) => ctx.child('kid', kid, {}),
    });
    const gate = deferred<string>();
    const { wf, attempts } = hanging(() => gate.promise);
    const clock = new ManualClock();
    const store = new SlowChildStore();
    const options = { workflows: [wf, kid, parent], clock };
    const { engine } = await open({ ...options, store });
    await engine.start(wf, {});
    await until(() => attempts.length === 1, 'the step to start');
    const p = await engine.start(parent, {});
    await store.writing.promise;
    // The step keeps close() waiting while the child's creation is written.
    const close = closing(engine, { timeout: '1m' });
    store.gate.resolve();
    await settle();
    gate.resolve('done');
    await close.promise;
    expect((await store.getRun(p.id))?.status).toBe('running');
    await store.close();
    const next = await reopen(store, options);
    expect(await next.engine.handle(p.id).result()).toBe('kid');
    await next.engine.close();
  });
});

describe('a closed engine', () => {
  const wf = workflow('closed', {
    input,
    run: async (ctx) => ctx.waitForInput('approve', { schema: z.boolean() }),
  });

  /** Every public call of the engine, each expected to refuse with ENGINE_CLOSED. */
  function calls(engine: Engine, runId: string): [string, () => unknown][] {
    return [
      ['start', () => engine.start(wf, {})],
      ['handle', () => engine.handle(runId)],
      ['get', () => engine.get(runId)],
      ['tasks', () => engine.tasks(runId)],
      ['listRuns', () => engine.listRuns()],
      ['runDetail', () => engine.runDetail(runId)],
      ['diagnose', () => engine.diagnose(runId)],
      ['usage', () => engine.usage({ by: 'model' })],
      ['listWaiting', () => engine.listWaiting()],
      ['resumeTask', () => engine.resumeTask(runId, 'approve', true)],
      ['resume', () => engine.resume(runId, true)],
      ['pause', () => engine.pause(runId)],
      ['cancel', () => engine.cancel(runId)],
      ['on', () => engine.on('run:started', () => undefined)],
    ];
  }

  async function expectClosed(engine: Engine, runId: string): Promise<void> {
    for (const [name, call] of calls(engine, runId)) {
      let error: unknown;
      try {
        await call();
      } catch (e) {
        error = e;
      }
      expect((error as { code?: unknown } | undefined)?.code, name).toBe('ENGINE_CLOSED');
    }
  }

  it('answers every call with ENGINE_CLOSED on a store the caller passed in', async () => {
    const { engine, store } = await open({ workflows: [wf], clock: new ManualClock() });
    const handle = await engine.start(wf, {});
    await until(async () => (await handle.status()) === 'paused', 'the pause');
    await engine.close();
    await expectClosed(engine, handle.id);
    // The caller's store is still open, and as it was.
    expect((await store.getRun(handle.id))?.status).toBe('paused');
    await store.close();
  });

  it('answers every call with ENGINE_CLOSED on a store it created', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'cairn-closed-'));
    const before = process.env[STORE_DIR_ENV];
    process.env[STORE_DIR_ENV] = dir;
    try {
      const engine = await createEngine({ workflows: [wf], clock: new ManualClock() });
      const handle = await engine.start(wf, {});
      await until(async () => (await handle.status()) === 'paused', 'the pause');
      await engine.close();
      expect(engine.store.status).toBe('closed');
      await expectClosed(engine, handle.id);
    } finally {
      if (before === undefined) delete process.env[STORE_DIR_ENV];
      else process.env[STORE_DIR_ENV] = before;
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('still lets listeners go and close() be called again', async () => {
    const { engine, store } = await open({ workflows: [wf], clock: new ManualClock() });
    const listener = (): void => undefined;
    const off = engine.on('run:started', listener);
    await engine.close();
    off();
    engine.off('run:started', listener);
    await engine.close({ timeout: 0 });
    await store.close();
  });
});
