import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import type { MemoryStore } from '@cairn/store';
import {
  CairnError,
  ManualClock,
  workflow,
  type AnyWorkflow,
  type Engine,
  type WorkflowContext,
} from '../src/index.js';
import { closeAfterTest, crash, deferred, never, open, rejectsWithCode, until } from './support.js';

const input = z.object({}).default({});

/**
 * Starts `before` and lets it get as far as `ready` says, "crashes", and opens a new engine
 * with `after` (same name and version: a code change without a version bump).
 */
async function changeCode(
  before: (ctx: WorkflowContext) => Promise<unknown>,
  after: (ctx: WorkflowContext) => Promise<unknown>,
  ready: (store: MemoryStore, runId: string) => Promise<boolean>,
  others: AnyWorkflow[] = [],
): Promise<{ engine: Engine; store: MemoryStore; runId: string }> {
  const clock = new ManualClock();
  const v1: AnyWorkflow = workflow('changing', { input, run: before });
  const first = await open({ workflows: [v1, ...others], clock });
  closeAfterTest(first.store);
  const handle = await first.engine.start(v1, {});
  await until(() => ready(first.store, handle.id), 'the first run to get far enough');
  const v2: AnyWorkflow = workflow('changing', { input, run: after });
  const second = await crash(first.store, { workflows: [v2, ...others], clock });
  closeAfterTest(second.store);
  return { ...second, runId: handle.id };
}

/** A child workflow that never ends. */
const hanging: AnyWorkflow = workflow('hanging', {
  input,
  run: (ctx) => ctx.step('forever', () => never()),
});

const hasTask =
  (taskId: string, status?: string) =>
  async (store: MemoryStore, runId: string): Promise<boolean> => {
    const task = await store.getTask(runId, taskId);
    return task !== undefined && (status === undefined || task.status === status);
  };

describe('a changed workflow function', () => {
  it('stops with NON_DETERMINISM naming the expected and the found step', async () => {
    let ranNew = 0;
    const { engine, runId } = await changeCode(
      async (ctx) => {
        await ctx.step('a', () => 1);
        await ctx.step('b', () => 2);
        return ctx.step('c', () => never());
      },
      async (ctx) => {
        await ctx.step('a', () => 1);
        await ctx.step('renamed', () => ranNew++);
        return ctx.step('c', () => 3);
      },
      hasTask('c'),
    );
    const error = (await rejectsWithCode(
      engine.handle(runId).result(),
      'NON_DETERMINISM',
    )) as CairnError;
    expect(error.details).toMatchObject({ expected: 'step "b"', found: '"renamed"' });
    expect(ranNew).toBe(0);
    const run = await engine.get(runId);
    expect(run.status).toBe('failed');
    expect(run.error?.code).toBe('NON_DETERMINISM');
    expect(run.error?.details).toMatchObject({ expected: 'step "b"', found: '"renamed"' });
    const tasks = await engine.tasks(runId);
    expect(tasks.map((t) => t.taskId)).toEqual(['a', 'b', 'c']);
  });

  it('stops with NON_DETERMINISM when the same id is now another kind of task', async () => {
    const { engine, runId } = await changeCode(
      async (ctx) => {
        await ctx.step('a', () => 1);
        return ctx.step('b', () => never());
      },
      async (ctx) => {
        await ctx.sleep('a', '1s');
        return ctx.step('b', () => 2);
      },
      hasTask('b'),
    );
    const error = (await rejectsWithCode(
      engine.handle(runId).result(),
      'NON_DETERMINISM',
    )) as CairnError;
    expect(error.details).toMatchObject({ expected: 'step "a"', found: 'sleep "a"' });
  });

  it('stops with NON_DETERMINISM when the step that was in flight is not called again', async () => {
    let ranNew = 0;
    const { engine, runId } = await changeCode(
      async (ctx) => {
        await ctx.step('a', () => 1);
        return ctx.step('in-flight', () => never());
      },
      async (ctx) => {
        await ctx.step('a', () => 1);
        return ctx.step('something-else', () => ranNew++);
      },
      hasTask('in-flight'),
    );
    const error = (await rejectsWithCode(
      engine.handle(runId).result(),
      'NON_DETERMINISM',
    )) as CairnError;
    expect(error.details).toMatchObject({ expected: 'step "in-flight"' });
    expect(ranNew).toBe(0);
    expect((await engine.tasks(runId)).map((t) => t.taskId)).toEqual(['a', 'in-flight']);
  });

  it('stops with NON_DETERMINISM when the workflow now ends before its history does', async () => {
    const { engine, runId } = await changeCode(
      async (ctx) => {
        await ctx.step('a', () => 1);
        await ctx.step('b', () => 2);
        return ctx.step('c', () => never());
      },
      async (ctx) => ctx.step('a', () => 1),
      hasTask('c'),
    );
    const error = (await rejectsWithCode(
      engine.handle(runId).result(),
      'NON_DETERMINISM',
    )) as CairnError;
    expect(error.details).toMatchObject({
      expected: 'step "b"',
      found: 'the end of the workflow',
    });
    expect((await engine.get(runId)).status).toBe('failed');
  });

  it('does not re-execute a step that history has, even when code around it changed', async () => {
    let aCalls = 0;
    const { engine, runId } = await changeCode(
      async (ctx) => {
        await ctx.step('a', () => 'first');
        return ctx.step('b', () => never());
      },
      async (ctx) => {
        const a = await ctx.step('a', () => {
          aCalls++;
          return 'second';
        });
        const b = await ctx.step('b', () => 'b');
        return `${a}/${b}`;
      },
      hasTask('b'),
    );
    expect(await engine.handle(runId).result()).toBe('first/b');
    expect(aCalls).toBe(0);
  });
});

