import { afterEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { workflow } from '../src/index.js';
import { Harness, until } from './hitl-support.js';

const HOUR = 3_600_000;
const Ok = z.object({ ok: z.boolean() });

let after = 0;
const sleeper = workflow('sleeper', {
  input: z.object({}),
  async run(ctx) {
    const start = ctx.now();
    await ctx.sleep('nap', '1h');
    const woke = ctx.now();
    await ctx.step('after', () => after++);
    return { start, woke };
  },
});

const strict = workflow('strict-deadline', {
  input: z.object({}),
  async run(ctx) {
    const decision = await ctx.waitForInput('approval', { schema: Ok, timeout: '2h' });
    return decision.ok;
  },
});

const lenient = workflow('lenient-deadline', {
  input: z.object({}),
  async run(ctx) {
    const decision = await ctx.waitForInput('approval', {
      schema: Ok,
      timeout: '2h',
      onTimeout: { default: { ok: false } },
    });
    const note = await ctx.waitForInput('note', { schema: z.string() });
    return { ok: decision.ok, note };
  },
});

const catching = workflow('catching-deadline', {
  input: z.object({}),
  async run(ctx) {
    let outcome: string;
    try {
      const decision = await ctx.waitForInput('approval', { schema: Ok, timeout: '2h' });
      outcome = decision.ok ? 'approved' : 'rejected';
    } catch (error) {
      outcome = `timed out: ${(error as { code?: string }).code}`;
    }
    const note = await ctx.waitForInput('note', { schema: z.string() });
    return { outcome, note };
  },
});

let h: Harness;
afterEach(async () => {
  after = 0;
  await h?.close();
});

describe('durable timers', () => {
  it('a sleep survives a restart and ends at the same moment', async () => {
    h = await Harness.create([sleeper]);
    const t0 = h.clock.now();
    const handle = await h.engine.start(sleeper, {});
    await until(async () => (await h.store.getTask(handle.id, 'nap')) !== undefined, 'the nap');
    expect(await h.store.getTask(handle.id, 'nap')).toMatchObject({
      kind: 'sleep',
      status: 'sleeping',
      wakeAt: t0 + HOUR,
    });
    expect(await h.engine.get(handle.id)).toMatchObject({ status: 'running', isPaused: false });

    await h.clock.advance(HOUR / 2);
    await h.restart();
    expect(h.named('run:recovered').map((e) => e.runId)).toEqual([handle.id]);
    // A sleeping run was not interrupted mid-step: recovery does not count it.
    expect((await h.engine.get(handle.id)).recoveries).toBe(0);

    await h.clock.advance(HOUR / 2 - 1);
    expect(await h.store.getTask(handle.id, 'nap')).toMatchObject({ status: 'sleeping' });
    expect(after).toBe(0);
    await h.clock.advance(1);
    await expect(h.engine.handle(handle.id).result()).resolves.toEqual({
      start: t0,
      woke: t0 + HOUR,
    });
    expect(after).toBe(1);
    expect(await h.store.nextTimer()).toBeUndefined();
  });

  it('a sleep whose time passed while the engine was down ends on recovery', async () => {
    h = await Harness.create([sleeper]);
    const t0 = h.clock.now();
    const handle = await h.engine.start(sleeper, {});
    await until(async () => (await h.store.getTask(handle.id, 'nap')) !== undefined, 'the nap');
    await h.engine.close();
    await h.clock.advance(3 * HOUR);
    await h.restart();
    await expect(h.engine.handle(handle.id).result()).resolves.toEqual({
      start: t0,
      woke: t0 + 3 * HOUR,
    });
  });

  it("a wait timeout with onTimeout 'fail' fires after a restart and fails the run", async () => {
    h = await Harness.create([strict]);
    const t0 = h.clock.now();
    const handle = await h.engine.start(strict, {});
    await h.untilStatus(handle.id, 'paused');
    expect(await h.store.nextTimer()).toEqual({
      at: t0 + 2 * HOUR,
      runId: handle.id,
      taskId: 'approval',
    });

    await h.restart();
    expect(h.engine.activeRuns).toBe(0);
    await h.clock.advance(2 * HOUR - 1);
    expect(await h.engine.get(handle.id)).toMatchObject({ status: 'paused' });

    await h.clock.advance(1);
    await expect(h.engine.handle(handle.id).result()).rejects.toMatchObject({
      code: 'WAIT_TIMEOUT',
    });
    const run = await h.engine.get(handle.id);
    expect(run).toMatchObject({ status: 'failed', isPaused: false, pausedTaskId: null });
    expect(run.error?.code).toBe('WAIT_TIMEOUT');
    expect(await h.store.getTask(handle.id, 'approval')).toMatchObject({
      status: 'timed_out',
      endedAt: t0 + 2 * HOUR,
      error: { code: 'WAIT_TIMEOUT' },
    });
    expect(h.named('task:timed-out')).toEqual([
      { runId: handle.id, taskId: 'approval', kind: 'wait' },
    ]);
    expect((await h.engine.listWaiting()).items).toEqual([]);
    expect(await h.store.nextTimer()).toBeUndefined();
    // Too late to answer.
    await expect(h.engine.resumeTask(handle.id, 'approval', { ok: true })).rejects.toMatchObject({
      code: 'NOT_WAITING',
    });
    expect((await h.store.verify()).ok).toBe(true);
  });

  it('a wait timeout with a default continues with it; the outcome replays after a restart', async () => {
    h = await Harness.create([lenient]);
    const handle = await h.engine.start(lenient, {});
    await h.untilStatus(handle.id, 'paused');
    await h.restart();

    await h.clock.advance(2 * HOUR);
    // The run took the default and went on to the next wait.
    await until(
      async () => (await h.store.getTask(handle.id, 'note'))?.status === 'waiting',
      'the next wait',
    );
    await h.untilStatus(handle.id, 'paused');
    expect(await h.store.getTask(handle.id, 'approval')).toMatchObject({
      status: 'timed_out',
      output: { ok: false },
      error: null,
    });
    expect(await h.engine.get(handle.id)).toMatchObject({ pausedTaskId: 'note' });
    expect(h.named('task:timed-out')).toEqual([
      { runId: handle.id, taskId: 'approval', kind: 'wait' },
    ]);
    const lifecycle = h.events
      .filter((e) => e.name.startsWith('run:') || e.name.startsWith('task:'))
      .map((e) => ('taskId' in e.event ? `${e.name} ${e.event.taskId}` : e.name));
    expect(lifecycle).toEqual([
      'run:started',
      'task:waiting approval',
      'run:paused',
      // The timer loaded the paused run (not recovery), and the timeout resumed it.
      'task:timed-out approval',
      'run:resumed',
      'task:waiting note',
      'run:paused',
    ]);

    await h.restart();
    // Late input for the timed-out wait is refused; the recorded default stands.
    await expect(h.engine.resumeTask(handle.id, 'approval', { ok: true })).rejects.toMatchObject({
      code: 'NOT_WAITING',
    });
    await h.engine.resumeTask(handle.id, 'note', 'late but fine');
    await expect(h.engine.handle(handle.id).result()).resolves.toEqual({
      ok: false,
      note: 'late but fine',
    });
    expect(h.named('task:timed-out')).toHaveLength(1);
  });

  it('a caught WAIT_TIMEOUT is checkpointed and replays as the same error', async () => {
    h = await Harness.create([catching]);
    const handle = await h.engine.start(catching, {});
    await h.untilStatus(handle.id, 'paused');
    await h.clock.advance(2 * HOUR);
    await until(
      async () => (await h.store.getTask(handle.id, 'note'))?.status === 'waiting',
      'the next wait',
    );
    await h.untilStatus(handle.id, 'paused');
    await h.restart();
    await h.engine.resumeTask(handle.id, 'note', 'ok');
    await expect(h.engine.handle(handle.id).result()).resolves.toEqual({
      outcome: 'timed out: WAIT_TIMEOUT',
      note: 'ok',
    });
  });

  it('a wait answered in time does not time out later', async () => {
    h = await Harness.create([strict]);
    const handle = await h.engine.start(strict, {});
    await h.untilStatus(handle.id, 'paused');
    await h.engine.resumeTask(handle.id, 'approval', { ok: true });
    await expect(handle.result()).resolves.toBe(true);
    expect(await h.store.nextTimer()).toBeUndefined();
    await h.clock.advance(3 * HOUR);
    expect(await h.engine.get(handle.id)).toMatchObject({ status: 'completed', output: true });
    expect(h.named('task:timed-out')).toEqual([]);
  });

  it('a wait whose deadline passed while the engine was down times out when it starts', async () => {
    h = await Harness.create([strict]);
    const handle = await h.engine.start(strict, {});
    await h.untilStatus(handle.id, 'paused');
    await h.engine.close();
    await h.clock.advance(5 * HOUR);
    await h.restart();
    await h.clock.advance(0);
    await expect(h.engine.handle(handle.id).result()).rejects.toMatchObject({
      code: 'WAIT_TIMEOUT',
    });
  });
});
