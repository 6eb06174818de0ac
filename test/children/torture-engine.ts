/**
 * The engine the torture test (test/torture.test.ts) kills, and the power-cut and log-damage
 * tests (test/powercut.test.ts, test/log-damage.test.ts) with `CAIRN_TORTURE_WORKLOAD=chain`
 * (the workflows of test/helpers/chain-workload.ts instead of the torture ones; each step's
 * `task` line then ends with the output it was completed with). Opens the store at argv[2]
 * (LevelStore, in the durability `CAIRN_TORTURE_DURABILITY` names: 'strict', the default, or
 * 'process', where a batch is acknowledged once the process log has it and reaches LevelDB
 * behind; anything else is refused with exit code 2); recovery happens inside `createEngine`.
 * Then starts, with their ids, the first `upto` runs of the plan at argv[3] (those that exist
 * already are left alone), so each life adds a few runs to the work a kill cut short.
 *
 * Prints one line per fact the driver checks afterwards, each written only once the engine
 * acknowledged it (the promise resolved, the event fired after its checkpoint):
 *   ready                                 engine open, interrupted runs recovered
 *   started <runId>                       start() resolved: the run is stored
 *   planned                               every run up to `upto` is started
 *   task <runId> <taskId> <kind> [json]   task:completed (json: the step's output, chain only)
 *   timed-out <runId> <taskId>            task:timed-out
 *   run-failed <runId> <code>             run:failed
 *   problem <runId> <code>                problem
 *   resume-ok <runId> <taskId> <status>   resumeTask resolved (resumed | kept)
 *   resume-err <runId> <taskId> <code>    resumeTask rejected
 *   all-done                              (with --final) every started run has ended
 *
 * Reads `resume <runId> <taskId> <json>` lines on stdin. With `--final` it closes the
 * engine once every run of the plan has ended and exits with 0.
 *
 * argv: <storeDir> <planFile> <upto> <concurrency> [--final]
 * env:  CAIRN_TORTURE_DURABILITY ('strict' | 'process', default 'strict'),
 *       CAIRN_TORTURE_WORKLOAD ('torture' | 'chain', default 'torture'),
 *       CAIRN_TORTURE_JOURNAL (the step journal), CAIRN_TORTURE_PACE, CAIRN_FAULTS
 */
import { readFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { createEngine, isCairnError, LevelStore } from '@cairn/core';
import type { Durability } from '@cairn/store';
import { chainWorkload } from '../helpers/chain-workload.js';
import { tortureWorkflows, type PlannedRun } from '../helpers/torture-workflows.js';
import { exitWithParent } from './guard.js';

const [path, planFile, uptoArg, concurrencyArg, ...flags] = process.argv.slice(2);
if (path === undefined || planFile === undefined) {
  throw new Error('usage: torture-engine <storeDir> <planFile> <upto> <concurrency> [--final]');
}
const durabilityArg = process.env.CAIRN_TORTURE_DURABILITY ?? 'strict';
if (durabilityArg !== 'strict' && durabilityArg !== 'process') {
  process.stderr.write(
    `torture-engine: CAIRN_TORTURE_DURABILITY must be 'strict' or 'process', not ${JSON.stringify(durabilityArg)}\n`,
  );
  process.exit(2);
}
const durability: Durability = durabilityArg;
const final = flags.includes('--final');
exitWithParent(final ? 600_000 : 120_000);
const plan = (JSON.parse(readFileSync(planFile, 'utf8')) as PlannedRun[]).slice(
  0,
  Number(uptoArg ?? Infinity),
);

function say(line: string): void {
  process.stdout.write(line + '\n');
}

const code = (error: unknown): string => (isCairnError(error) ? error.code : String(error));

const workloadOptions = {
  ...(process.env.CAIRN_TORTURE_JOURNAL ? { journal: process.env.CAIRN_TORTURE_JOURNAL } : {}),
  pace: Number(process.env.CAIRN_TORTURE_PACE ?? 1),
};
const chain =
  process.env.CAIRN_TORTURE_WORKLOAD === 'chain' ? chainWorkload(workloadOptions) : null;
/** The output a completed step is acknowledged with, as the end of its `task` line. */
const ackedOutput = (runId: string, taskId: string): string => {
  const output = chain?.outputOf(runId, taskId);
  return output === undefined ? '' : ` ${JSON.stringify(output)}`;
};

const engine = await createEngine({
  store: new LevelStore({ path, durability }),
  workflows: chain?.workflows ?? tortureWorkflows(workloadOptions),
  concurrency: Number(concurrencyArg ?? 3),
  // Every kill counts as a recovery of the runs it interrupted; the limit is not tested here.
  maxRecoveries: 1_000_000,
  on: {
    'task:completed': (e) =>
      say(`task ${e.runId} ${e.taskId} ${e.kind}${ackedOutput(e.runId, e.taskId)}`),
    'task:timed-out': (e) => say(`timed-out ${e.runId} ${e.taskId}`),
    'run:failed': (e) => say(`run-failed ${e.runId} ${e.error.code ?? '-'}`),
    problem: (e) => say(`problem ${e.runId} ${e.error.code}`),
  },
});
say('ready');

const commands = (async () => {
  for await (const line of createInterface({ input: process.stdin })) {
    const [word, runId, taskId, ...rest] = line.split(' ');
    if (word !== 'resume' || runId === undefined || taskId === undefined) continue;
    // Not awaited: resumes of different runs go on at once, as they would from a UI.
    engine.resumeTask(runId, taskId, JSON.parse(rest.join(' ')), { by: 'driver' }).then(
      (result) => say(`resume-ok ${runId} ${taskId} ${result.status}`),
      (error: unknown) => say(`resume-err ${runId} ${taskId} ${code(error)}`),
    );
  }
})();

for (const run of plan) {
  await engine.start(run.workflow, run.input, { id: run.id });
  say(`started ${run.id}`);
}
say('planned');

if (final) {
  await Promise.all(
    plan.map((run) =>
      engine
        .handle(run.id)
        .result()
        .catch(() => undefined),
    ),
  );
  say('all-done');
  await engine.close();
  await engine.store.close();
  process.exit(0);
}
await commands;
