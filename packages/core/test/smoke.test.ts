import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { MemoryStore } from '@cairn/store';
import { ManualClock, createEngine, workflow } from '../src/index.js';

describe('smoke', () => {
  it('runs steps, parallel steps, a child, a wait and a sleep', async () => {
    const clock = new ManualClock();
    const child = workflow('child', {
      input: z.object({ n: z.number() }),
      run: async (ctx, input) => ctx.step('double', () => input.n * 2),
    });
    let calls = 0;
    const parent = workflow('parent', {
      input: z.object({ n: z.number() }),
      run: async (ctx, input) => {
        const a = await ctx.step('a', () => input.n + 1);
        const [b, c] = await Promise.all([
          ctx.step('b', () => a * 10),
          ctx.step('c', () => a * 100),
        ]);
        const flaky = await ctx.step(
          'flaky',
          () => {
            calls++;
            if (calls < 3) throw new Error('try again');
            return 'ok';
          },
          { retry: { attempts: 5, initialDelay: 10 } },
        );
        const d = await ctx.child('kid', child, { n: b });
        const approval = await ctx.waitForInput('approve', {
          schema: z.object({ ok: z.boolean() }),
        });
        await ctx.sleep('nap', '1h');
        return { a, b, c, d, flaky, approval, t: ctx.now() };
      },
    });
    const store = new MemoryStore();
    const engine = await createEngine({ store, workflows: [parent, child], clock });
    const handle = await engine.start(parent, { n: 1 });
    for (let i = 0; i < 10 && (await handle.status()) !== 'paused'; i++) await clock.advance(100);
    expect(await handle.status()).toBe('paused');
    const run = await handle.run();
    expect(run.pausedTaskId).toBe('approve');
    expect(engine.activeRuns).toBe(0);
    await expect(engine.resumeTask(handle.id, 'approve', { ok: 'yes' })).rejects.toMatchObject({
      code: 'INVALID_RESUME_INPUT',
    });
    expect(await handle.status()).toBe('paused');
    await engine.resumeTask(handle.id, 'approve', { ok: true });
    await expect(engine.resumeTask(handle.id, 'approve', { ok: true })).rejects.toMatchObject({
      code: 'NOT_WAITING',
    });
    await clock.advance(3_600_000);
    const result = await handle.result();
    expect(result).toMatchObject({
      a: 2,
      b: 20,
      c: 200,
      d: 40,
      flaky: 'ok',
      approval: { ok: true },
    });
    const tasks = await engine.tasks(handle.id);
    expect(tasks.map((t) => t.taskId)).toEqual([
      'a',
      'b',
      'c',
      'flaky',
      'kid',
      'approve',
      'nap',
      '$now',
    ]);
    expect(tasks[1]!.group).toBe(tasks[2]!.group);
    expect(tasks[3]!.attempts).toHaveLength(3);
    expect((await store.verify()).ok).toBe(true);
    await engine.close();
    await store.close();
  });
});
