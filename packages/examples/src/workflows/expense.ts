import { workflow } from '@cairn/core';
import { z } from 'zod';
import { email, payments } from '../lib/services.js';

export const Expense = z.object({
  id: z.string().min(1),
  employee: z.string().min(1),
  amount: z.number().positive(),
  description: z.string(),
});

/** What the manager sends back: a decision, who made it, and an optional comment. */
export const Approval = z.object({
  approved: z.boolean(),
  by: z.string().min(1),
  comment: z.string().optional(),
});

/**
 * An expense above 500 waits for a manager's approval (up to three days), then is paid.
 * The wait survives restarts: the run is paused on disk, not held in memory.
 */
export const expenseApproval = workflow('expense-approval', {
  version: '1',
  input: Expense,
  output: z.object({
    status: z.enum(['paid', 'rejected']),
    by: z.string(),
    paymentId: z.string().optional(),
  }),
  async run(ctx, expense) {
    const risk = await ctx.step('score-risk', () => ({
      score: expense.amount > 500 ? 0.8 : 0.1,
      needsApproval: expense.amount > 500,
    }));
    ctx.log(`risk score ${risk.score}`);
    let by = 'auto-approval';
    if (risk.needsApproval) {
      const decision = await ctx.waitForInput('manager-approval', {
        schema: Approval,
        timeout: '72h',
        description: `Approve ${expense.amount} for ${expense.employee}: ${expense.description}?`,
      });
      by = decision.by;
      if (!decision.approved) {
        await ctx.step('notify-rejection', (s) =>
          email.send(expense.employee, `Expense ${expense.id} rejected`, {
            idempotencyKey: s.idempotencyKey,
          }),
        );
        return { status: 'rejected' as const, by };
      }
    }
    const { paymentId } = await ctx.step('pay', (s) =>
      payments.send(expense.employee, expense.amount, {
        idempotencyKey: s.idempotencyKey,
        signal: s.signal,
      }),
    );
    await ctx.step('notify-employee', (s) =>
      email.send(expense.employee, `Expense ${expense.id} paid`, {
        idempotencyKey: s.idempotencyKey,
      }),
    );
    return { status: 'paid' as const, by, paymentId };
  },
});
