import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { CairnError, ManualClock, TerminalError, workflow } from '../src/index.js';
import {
  closeAfterTest,
  crash,
  deferred,
  never,
  openForTest,
  rejectsWithCode,
  until,
} from './support.js';

const setup = openForTest;

const leaf = workflow('leaf', {
  input: z.object({ n: z.number() }),
  run: async (ctx, i) => ctx.step('square', () => i.n * i.n),
});

const middle = workflow('middle', {
  input: z.object({ n: z.number() }),
  run: async (ctx, i) => (await ctx.child('leaf', leaf, { n: i.n })) + 1,
});

describe('child runs', () => {
  it('records parentRunId, parentTaskId, depth, namespace and tags of children', async () => {
    const top = workflow('top', {
      input: z.object({ n: z.number() }),
      run: async (ctx, i) => {
        const a = await ctx.child('mid', middle, { n: i.n }, { tags: ['kid'] });
        const b = await ctx.child('mid', middle, { n: i.n + 1 });
        return [a, b];
      },
    });
    const { engine, store } = await setup({
      workflows: [top, middle, leaf],
      clock: new ManualClock(),
    });
    const handle = await engine.start(top, { n: 3 }, { namespace: 'proj' });
    expect(await handle.result()).toEqual([10, 17]);

    const tasks = await engine.tasks(handle.id);
    expect(tasks.map((t) => [t.taskId, t.kind, t.status, t.output])).toEqual([
      ['mid', 'child', 'completed', 10],
      ['mid#2', 'child', 'completed', 17],
    ]);
    expect(tasks[0]!.meta).toEqual({ workflow: 'middle', version: '1' });
    const mid = await engine.get(tasks[0]!.childRunId!);
    expect(mid).toMatchObject({
      workflow: 'middle',
      status: 'completed',
      parentRunId: handle.id,
      parentTaskId: 'mid',
      depth: 1,
      namespace: 'proj',
      tags: ['kid'],
      output: 10,
    });
    const midTasks = await engine.tasks(mid.id);
    const leafRun = await engine.get(midTasks[0]!.childRunId!);
    expect(leafRun).toMatchObject({
      workflow: 'leaf',
      parentRunId: mid.id,
      parentTaskId: 'leaf',
      depth: 2,
      namespace: 'proj',
    });
    expect((await engine.get(tasks[1]!.childRunId!)).parentTaskId).toBe('mid#2');
    expect((await store.listRuns({ limit: 100 })).items).toHaveLength(5);
    expect((await store.verify()).ok).toBe(true);
  });

  it('emits run:started with the parent run id', async () => {
    const parent = workflow('parent-events', {
      input: z.object({}),
      run: async (ctx) => ctx.child('k', leaf, { n: 2 }),
    });
    const { engine } = await setup({ workflows: [parent, leaf], clock: new ManualClock() });
    const started: (string | null)[] = [];
    engine.on('run:started', (e) => started.push(e.parentRunId));
    const handle = await engine.start(parent, {});
    await handle.result();
    expect(started).toEqual([null, handle.id]);
  });
});