describe('calls made in another order', () => {
  it('stops with NON_DETERMINISM when two sequential steps are swapped', async () => {
    const ran: string[] = [];
    const step = (ctx: WorkflowContext, name: string) =>
      ctx.step(name, () => {
        ran.push(name);
        return name.toUpperCase();
      });
    const { engine, runId } = await changeCode(
      async (ctx) => {
        await step(ctx, 'a');
        await step(ctx, 'b');
        return ctx.step('c', () => never());
      },
      async (ctx) => {
        await step(ctx, 'b');
        await step(ctx, 'a');
        return ctx.step('c', () => 'C');
      },
      hasTask('c'),
    );
    const error = (await rejectsWithCode(
      engine.handle(runId).result(),
      'NON_DETERMINISM',
    )) as CairnError;
    expect(error.details).toMatchObject({ expected: 'step "a"', found: 'step "b"' });
    expect(ran).toEqual(['a', 'b']);
    expect((await engine.tasks(runId)).map((t) => [t.taskId, t.status])).toEqual([
      ['a', 'completed'],
      ['b', 'completed'],
      ['c', 'cancelled'],
    ]);
  });

  it.each([
    ['a sleep', (ctx: WorkflowContext) => ctx.sleep('later', '1h'), 'sleep "later"'],
    [
      'a wait',
      (ctx: WorkflowContext) => ctx.waitForInput('later', { schema: z.boolean() }),
      'wait "later"',
    ],
    ['a child', (ctx: WorkflowContext) => ctx.child('later', hanging, {}), 'child "later"'],
  ])(
    'stops with NON_DETERMINISM when %s moves before the step it came after',
    async (_what, later, found) => {
      const { engine, runId } = await changeCode(
        async (ctx) => {
          await ctx.step('first', () => 1);
          await Promise.all([later(ctx), ctx.step('hang', () => never())]);
        },
        async (ctx) => {
          await Promise.all([later(ctx), ctx.step('hang', () => never())]);
          await ctx.step('first', () => 1);
        },
        hasTask('hang'),
        [hanging],
      );
      const error = (await rejectsWithCode(
        engine.handle(runId).result(),
        'NON_DETERMINISM',
      )) as CairnError;
      expect(error.details).toMatchObject({ expected: 'step "first"', found });
    },
  );

  it('tolerates any order for a run recorded without groups', async () => {
    const { engine, runId } = await changeCode(
      async (ctx) => {
        await ctx.step('a', () => 'A');
        await ctx.step('b', () => 'B');
        return ctx.step('c', () => never());
      },
      async (ctx) => {
        const b = await ctx.step('b', () => 'b2');
        const a = await ctx.step('a', () => 'a2');
        return [a, b, await ctx.step('c', () => 'C')];
      },
      async (store, runId) => {
        if (!(await hasTask('c')(store, runId))) return false;
        const tasks = await store.listTasks(runId);
        await store.checkpoint({ tasks: tasks.map((t) => ({ ...t, group: null })) });
        return true;
      },
    );
    expect(await engine.handle(runId).result()).toEqual(['A', 'B', 'C']);
  });
});

