import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import type { MemoryStore } from '@cairn/store';
import {
  ManualClock,
  TerminalError,
  workflow,
  type Engine,
  type EngineEventName,
  type EngineEvents,
  type EngineOptions,
} from '../src/index.js';
import { closeAfterTest, crash, deferred, never, open, tick, until } from './support.js';

const input = z.object({}).default({});

const ALL: EngineEventName[] = [
  'run:started',
  'run:completed',
  'run:failed',
  'run:cancelled',
  'run:paused',
  'run:resumed',
  'run:recovered',
  'task:started',
  'task:completed',
  'task:failed',
  'task:waiting',
  'task:resumed',
  'task:timed-out',
  'warning',
  'problem',
];

async function setup(
  options: Omit<EngineOptions, 'store'>,
): Promise<{ engine: Engine; store: MemoryStore; log: () => string[]; events: Logged[] }> {
  const opened = await open(options);
  closeAfterTest(opened.store);
  const events: Logged[] = [];
  for (const name of ALL) {
    opened.engine.on(name, (event) => events.push({ name, event } as Logged));
  }
  const short = (e: Logged): string => {
    const ev = e.event as { taskId?: string; attempt?: number; willRetry?: boolean };
    let text = e.name;
    if (ev.taskId !== undefined) text += ` ${ev.taskId}`;
    if (e.name === 'task:started') text += `#${ev.attempt}`;
    if (e.name === 'task:failed') text += ev.willRetry ? ' (retry)' : ' (final)';
    return text;
  };
  return { ...opened, log: () => events.map(short), events };
}

type Logged = { [K in EngineEventName]: { name: K; event: EngineEvents[K] } }[EngineEventName];

describe('lifecycle events', () => {
  it('fire in order for a run that completes', async () => {
    const clock = new ManualClock();
    const gate = deferred();
    const wf = workflow('happy', {
      input,
      run: async (ctx) => {
        const a = await ctx.step('a', async () => {
          await gate.promise;
          return 1;
        });
        const [b, c] = await Promise.all([ctx.step('b', () => a + 1), ctx.step('c', () => a + 2)]);
        return b + c;
      },
    });
    const { engine, log, events } = await setup({ workflows: [wf], clock });
    const handle = await engine.start(wf, {});
    await until(() => log().length === 2);
    await clock.advance(1500);
    gate.resolve();
    expect(await handle.result()).toBe(5);
    await until(() => log().includes('run:completed'));
    expect(log()).toEqual([
      'run:started',
      'task:started a#1',
      'task:completed a',
      'task:started b#1',
      'task:started c#1',
      'task:completed b',
      'task:completed c',
      'run:completed',
    ]);
    const started = events.find((e) => e.name === 'run:started')!.event;
    expect(started).toEqual({
      runId: handle.id,
      workflow: 'happy',
      version: '1',
      namespace: 'default',
      parentRunId: null,
    });
    const completedA = events.find((e) => e.name === 'task:completed')!.event;
    expect(completedA).toEqual({ runId: handle.id, taskId: 'a', kind: 'step', durationMs: 1500 });
    const done = events.find((e) => e.name === 'run:completed')!.event;
    expect(done).toEqual({ runId: handle.id, workflow: 'happy', output: 5, durationMs: 1500 });
  });

  it('fire in order for retries and a run that fails', async () => {
    const clock = new ManualClock();
    let calls = 0;
    const wf = workflow('sad', {
      input,
      run: async (ctx) =>
        ctx.step(
          'flaky',
          () => {
            calls++;
            throw calls === 1 ? new Error('once') : new TerminalError('for good');
          },
          { retry: { attempts: 3, initialDelay: 10, jitter: 0 } },
        ),
    });
    const { engine, log, events } = await setup({ workflows: [wf], clock });
    const handle = await engine.start(wf, {});
    await tick(clock, 10);
    await handle.result().catch(() => undefined);
    await until(() => log().includes('run:failed'));
    expect(log()).toEqual([
      'run:started',
      'task:started flaky#1',
      'task:failed flaky (retry)',
      'task:started flaky#2',
      'task:failed flaky (final)',
      'run:failed',
    ]);
    const failures = events.filter((e) => e.name === 'task:failed').map((e) => e.event);
    expect(failures.map((f) => [f.kind, f.error.message])).toEqual([
      ['step', 'once'],
      ['step', 'for good'],
    ]);
    const failed = events.find((e) => e.name === 'run:failed')!.event;
    expect(failed).toMatchObject({ runId: handle.id, workflow: 'sad' });
    expect(failed.error.code).toBe('STEP_FAILED');
  });

  it('fire for a run that waits, is resumed, sleeps and completes', async () => {
    const clock = new ManualClock();
    const wf = workflow('human', {
      input,
      run: async (ctx) => {
        const ok = await ctx.waitForInput('approve', { schema: z.boolean(), timeout: '1h' });
        await ctx.sleep('nap', '1m');
        return ok;
      },
    });
    const { engine, log, events } = await setup({ workflows: [wf], clock });
    const handle = await engine.start(wf, {});
    await until(() => log().includes('run:paused'));
    await engine.resumeTask(handle.id, 'approve', true, { by: 'ada' });
    await tick(clock, 60_000);
    expect(await handle.result()).toBe(true);
    await until(() => log().includes('run:completed'));
    expect(log()).toEqual([
      'run:started',
      'task:waiting approve',
      'run:paused',
      // Loading the paused run again replays it; then the input is delivered.
      'task:resumed approve',
      'run:resumed',
      'task:completed nap',
      'run:completed',
    ]);
    const waiting = events.find((e) => e.name === 'task:waiting')!.event;
    expect(waiting.timeoutAt).toBe(Date.UTC(2030, 0, 1) + 3_600_000);
    expect(waiting.schema).toMatchObject({ type: 'boolean' });
    const paused = events.find((e) => e.name === 'run:paused')!.event;
    expect(paused).toEqual({
      runId: handle.id,
      workflow: 'human',
      pausedTaskId: 'approve',
      reason: 'waiting',
    });
    expect(events.find((e) => e.name === 'task:resumed')!.event.by).toBe('ada');
  });

  it('fire for a child run, with the parent run id', async () => {
    const kid = workflow('kid', { input, run: async (ctx) => ctx.step('k', () => 'k') });
    const parent = workflow('parent', { input, run: async (ctx) => ctx.child('kid', kid, {}) });
    const { engine, events } = await setup({ workflows: [parent, kid], clock: new ManualClock() });
    const handle = await engine.start(parent, {});
    await handle.result();
    await until(() => events.filter((e) => e.name === 'run:completed').length === 2);
    const summary = events
      .filter((e) => e.name !== 'warning')
      .map((e) => {
        const ev = e.event as { runId: string; taskId?: string; kind?: string };
        return `${e.name} ${ev.runId === handle.id ? 'parent' : 'kid'}${ev.taskId ? ` ${ev.taskId}` : ''}`;
      });
    expect(summary).toEqual([
      'run:started parent',
      'task:started parent kid',
      'run:started kid',
      'task:started kid k',
      'task:completed kid k',
      'run:completed kid',
      'task:completed parent kid',
      'run:completed parent',
    ]);
    const childStarted = events.filter((e) => e.name === 'run:started')[1]!.event;
    expect(childStarted.parentRunId).toBe(handle.id);
  });

  it('fire run:cancelled once for a cancelled run', async () => {
    let started = false;
    const wf = workflow('to-cancel', {
      input,
      run: async (ctx) =>
        ctx.step('hang', () => {
          started = true;
          return never();
        }),
    });
    const { engine, log } = await setup({ workflows: [wf], clock: new ManualClock() });
    const handle = await engine.start(wf, {});
    await until(() => started);
    await engine.cancel(handle.id);
    await handle.result().catch(() => undefined);
    expect(log()).toEqual(['run:started', 'task:started hang#1', 'run:cancelled']);
  });
});

