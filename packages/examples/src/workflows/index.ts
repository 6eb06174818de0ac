import type { AnyWorkflow } from '@cairn/core';
import { contractReview } from './contract.js';
import { expenseApproval } from './expense.js';
import { reportPipeline } from './llm.js';
import { orderPipeline, shipOrder } from './order.js';

export { contractReview } from './contract.js';
export { Approval, Expense, expenseApproval } from './expense.js';
export { reportPipeline } from './llm.js';
export { orderPipeline, shipOrder } from './order.js';

/** Every example workflow: an engine that runs the examples registers them all. */
export const allWorkflows: readonly AnyWorkflow[] = [
  expenseApproval,
  contractReview,
  orderPipeline,
  shipOrder,
  reportPipeline,
];