describe('parallel branches', () => {
  it('replay without false positives when branches finished in another order', async () => {
    // Left: l1 is slow, then l2. Right: r1, r2, r3 are quick, then r4 hangs. Before the
    // restart the right branch got far ahead of the left one, so history interleaves them.
    const l1 = deferred<string>();
    const calls: string[] = [];
    const body =
      (first: boolean) =>
      async (ctx: WorkflowContext): Promise<unknown> => {
        const step = (name: string, value: () => unknown) =>
          ctx.step(name, () => {
            calls.push(name);
            return value();
          });
        const left = async () => {
          const a = await step('l1', () => (first ? l1.promise : 'L1-again'));
          return [a, await step('l2', () => (first ? never() : 'L2'))];
        };
        const right = async () => {
          const out: unknown[] = [];
          for (const n of [1, 2, 3]) out.push(await step(`r${n}`, () => `R${n}`));
          out.push(await step('r4', () => (first ? never() : 'R4')));
          return out;
        };
        return Promise.all([left(), right()]);
      };
    const { engine, runId, store } = await changeCode(body(true), body(false), async (s, id) => {
      if ((await s.getTask(id, 'r4')) === undefined) return false;
      l1.resolve('L1');
      return (await s.getTask(id, 'l2')) !== undefined;
    });
    expect(await engine.handle(runId).result()).toEqual([
      ['L1', 'L2'],
      ['R1', 'R2', 'R3', 'R4'],
    ]);
    // Only the steps in flight at the restart ran again.
    expect(calls.slice(-2).sort()).toEqual(['l2', 'r4']);
    expect(calls.filter((c) => c === 'l1' || c.startsWith('r1'))).toEqual(['l1', 'r1']);
    const tasks = await store.listTasks(runId);
    expect(tasks.map((t) => t.taskId)).toEqual(['l1', 'r1', 'r2', 'r3', 'r4', 'l2']);
    expect(tasks.find((t) => t.taskId === 'l2')!.attempt).toBe(2);
  });

  it('replays Promise.all of steps declared in another order as the same steps', async () => {
    const { engine, runId } = await changeCode(
      async (ctx) => {
        await Promise.all([ctx.step('x', () => 'X'), ctx.step('y', () => 'Y')]);
        return ctx.step('z', () => never());
      },
      async (ctx) => {
        const [y, x] = await Promise.all([ctx.step('y', () => 'y2'), ctx.step('x', () => 'x2')]);
        return [x, y, await ctx.step('z', () => 'Z')];
      },
      hasTask('z'),
    );
    expect(await engine.handle(runId).result()).toEqual(['X', 'Y', 'Z']);
  });

  it('stops with NON_DETERMINISM when a branch no longer calls the step it had in flight', async () => {
    const gate = deferred();
    const body =
      (first: boolean) =>
      async (ctx: WorkflowContext): Promise<unknown> => {
        const left = async () => {
          await ctx.step('l1', () => 'L1');
          return ctx.step('l2', () => (first ? gate.promise.then(never) : 'L2'));
        };
        const right = async () => {
          const r1 = await ctx.step('r1', () => 'R1');
          if (first) await ctx.step('r-hang', () => never());
          return r1;
        };
        return Promise.all([left(), right()]);
      };
    const { engine, runId } = await changeCode(body(true), body(false), hasTask('r-hang'));
    // r-hang was in flight and the new code does not call it: the run stops.
    await rejectsWithCode(engine.handle(runId).result(), 'NON_DETERMINISM');
  });
});