describe('listeners', () => {
  it('turn a throwing listener into a warning and keep the run going', async () => {
    const wf = workflow('listener-throws', { input, run: async (ctx) => ctx.step('s', () => 1) });
    const { engine, events } = await setup({ workflows: [wf], clock: new ManualClock() });
    engine.on('task:completed', () => {
      throw new Error('listener bug');
    });
    const handle = await engine.start(wf, {});
    expect(await handle.result()).toBe(1);
    const warnings = events.filter((e) => e.name === 'warning').map((e) => e.event);
    expect(warnings).toHaveLength(1);
    expect((warnings[0]!.cause as Error).message).toBe('listener bug');
  });

  it('stop when removed with off() or the function on() returns', async () => {
    const wf = workflow('listener-off', { input, run: async (ctx) => ctx.step('s', () => 1) });
    const { engine } = await setup({ workflows: [wf], clock: new ManualClock() });
    const a: string[] = [];
    const b: string[] = [];
    const listenerA = (e: EngineEvents['run:completed']): number => a.push(e.runId);
    engine.on('run:completed', listenerA);
    const stopB = engine.on('run:completed', (e) => b.push(e.runId));
    const first = await engine.start(wf, {});
    await first.result();
    engine.off('run:completed', listenerA);
    stopB();
    stopB();
    await (await engine.start(wf, {})).result();
    expect(a).toEqual([first.id]);
    expect(b).toEqual([first.id]);
  });

  it('fire run:recovered, not run:started again, for a run recovered before its first task', async () => {
    const make = (hangs: boolean) =>
      workflow('slow-start', {
        input,
        run: async (ctx) => {
          if (hangs) await never();
          return ctx.step('first', () => 'done');
        },
      });
    const clock = new ManualClock();
    const first = await open({ workflows: [make(true)], clock });
    closeAfterTest(first.store);
    const handle = await first.engine.start('slow-start', {});
    const seen: string[] = [];
    const second = await crash(first.store, {
      workflows: [make(false)],
      clock,
      on: {
        'run:started': () => seen.push('run:started'),
        'run:recovered': () => seen.push('run:recovered'),
        'run:completed': () => seen.push('run:completed'),
      },
    });
    closeAfterTest(second.store);
    expect(await second.engine.handle(handle.id).result()).toBe('done');
    expect(seen).toEqual(['run:recovered', 'run:completed']);
  });

  it('given in options.on hear the events of recovery', async () => {
    const recovered: EngineEvents['run:recovered'][] = [];
    const wf = workflow('listen-early', { input, run: async () => 1 });
    const { engine } = await setup({
      workflows: [wf],
      clock: new ManualClock(),
      on: { 'run:recovered': (e) => recovered.push(e) },
    });
    await (await engine.start(wf, {})).result();
    expect(recovered).toEqual([]);
  });
});
