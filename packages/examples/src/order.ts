/** Example: an order pipeline with parallel steps, a retried charge and a child workflow. */
import { bold, dim, green, heading, red, say, timeline } from './lib/print.js';
import { closeEngine, openEngine } from './lib/engine.js';
import { orderPipeline } from './workflows/index.js';

const engine = await openEngine();
engine.on('task:failed', (e) => {
  if (e.willRetry) say(red(`  ${e.taskId} failed: ${e.error.message}; retrying`));
});
engine.on('run:started', (e) =>
  say(dim(`  run ${e.runId} started: ${e.workflow}${e.parentRunId ? ' (child)' : ''}`)),
);

heading('Order pipeline');
const handle = await engine.start(orderPipeline, {
  orderId: `o-${Date.now().toString(36)}`,
  customer: 'alex@example.com',
  items: [
    { sku: 'tent-2p', quantity: 1, price: 249 },
    { sku: 'stove', quantity: 2, price: 39.5 },
  ],
});
const result = await handle.result();
say(`${green('completed')} ${JSON.stringify(result)}`);
say(bold('timeline (steps started in one turn share a parallel group):'));
say(timeline(await engine.tasks(handle.id)));
const child = (await engine.tasks(handle.id)).find((t) => t.kind === 'child');
if (child?.childRunId) {
  say(bold(`child run ${child.childRunId}:`));
  say(timeline(await engine.tasks(child.childRunId)));
}
await closeEngine(engine);
