import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { CairnError, MemoryStore, type Run } from '@cairn/store';
import {
  ManualClock,
  createEngine,
  workflow,
  type AnyWorkflow,
  type EngineEvents,
  type EngineOptions,
  type StepContext,
} from '../src/index.js';
import {
  closeAfterTest,
  crash,
  deferred,
  never,
  open,
  rejectsWithCode,
  reopen,
  snapshot,
  until,
} from './support.js';

const input = z.object({ n: z.number().default(0) });

function track<T extends { store: MemoryStore }>(opened: T): T {
  closeAfterTest(opened.store);
  return opened;
}

/** A workflow whose step `b` hangs while `hang` is true (the process "dies" in it). */
function twoSteps(name: string, control: { hang: boolean }, seen: StepContext[] = []) {
  return workflow(name, {
    input,
    run: async (ctx, i) => {
      const a = await ctx.step('a', () => i.n + 1);
      const b = await ctx.step('b', (s) => {
        seen.push(s);
        return control.hang ? never<number>() : a * 10;
      });
      return b;
    },
  });
}

/** Collects events through `options.on`, which sees the events of recovery too. */
function recorder() {
  const events: { name: string; event: unknown }[] = [];
  const on: EngineOptions['on'] = {
    'run:recovered': (e) => events.push({ name: 'run:recovered', event: e }),
    'run:failed': (e) => events.push({ name: 'run:failed', event: e }),
    problem: (e) => events.push({ name: 'problem', event: e }),
  };
  const of = <K extends keyof EngineEvents>(name: K): EngineEvents[K][] =>
    events.filter((e) => e.name === name).map((e) => e.event as EngineEvents[K]);
  return { on, of };
}

