import { z } from 'zod';
import { workflow } from '@cairn/core';

/**
 * Workflows of the human-in-the-loop process tests, shared by the child processes
 * (test/children/hitl-engine.ts) and the test process that takes over their store.
 */

export const Decision = z.object({ approved: z.boolean(), by: z.string().min(1) });

/** What a process lets its steps do; the defaults are what a plain process does. */
export const hooks = {
  /** Runs inside step `score` before it returns (a child hangs there to be killed). */
  inScore: async (_runId: string): Promise<void> => undefined,
  /** Step `a` of `batch` waits for this (a child opens it once the pause is asked for). */
  gateA: Promise.resolve(),
  /** Step `a` of `batch` calls this when it starts. */
  onA: (_runId: string): void => undefined,
};

export const expense = workflow('expense', {
  input: z.object({ id: z.string(), amount: z.number().positive() }),
  async run(ctx, input) {
    const risk = await ctx.step('score', async (step) => {
      await hooks.inScore(ctx.runId);
      return { high: input.amount > 100, attempt: step.attempt, pid: process.pid };
    });
    const decision = await ctx.waitForInput('approval', { schema: Decision, timeout: '48h' });
    if (!decision.approved) return { status: 'rejected', by: decision.by, risk };
    const paid = await ctx.step('pay', (step) => ({
      key: step.idempotencyKey,
      pid: process.pid,
    }));
    return { status: 'paid', by: decision.by, risk, paid };
  },
});

export const batch = workflow('batch', {
  input: z.object({ n: z.number() }),
  async run(ctx, input) {
    const a = await ctx.step('a', async () => {
      hooks.onA(ctx.runId);
      await hooks.gateA;
      return { value: input.n, pid: process.pid };
    });
    const b = await ctx.step('b', () => ({ value: a.value * 10, pid: process.pid }));
    const c = await ctx.step('c', () => ({ value: a.value + b.value, pid: process.pid }));
    return { a, b, c };
  },
});

export const hitlWorkflows = [expense, batch];
