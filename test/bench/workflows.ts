import { workflow } from '@cairn/core';
import { z } from 'zod';
import { PAYLOAD } from './harness.js';

/** W1, W2: ten sequential steps, each returning about 1 KB. */
export const seq10 = workflow('bench-seq10', {
  input: z.object({ i: z.number() }),
  async run(ctx, input) {
    for (let s = 0; s < 10; s++) await ctx.step(`s${s}`, () => ({ ...PAYLOAD, w: input.i, s }));
    return input.i;
  },
});

/** W3, W4: two steps, a wait for input, a third step. */
export const approval = workflow('bench-approval', {
  input: z.object({ i: z.number() }),
  async run(ctx, input) {
    await ctx.step('a', () => ({ ...PAYLOAD, i: input.i }));
    await ctx.step('b', () => ({ ...PAYLOAD, i: input.i }));
    const decision = await ctx.waitForInput('approve', {
      schema: z.object({ ok: z.boolean(), by: z.string() }),
    });
    await ctx.step('c', () => ({ ...PAYLOAD, ok: decision.ok }));
    return decision.ok;
  },
});

/** W5: a step that blocks until the process that started the run is gone. */
export const blocking = { forever: true };
export const recoverable = workflow('bench-recover', {
  input: z.object({ i: z.number() }),
  async run(ctx, input) {
    await ctx.step('first', () => ({ i: input.i }));
    await ctx.step('slow', () =>
      blocking.forever ? new Promise<never>(() => undefined) : { done: true },
    );
    await ctx.step('last', () => ({ i: input.i }));
    return input.i;
  },
});

export const benchWorkflows = [seq10, approval, recoverable];