describe('recovery on open', () => {
  it('recovers an interrupted run automatically: the step in flight runs again', async () => {
    const control = { hang: true };
    const seen: StepContext[] = [];
    const wf = twoSteps('interrupted', control, seen);
    const clock = new ManualClock();
    const first = track(await open({ workflows: [wf], clock }));
    const handle = await first.engine.start(wf, { n: 4 });
    await until(() => seen.length === 1, 'step b');
    control.hang = false;
    const rec = recorder();
    const second = track(await crash(first.store, { workflows: [wf], clock, on: rec.on }));
    expect(await second.engine.handle(handle.id).result()).toBe(50);
    expect(seen.map((s) => s.attempt)).toEqual([1, 2]);
    expect(new Set(seen.map((s) => s.idempotencyKey))).toEqual(new Set([`${handle.id}:b`]));
    const run = await second.engine.get(handle.id);
    expect(run).toMatchObject({ status: 'completed', recoveries: 1 });
    const tasks = await second.engine.tasks(handle.id);
    expect(tasks.map((t) => [t.taskId, t.status, t.attempt])).toEqual([
      ['a', 'completed', 1],
      ['b', 'completed', 2],
    ]);
    expect(tasks[1]!.attempts.map((a) => a.attempt)).toEqual([1, 2]);
    expect(rec.of('run:recovered')).toEqual([
      { runId: handle.id, workflow: 'interrupted', recoveries: 1 },
    ]);
    expect((await second.store.verify()).ok).toBe(true);
  });

  it('counts recoveries across restarts', async () => {
    const control = { hang: true };
    const seen: StepContext[] = [];
    const wf = twoSteps('counted', control, seen);
    const clock = new ManualClock();
    let current = track(await open({ workflows: [wf], clock }));
    const handle = await current.engine.start(wf, {});
    for (let i = 1; i <= 3; i++) {
      await until(() => seen.length === i, `attempt ${i}`);
      current = track(await crash(current.store, { workflows: [wf], clock }));
      expect((await current.engine.get(handle.id)).recoveries).toBe(i);
    }
    control.hang = false;
    current = track(await crash(current.store, { workflows: [wf], clock }));
    expect(await current.engine.handle(handle.id).result()).toBe(10);
    expect((await current.engine.get(handle.id)).recoveries).toBe(4);
    expect(seen.map((s) => s.attempt)).toEqual([1, 2, 3, 4, 5]);
  });

  it('fails the run with MAX_RECOVERIES_EXCEEDED after maxRecoveries', async () => {
    const control = { hang: true };
    const seen: StepContext[] = [];
    const wf = twoSteps('crashy', control, seen);
    const clock = new ManualClock();
    let current = track(await open({ workflows: [wf], clock, maxRecoveries: 2 }));
    const handle = await current.engine.start(wf, {});
    for (let i = 1; i <= 2; i++) {
      await until(() => seen.length === i, `attempt ${i}`);
      current = track(await crash(current.store, { workflows: [wf], clock, maxRecoveries: 2 }));
      expect(await current.engine.handle(handle.id).status()).toBe('running');
    }
    await until(() => seen.length === 3, 'attempt 3');
    const rec = recorder();
    current = track(
      await crash(current.store, { workflows: [wf], clock, maxRecoveries: 2, on: rec.on }),
    );
    await rejectsWithCode(current.engine.handle(handle.id).result(), 'MAX_RECOVERIES_EXCEEDED');
    const run = await current.engine.get(handle.id);
    expect(run).toMatchObject({ status: 'failed', recoveries: 3 });
    expect(run.error?.code).toBe('MAX_RECOVERIES_EXCEEDED');
    expect(seen).toHaveLength(3);
    const b = (await current.engine.tasks(handle.id))[1]!;
    expect(b.status).toBe('cancelled');
    expect(rec.of('run:failed').map((e) => e.error.code)).toEqual(['MAX_RECOVERIES_EXCEEDED']);
    expect(rec.of('run:recovered')).toEqual([]);
    expect(current.engine.activeRuns).toBe(0);
    expect((await current.store.verify()).ok).toBe(true);
  });

  it('cancels the children of a run failed with MAX_RECOVERIES_EXCEEDED', async () => {
    const childSteps: StepContext[] = [];
    const kid = workflow('kid-of-crashy', {
      input,
      run: async (ctx) =>
        ctx.step('kid-work', (s) => {
          childSteps.push(s);
          return never<number>();
        }),
    });
    const started: string[] = [];
    const parent = workflow('crashy-parent', {
      input,
      maxRecoveries: 0,
      run: async (ctx) =>
        Promise.all([
          ctx.child('kid', kid, {}),
          ctx.step('hang', () => {
            started.push('hang');
            return never<number>();
          }),
        ]),
    });
    const clock = new ManualClock();
    const first = track(await open({ workflows: [parent, kid], clock }));
    const handle = await first.engine.start(parent, {});
    await until(() => childSteps.length === 1 && started.length === 1, 'both steps');
    const second = track(await crash(first.store, { workflows: [parent, kid], clock }));
    await rejectsWithCode(second.engine.handle(handle.id).result(), 'MAX_RECOVERIES_EXCEEDED');
    const childId = (await second.engine.tasks(handle.id)).find(
      (t) => t.kind === 'child',
    )!.childRunId!;
    await rejectsWithCode(second.engine.handle(childId).result(), 'CANCELLED');
    expect(childSteps.at(-1)!.signal.aborted).toBe(true);
    expect(second.engine.activeRuns).toBe(0);
    expect((await second.store.verify()).ok).toBe(true);
  });

  it("uses the workflow's maxRecoveries over the engine's", async () => {
    const control = { hang: true };
    const seen: StepContext[] = [];
    const strict = workflow('no-second-chance', {
      input,
      maxRecoveries: 0,
      run: async (ctx) =>
        ctx.step('b', (s) => {
          seen.push(s);
          return control.hang ? never() : 1;
        }),
    });
    const clock = new ManualClock();
    const first = track(await open({ workflows: [strict], clock, maxRecoveries: 10 }));
    const handle = await first.engine.start(strict, {});
    await until(() => seen.length === 1);
    const second = track(await crash(first.store, { workflows: [strict], clock }));
    await rejectsWithCode(second.engine.handle(handle.id).result(), 'MAX_RECOVERIES_EXCEEDED');
    expect(seen).toHaveLength(1);
  });

  it('recovers a run interrupted between two steps', async () => {
    let reachedB = 0;
    // Before the restart the function hangs between its steps (on something not a step).
    const make = (hangs: boolean) =>
      workflow('between', {
        input,
        run: async (ctx) => {
          await ctx.step('a', () => 'A');
          if (hangs) await never();
          return ctx.step('b', () => ++reachedB);
        },
      });
    const clock = new ManualClock();
    const first = track(await open({ workflows: [make(true)], clock }));
    const handle = await first.engine.start('between', {});
    await until(async () => (await first.store.getTask(handle.id, 'a'))?.status === 'completed');
    const second = track(await crash(first.store, { workflows: [make(false)], clock }));
    expect(await second.engine.handle(handle.id).result()).toBe(1);
    expect((await second.engine.get(handle.id)).recoveries).toBe(1);
  });

  it('starts queued runs without counting a recovery', async () => {
    const wf = workflow('queued', { input, run: async (ctx, i) => ctx.step('s', () => i.n * 2) });
    const store = new MemoryStore();
    await store.open();
    const now = Date.UTC(2030, 0, 1);
    const queued: Run = {
      id: 'queued-run',
      workflow: 'queued',
      version: '1',
      namespace: 'default',
      status: 'queued',
      isPaused: false,
      pausedTaskId: null,
      pauseRequested: false,
      input: { n: 21 },
      error: null,
      createdAt: now,
      startedAt: null,
      updatedAt: now,
      endedAt: null,
      parentRunId: null,
      parentTaskId: null,
      depth: 0,
      recoveries: 0,
      tags: [],
    };
    await store.createRun(queued);
    await store.close();
    const { engine, store: s2 } = track(
      await reopen(store, { workflows: [wf], clock: new ManualClock() }),
    );
    expect(await engine.handle('queued-run').result()).toBe(42);
    const run = await engine.get('queued-run');
    expect(run).toMatchObject({ status: 'completed', recoveries: 0 });
    expect(run.startedAt).not.toBeNull();
    expect((await s2.verify()).ok).toBe(true);
  });

  it('leaves paused runs paused and out of memory', async () => {
    const wf = workflow('paused-stays', {
      input,
      run: async (ctx) => ctx.waitForInput('ok', { schema: z.boolean() }),
    });
    const clock = new ManualClock();
    const first = track(await open({ workflows: [wf], clock }));
    const handle = await first.engine.start(wf, {});
    await until(async () => (await handle.status()) === 'paused');
    const rec = recorder();
    const before = await snapshot(first.store);
    const second = track(await crash(first.store, { workflows: [wf], clock, on: rec.on }));
    expect(second.engine.activeRuns).toBe(0);
    expect(await second.engine.handle(handle.id).status()).toBe('paused');
    expect(rec.of('run:recovered')).toEqual([]);
    expect(await snapshot(second.store)).toEqual(before);
  });

  it('does not recover anything with recover: false', async () => {
    const control = { hang: true };
    const seen: StepContext[] = [];
    const wf = twoSteps('not-recovered', control, seen);
    const clock = new ManualClock();
    const first = track(await open({ workflows: [wf], clock }));
    const handle = await first.engine.start(wf, {});
    await until(() => seen.length === 1);
    const second = track(await crash(first.store, { workflows: [wf], clock, recover: false }));
    expect(second.engine.activeRuns).toBe(0);
    expect(await second.engine.handle(handle.id).status()).toBe('running');
    expect(seen).toHaveLength(1);
  });
});

