/**
 * The main demo: an expense approval that waits for a manager across process restarts.
 *
 *   1. a process starts the run; it pauses at the manager's approval; the process exits
 *   2. a new process lists what is waiting, sends an invalid approval (refused, nothing
 *      changes), then a valid one; the run carries on and completes
 *
 * Everything is kept in the embedded store (./.cairn by default, or CAIRN_STORE_DIR).
 */
import { fileURLToPath } from 'node:url';
import { createEngine, isCairnError, LevelStore } from '@cairn/core';
import { bold, dim, green, heading, red, runPhase, say, timeline, yellow } from './lib/print.js';
import { allWorkflows, expenseApproval } from './workflows/index.js';

const self = fileURLToPath(import.meta.url);

async function openEngine() {
  const store = new LevelStore();
  const engine = await createEngine({ store, workflows: allWorkflows });
  return { store, engine };
}

/** Process 1: submit an expense; the run pauses for approval; the process ends. */
async function submit(expenseId: string): Promise<void> {
  const { store, engine } = await openEngine();
  heading(`Process 1 (pid ${process.pid}): submit expense ${expenseId}`);
  say(dim(`store: ${store.location}`));
  const paused = new Promise<string | null>((resolve) =>
    engine.on('run:paused', (e) => resolve(e.pausedTaskId)),
  );
  const handle = await engine.start(
    expenseApproval,
    { id: expenseId, employee: 'sam@example.com', amount: 1250, description: 'Conference travel' },
    { id: `expense-${expenseId}`, tags: ['demo'] },
  );
  say(`started run ${bold(handle.id)}`);
  const taskId = await paused;
  const run = await handle.run();
  say(`status=${yellow(run.status)} isPaused=${run.isPaused} pausedTaskId=${bold(String(taskId))}`);
  say(timeline(await engine.tasks(handle.id)));
  await engine.close();
  await store.close();
  say(dim('process 1 exits; the run waits on disk, not in memory'));
}

/** Process 2: list what waits, refuse a bad approval, approve, watch the run complete. */
async function approve(expenseId: string): Promise<void> {
  const { store, engine } = await openEngine();
  heading(`Process 2 (pid ${process.pid}): the manager's inbox`);
  const runId = `expense-${expenseId}`;
  const waiting = await engine.listWaiting({ workflow: 'expense-approval' });
  for (const w of waiting.items) {
    say(
      `${w.runId === runId ? '→' : ' '} run ${w.runId}  task ${bold(w.taskId)}  ${dim(w.description ?? '')}`,
    );
  }
  const mine = waiting.items.find((w) => w.runId === runId);
  if (!mine) throw new Error(`run ${runId} is not waiting`);
  say(
    dim(
      `form fields (JSON schema): ${Object.keys((mine.schema as { properties?: object }).properties ?? {}).join(', ')}`,
    ),
  );

  say();
  say(`send ${red("{ approved: 'yes' }")} ...`);
  try {
    await engine.resumeTask(runId, mine.taskId, { approved: 'yes' });
  } catch (error) {
    if (!isCairnError(error, 'INVALID_RESUME_INPUT')) throw error;
    const issues = (error.details?.issues ?? []) as { path: string[]; message: string }[];
    say(`refused: ${red(error.code)}`);
    for (const issue of issues) say(dim(`  ${issue.path.join('.') || '(root)'}: ${issue.message}`));
  }
  const still = await engine.get(runId);
  say(`run is still ${yellow(still.status)}, waiting on ${still.pausedTaskId}`);

  say();
  say(`send ${green("{ approved: true, by: 'maria@example.com' }")} ...`);
  await engine.resumeTask(
    runId,
    mine.taskId,
    { approved: true, by: 'maria@example.com', comment: 'OK' },
    { by: 'maria' },
  );
  const output = await engine.handle(runId).result();
  const run = await engine.get(runId);
  say(`status=${green(run.status)} output=${JSON.stringify(output)}`);
  say(timeline(await engine.tasks(runId)));
  await engine.close();
  await store.close();
}

async function main(): Promise<void> {
  const [phase, expenseId] = process.argv.slice(2);
  if (phase === 'submit') return submit(expenseId!);
  if (phase === 'approve') return approve(expenseId!);
  say(bold('Cairn demo: an expense approval that outlives its process'));
  const id = `${Date.now().toString(36)}`;
  const first = await runPhase(self, ['submit', id]);
  if (first.code !== 0) throw new Error(`process 1 failed (${first.code ?? first.signal})`);
  const second = await runPhase(self, ['approve', id]);
  if (second.code !== 0) throw new Error(`process 2 failed (${second.code ?? second.signal})`);
  heading('Done');
  say('The run paused in one process and completed in another: nothing was held in memory,');
  say('and the invalid approval changed nothing.');
  say();
  say(
    `Look at the store:   ${bold('npx -y pnpm@10 -s cairn runs --store packages/examples/.cairn')}`,
  );
  say(`More examples:       ${bold('npx -y pnpm@10 --filter @cairn/examples run <name>')}`);
  say(dim('                     (order, llm, contract, crash-recovery)'));
}

main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});
