/** Example: two approvals asked for in parallel, resumed one at a time. */
import { bold, dim, green, heading, say, yellow } from './lib/print.js';
import { closeEngine, openEngine } from './lib/engine.js';
import { contractReview } from './workflows/index.js';

const engine = await openEngine();
heading('Contract review: finance and legal approve in parallel');
const handle = await engine.start(contractReview, { contract: 'ACME-2031', value: 48_000 });
const paused = (): Promise<void> =>
  new Promise((resolve) => {
    const off = engine.on('run:paused', (e) => {
      if (e.runId === handle.id) {
        off();
        resolve();
      }
    });
  });
await paused();
let run = await handle.run();
say(`status=${yellow(run.status)} pausedTaskId=${bold(String(run.pausedTaskId))}`);
for (const w of (await engine.listWaiting({ runId: handle.id })).items)
  say(dim(`  waiting: ${w.taskId} — ${w.description}`));

say(`legal approves ...`);
await engine.resumeTask(handle.id, 'legal-approval', { approved: true, by: 'lee (legal)' });
await new Promise((resolve) => setTimeout(resolve, 50));
run = await handle.run();
say(
  `status=${yellow(run.status)} pausedTaskId=${bold(String(run.pausedTaskId))} (still waiting on finance)`,
);

say(`finance approves ...`);
await engine.resumeTask(handle.id, 'finance-approval', { approved: true, by: 'fran (finance)' });
say(`${green('completed')} ${JSON.stringify(await handle.result())}`);
await closeEngine(engine);