describe('runs that cannot be recovered', () => {
  async function twoInterrupted(
    damage: (store: MemoryStore, victim: string) => Promise<void>,
    workflowsAfter?: (wf: AnyWorkflow) => AnyWorkflow[],
  ) {
    const control = { hang: true };
    const seen: StepContext[] = [];
    const wf = twoSteps('pair', control, seen);
    const clock = new ManualClock();
    const first = track(await open({ workflows: [wf], clock }));
    const victim = await first.engine.start(wf, { n: 1 });
    const healthy = await first.engine.start(wf, { n: 2 });
    await until(() => seen.length === 2, 'both runs in step b');
    await first.store.close();
    const raw = new MemoryStore({ db: first.store.memory });
    await raw.open();
    await damage(raw, victim.id);
    const victimKeys = new Map([...(await snapshot(raw))].filter(([k]) => k.includes(victim.id)));
    await raw.close();
    control.hang = false;
    const rec = recorder();
    const second = track(
      await reopen(raw, {
        workflows: workflowsAfter ? workflowsAfter(wf) : [wf],
        clock,
        on: rec.on,
      }),
    );
    return { ...second, rec, victim: victim.id, healthy: healthy.id, victimKeys };
  }

  it('reports a run whose record is garbage through "problem" and recovers the others', async () => {
    const { engine, store, rec, victim, healthy, victimKeys } = await twoInterrupted(
      async (raw, id) => {
        await raw.level.put(`runs\x00${id}`, new Uint8Array([0xc1, 0xff, 0x00, 0x13, 0x37]));
      },
    );
    expect(await engine.handle(healthy).result()).toBe(30);
    const problems = rec.of('problem');
    expect(problems.map((p) => [p.runId, p.error.code])).toEqual([[victim, 'CORRUPT_RECORD']]);
    expect(problems[0]!.error).toBeInstanceOf(CairnError);
    expect(rec.of('run:recovered').map((e) => e.runId)).toEqual([healthy]);
    // The damaged run is left exactly as it was.
    const after = new Map([...(await snapshot(store))].filter(([k]) => k.includes(victim)));
    expect(after).toEqual(victimKeys);
    await rejectsWithCode(engine.get(victim), 'CORRUPT_RECORD');
  });

  it('reports a run whose record decodes but is not a run, and recovers the others', async () => {
    const { engine, rec, victim, healthy } = await twoInterrupted(async (raw, id) => {
      // Valid msgpack ({ hello: 'world' }), but not a Run record.
      await raw.level.put(
        `runs\x00${id}`,
        new Uint8Array([
          0x81, 0xa5, 0x68, 0x65, 0x6c, 0x6c, 0x6f, 0xa5, 0x77, 0x6f, 0x72, 0x6c, 0x64,
        ]),
      );
    });
    expect(await engine.handle(healthy).result()).toBe(30);
    expect(rec.of('problem').map((p) => [p.runId, p.error.code])).toEqual([
      [victim, 'CORRUPT_RECORD'],
    ]);
  });

  it('reports a run whose task record is garbage and recovers the others', async () => {
    const { engine, store, rec, victim, healthy } = await twoInterrupted(async (raw, id) => {
      await raw.level.put(`tasks\x00${id}\x00a`, new Uint8Array([0xc1]));
    });
    expect(await engine.handle(healthy).result()).toBe(30);
    expect(rec.of('problem').map((p) => [p.runId, p.error.code])).toEqual([
      [victim, 'CORRUPT_RECORD'],
    ]);
    expect((await store.getRun(victim))?.status).toBe('running');
  });

  it('reports VERSION_NOT_REGISTERED for a run pinned to a version the engine lacks', async () => {
    const control = { hang: true };
    const seen: StepContext[] = [];
    const v1 = twoSteps('pinned', control, seen);
    const v2 = workflow('pinned', { input, version: '2', run: async () => 'v2' });
    const clock = new ManualClock();
    const first = track(await open({ workflows: [v1], clock }));
    const handle = await first.engine.start(v1, {});
    await until(() => seen.length === 1);
    const before = await snapshot(first.store);
    const rec = recorder();
    const second = track(await crash(first.store, { workflows: [v2], clock, on: rec.on }));
    expect(rec.of('problem').map((p) => [p.runId, p.error.code])).toEqual([
      [handle.id, 'VERSION_NOT_REGISTERED'],
    ]);
    expect(second.engine.activeRuns).toBe(0);
    expect(await snapshot(second.store)).toEqual(before);
  });
});

