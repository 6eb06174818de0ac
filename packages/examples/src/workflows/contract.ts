import { workflow } from '@cairn/core';
import { z } from 'zod';
import { email } from '../lib/services.js';

const Review = z.object({ approved: z.boolean(), by: z.string().min(1) });

/**
 * A contract needs two approvals, asked for at the same time: finance and legal. Each is
 * resumed on its own; the run carries on once both have answered.
 */
export const contractReview = workflow('contract-review', {
  version: '1',
  input: z.object({ contract: z.string().min(1), value: z.number().positive() }),
  async run(ctx, input) {
    await ctx.step('prepare', () => ({ pages: 12 }));
    const [finance, legal] = await Promise.all([
      ctx.waitForInput('finance-approval', {
        schema: Review,
        description: `Finance: approve ${input.contract} worth ${input.value}?`,
      }),
      ctx.waitForInput('legal-approval', {
        schema: Review,
        description: `Legal: approve the terms of ${input.contract}?`,
      }),
    ]);
    const approved = finance.approved && legal.approved;
    await ctx.step('notify', (s) =>
      email.send('sales@example.com', `${input.contract}: ${approved ? 'signed' : 'declined'}`, {
        idempotencyKey: s.idempotencyKey,
      }),
    );
    return { approved, approvers: [finance.by, legal.by] };
  },
});
