/**
 * Runs every example workflow on the store at argv[2] (durability 'strict'), until it is
 * killed. Recovery happens inside `createEngine`; then every run of the plan at argv[3] (a
 * JSON list of `{ id, workflow, input }`) that does not exist yet is started, with its id,
 * so the first process starts the batch and the next ones only what a kill cut short.
 *
 * Prints `ready` (engine open, interrupted runs recovered), `planned` (every run of the plan
 * exists), a progress line per finished task and run, and `all-done` once every planned run
 * has ended. Reads commands on stdin: `resume <runId> <taskId> <json>` answers with
 * `resume-ok <runId> <taskId> <resumed|kept>` or `resume-err <runId> <taskId> <code>`.
 * With `--exit-when-done` it closes the engine after `all-done` and exits with 0.
 *
 * argv: <storeDir> <planFile> <concurrency> [--exit-when-done]
 */
import { readFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { createEngine, isCairnError, LevelStore } from '@cairn/core';
import { allWorkflows } from '@cairn/examples/workflows';
import { exitWithParent } from './guard.js';

interface PlannedRun {
  readonly id: string;
  readonly workflow: string;
  readonly input: unknown;
}

exitWithParent();
// Read from the start: a command sent while the engine opens is kept until it is handled.
const commandLines = createInterface({ input: process.stdin })[Symbol.asyncIterator]();
const [path, planFile, concurrencyArg, ...flags] = process.argv.slice(2);
if (path === undefined || planFile === undefined) {
  throw new Error('usage: example-engine <storeDir> <planFile> <concurrency> [--exit-when-done]');
}
const plan = JSON.parse(readFileSync(planFile, 'utf8')) as PlannedRun[];
function say(line: string): void {
  process.stdout.write(line + '\n');
}

const engine = await createEngine({
  store: new LevelStore({ path, durability: 'strict' }),
  workflows: allWorkflows,
  concurrency: Number(concurrencyArg ?? 4),
  // Every restart of this test counts as a recovery; the limit is not what is tested here.
  maxRecoveries: 1000,
});
engine.on('task:completed', (e) => say(`task ${e.runId} ${e.taskId} ${e.kind}`));
engine.on('run:completed', (e) => say(`run-completed ${e.runId} ${e.workflow}`));
engine.on('run:failed', (e) => say(`run-failed ${e.runId} ${e.workflow} ${e.error.code ?? ''}`));
engine.on('problem', (e) => say(`problem ${e.runId} ${e.error.code}`));
say('ready');

for (const run of plan) await engine.start(run.workflow, run.input, { id: run.id });
say('planned');

const finished = Promise.all(
  plan.map(async (run) => {
    try {
      await engine.handle(run.id).result();
      say(`done ${run.id}`);
    } catch (error) {
      say(`done ${run.id} ${isCairnError(error) ? error.code : 'ERROR'}`);
    }
  }),
);

const commands = (async () => {
  for (let next = await commandLines.next(); !next.done; next = await commandLines.next()) {
    const line = next.value;
    const [word, runId, taskId, ...rest] = line.split(' ');
    if (word !== 'resume' || runId === undefined || taskId === undefined) continue;
    try {
      const result = await engine.resumeTask(runId, taskId, JSON.parse(rest.join(' ')), {
        by: 'test-parent',
      });
      say(`resume-ok ${runId} ${taskId} ${result.status}`);
    } catch (error) {
      say(`resume-err ${runId} ${taskId} ${isCairnError(error) ? error.code : String(error)}`);
    }
  }
})();

await finished;
say('all-done');
if (flags.includes('--exit-when-done')) {
  await engine.close();
  await engine.store.close();
  process.exit(0);
}
await commands;