describe('close()', () => {
  it('drains: the step in flight finishes and is checkpointed, nothing new starts', async () => {
    const gate = deferred<string>();
    const started: string[] = [];
    const wf = workflow('drain', {
      input,
      run: async (ctx) => {
        const a = await ctx.step('a', () => {
          started.push('a');
          return gate.promise;
        });
        const b = await ctx.step('b', () => {
          started.push('b');
          return `${a}+b`;
        });
        return b;
      },
    });
    const clock = new ManualClock();
    const first = track(await open({ workflows: [wf], clock }));
    const handle = await first.engine.start(wf, {});
    await until(() => started.length === 1);
    let closed = false;
    const closing = first.engine.close().then(() => (closed = true));
    await until(() => true);
    expect(closed).toBe(false);
    await rejectsWithCode(first.engine.start(wf, {}), 'ENGINE_CLOSED');
    gate.resolve('A');
    await closing;
    expect(started).toEqual(['a']);
    const a = await first.store.getTask(handle.id, 'a');
    expect(a).toMatchObject({ status: 'completed', output: 'A' });
    expect(await first.store.getTask(handle.id, 'b')).toBeUndefined();
    expect((await first.store.getRun(handle.id))?.status).toBe('running');
    // The next engine carries on from the checkpoint.
    await first.store.close();
    const second = track(await reopen(first.store, { workflows: [wf], clock }));
    expect(await second.engine.handle(handle.id).result()).toBe('A+b');
    expect(started).toEqual(['a', 'b']);
  });

  it('does not start steps that were queued behind the concurrency limit', async () => {
    const gate = deferred();
    const started: string[] = [];
    const wf = workflow('drain-queue', {
      input,
      run: async (ctx) =>
        Promise.all(
          ['x', 'y', 'z'].map((n) =>
            ctx.step(n, async () => {
              started.push(n);
              await gate.promise;
              return n;
            }),
          ),
        ),
    });
    const clock = new ManualClock();
    const first = track(await open({ workflows: [wf], clock, concurrency: 1 }));
    const handle = await first.engine.start(wf, {});
    await until(() => started.length === 1);
    const closing = first.engine.close();
    gate.resolve();
    await closing;
    expect(started).toEqual(['x']);
    await first.store.close();
    const second = track(await reopen(first.store, { workflows: [wf], clock }));
    expect(await second.engine.handle(handle.id).result()).toEqual(['x', 'y', 'z']);
    expect(started).toEqual(['x', 'y', 'z']);
  });

  it('is safe to call twice, and refuses new work afterwards with ENGINE_CLOSED', async () => {
    const wf = workflow('closing', { input, run: async () => 1 });
    const { engine } = track(await open({ workflows: [wf], clock: new ManualClock() }));
    await Promise.all([engine.close(), engine.close()]);
    await engine.close();
    await rejectsWithCode(engine.start(wf, {}), 'ENGINE_CLOSED');
    await rejectsWithCode(engine.cancel('x'), 'ENGINE_CLOSED');
    await rejectsWithCode(engine.pause('x'), 'ENGINE_CLOSED');
    await rejectsWithCode(engine.resume('x'), 'ENGINE_CLOSED');
    await rejectsWithCode(engine.resumeTask('x', 't', 1), 'ENGINE_CLOSED');
  });

  it('closes a store it opened itself, and leaves a store it was given open', async () => {
    const wf = workflow('own-store', { input, run: async () => 1 });
    const store = new MemoryStore();
    const engine = await createEngine({ store, workflows: [wf], clock: new ManualClock() });
    await engine.close();
    expect(store.status).toBe('open');
    await store.close();
  });
});