describe('child failures', () => {
  const failing = workflow('failing', {
    input: z.object({}),
    run: async (ctx) =>
      ctx.step('explode', () => {
        throw new TerminalError('kaboom');
      }),
  });

  it('gives the parent CHILD_FAILED, with the child error in the details', async () => {
    let caught: CairnError | undefined;
    const parent = workflow('parent-catches', {
      input: z.object({}),
      run: async (ctx) => {
        try {
          await ctx.child('kid', failing, {});
        } catch (error) {
          caught = error as CairnError;
        }
        return 'went on';
      },
    });
    const { engine } = await setup({ workflows: [parent, failing], clock: new ManualClock() });
    const handle = await engine.start(parent, {});
    expect(await handle.result()).toBe('went on');
    expect(caught).toBeInstanceOf(CairnError);
    expect(caught!.code).toBe('CHILD_FAILED');
    expect(caught!.details?.childError).toMatchObject({ code: 'STEP_FAILED' });
    const task = (await engine.tasks(handle.id))[0]!;
    expect(task.status).toBe('failed');
    expect(task.error?.code).toBe('CHILD_FAILED');
    expect((await engine.get(task.childRunId!)).status).toBe('failed');
  });

  it('fails the parent with CHILD_FAILED when it does not catch', async () => {
    const parent = workflow('parent-fails', {
      input: z.object({}),
      run: async (ctx) => ctx.child('kid', failing, {}),
    });
    const { engine } = await setup({ workflows: [parent, failing], clock: new ManualClock() });
    const handle = await engine.start(parent, {});
    await rejectsWithCode(handle.result(), 'CHILD_FAILED');
    expect((await handle.run()).error?.code).toBe('CHILD_FAILED');
  });

  it('refuses invalid child input with INVALID_INPUT and creates no child run', async () => {
    const parent = workflow('parent-bad-input', {
      input: z.object({}),
      run: async (ctx) => ctx.child('kid', leaf, { n: 'three' } as never),
    });
    const { engine, store } = await setup({
      workflows: [parent, leaf],
      clock: new ManualClock(),
    });
    const handle = await engine.start(parent, {});
    await rejectsWithCode(handle.result(), 'INVALID_INPUT');
    expect((await store.listRuns()).items.map((r) => r.workflow)).toEqual(['parent-bad-input']);
    expect(await engine.tasks(handle.id)).toEqual([]);
  });

  it('refuses a child workflow that is not registered', async () => {
    const parent = workflow('parent-unknown-child', {
      input: z.object({}),
      run: async (ctx) => ctx.child('kid', leaf, { n: 1 }),
    });
    const { engine, store } = await setup({ workflows: [parent], clock: new ManualClock() });
    const handle = await engine.start(parent, {});
    await rejectsWithCode(handle.result(), 'WORKFLOW_NOT_REGISTERED');
    expect((await store.listRuns()).items).toHaveLength(1);
  });

  it('refuses a child that is not a workflow, and bad child options, with TypeErrors', async () => {
    const codes: unknown[] = [];
    const parent = workflow('parent-bad-child', {
      input: z.object({}),
      run: async (ctx) => {
        for (const call of [
          () => ctx.child('a', null as never, {}),
          () => ctx.child('b', 'leaf' as never, {}),
          () => ctx.child('c', leaf, { n: 1 }, null as never),
          () => ctx.child(3 as never, leaf, { n: 1 }),
        ]) {
          try {
            await call();
          } catch (error) {
            codes.push([error instanceof TypeError, (error as CairnError).code]);
          }
        }
        return null;
      },
    });
    const { engine } = await setup({ workflows: [parent, leaf], clock: new ManualClock() });
    await (await engine.start(parent, {})).result();
    expect(codes).toEqual(Array(4).fill([true, 'INVALID_ARGUMENT']));
  });
});

describe('cancelling', () => {
  it('cancels the child when the parent is cancelled, aborting its steps', async () => {
    let childSignal: AbortSignal | undefined;
    const slow = workflow('slow-child', {
      input: z.object({}),
      run: async (ctx) =>
        ctx.step('hang', (s) => {
          childSignal = s.signal;
          return never<string>();
        }),
    });
    const parent = workflow('parent-cancelled', {
      input: z.object({}),
      run: async (ctx) => ctx.child('kid', slow, {}),
    });
    const { engine, store } = await setup({ workflows: [parent, slow], clock: new ManualClock() });
    const handle = await engine.start(parent, {});
    await until(() => childSignal !== undefined, 'the child step');
    const cancelled = await engine.cancel(handle.id);
    expect(cancelled.status).toBe('cancelled');
    await rejectsWithCode(handle.result(), 'CANCELLED');
    const childId = (await engine.tasks(handle.id))[0]!.childRunId!;
    await rejectsWithCode(engine.handle(childId).result(), 'CANCELLED');
    expect(childSignal!.aborted).toBe(true);
    expect((await engine.tasks(handle.id))[0]!.status).toBe('cancelled');
    expect((await engine.tasks(childId))[0]!.status).toBe('cancelled');
    expect(engine.activeRuns).toBe(0);
    expect((await store.verify()).ok).toBe(true);
  });

  it('cancels a child that is paused on a wait (not in memory) with its parent', async () => {
    const asking = workflow('asking-child', {
      input: z.object({}),
      run: async (ctx) => ctx.waitForInput('answer', { schema: z.string() }),
    });
    const parent = workflow('parent-of-asking', {
      input: z.object({}),
      run: async (ctx) => ctx.child('kid', asking, {}),
    });
    const { engine, store } = await setup({
      workflows: [parent, asking],
      clock: new ManualClock(),
    });
    const handle = await engine.start(parent, {});
    await until(async () => (await engine.listWaiting()).items.length === 1, 'the child wait');
    const childId = (await engine.tasks(handle.id))[0]!.childRunId!;
    await until(async () => (await engine.get(childId)).status === 'paused', 'the child pause');
    expect(await handle.status()).toBe('running');
    await engine.cancel(handle.id);
    await rejectsWithCode(engine.handle(childId).result(), 'CANCELLED');
    expect((await engine.tasks(childId))[0]!.status).toBe('cancelled');
    expect((await engine.listWaiting()).items).toEqual([]);
    expect((await store.verify()).ok).toBe(true);
  });

  it('gives the parent CANCELLED when only the child is cancelled', async () => {
    let caught: CairnError | undefined;
    const gate = deferred();
    const slow = workflow('slow-child-2', {
      input: z.object({}),
      run: async (ctx) => ctx.step('hang', () => gate.promise),
    });
    const parent = workflow('parent-of-cancelled', {
      input: z.object({}),
      run: async (ctx) => {
        try {
          await ctx.child('kid', slow, {});
        } catch (error) {
          caught = error as CairnError;
        }
        return 'handled';
      },
    });
    const { engine } = await setup({ workflows: [parent, slow], clock: new ManualClock() });
    const handle = await engine.start(parent, {});
    await until(async () => (await engine.tasks(handle.id))[0]?.childRunId != null);
    const childId = (await engine.tasks(handle.id))[0]!.childRunId!;
    await engine.cancel(childId);
    expect(await handle.result()).toBe('handled');
    expect(caught?.code).toBe('CANCELLED');
    expect((await engine.tasks(handle.id))[0]!.status).toBe('cancelled');
  });
});

describe('children and restarts', () => {
  it('reattaches a parent to its running child after a restart, without a second child', async () => {
    const hang = deferred<number>();
    let childCalls = 0;
    const makeChild = (hangs: boolean) =>
      workflow('restart-child', {
        input: z.object({}),
        run: async (ctx) =>
          ctx.step('work', () => {
            childCalls++;
            return hangs ? hang.promise : 7;
          }),
      });
    const parent = (kid: ReturnType<typeof makeChild>) =>
      workflow('restart-parent', {
        input: z.object({}),
        run: async (ctx) => (await ctx.child('kid', kid, {})) * 6,
      });
    const clock = new ManualClock();
    const k1 = makeChild(true);
    const first = await setup({ workflows: [parent(k1), k1], clock });
    const handle = await first.engine.start('restart-parent', {});
    await until(() => childCalls === 1, 'the child step');
    const k2 = makeChild(false);
    const second = await crash(first.store, { workflows: [parent(k2), k2], clock });
    closeAfterTest(second.store);
    expect(await second.engine.handle(handle.id).result()).toBe(42);
    expect(childCalls).toBe(2);
    const runs = (await second.store.listRuns()).items;
    expect(runs.map((r) => r.workflow).sort()).toEqual(['restart-child', 'restart-parent']);
    expect(runs.every((r) => r.status === 'completed')).toBe(true);
  });
});
