/**
 * An engine process of the human-in-the-loop tests, on the LevelStore at argv[3]:
 *
 * - `wait <dir> <runId>`: starts `expense` with that id, prints `paused <runId> <taskId>`
 *   once the run is paused at its wait, then closes the engine and store and exits with 0.
 * - `wait-hold <dir> <runId>`: the same, but stays up after `paused` (to be killed).
 * - `hang <dir> <runId>`: starts `expense`; step `score` prints `in-step <runId>` once its
 *   "started" marker is in the store, then hangs (to be killed).
 * - `resume <dir>`: recovers, lists the waiting tasks (prints `waiting <json>`), resumes
 *   the first one as approved, prints `done <json output>`, closes and exits with 0.
 * - `pause <dir> <runId>`: starts `batch`; while step `a` runs, asks for an operator pause,
 *   then lets `a` finish; prints `paused <runId> <taskId>` once paused, closes and exits.
 * - `pause-hold <dir> <runId>`: asks for the pause while `a` runs, prints `pause-asked
 *   <runId>` once that is in the store, and keeps `a` running (to be killed).
 */
import { createEngine, LevelStore, type Engine } from '@cairn/core';
import { batch, expense, hitlWorkflows, hooks } from '../helpers/hitl-workflows.js';
import { exitWithParent } from './guard.js';

exitWithParent();
const [mode, path, runId] = process.argv.slice(2);
if (mode === undefined || path === undefined) {
  throw new Error('usage: hitl-engine <mode> <dir> [runId]');
}

function say(line: string): void {
  process.stdout.write(line + '\n');
}

const store = new LevelStore({ path });

async function finish(engine: Engine): Promise<never> {
  await engine.close();
  await store.close();
  say('closed');
  process.exit(0);
}

function paused(engine: Engine, id: string): Promise<string | null> {
  return new Promise((resolve) => {
    engine.on('run:paused', (event) => {
      if (event.runId === id) resolve(event.pausedTaskId);
    });
  });
}

function hangForever(): Promise<never> {
  return new Promise<never>(() => undefined);
}

if (mode === 'hang') {
  hooks.inScore = async (id) => {
    for (;;) {
      const task = await store.getTask(id, 'score');
      if (task?.status === 'running') break;
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
    say(`in-step ${id}`);
    await hangForever();
  };
}

let releaseA: () => void = () => undefined;
if (mode === 'pause' || mode === 'pause-hold') {
  hooks.gateA = new Promise<void>((resolve) => (releaseA = resolve));
}

const engine = await createEngine({ store, workflows: hitlWorkflows });

switch (mode) {
  case 'wait':
  case 'wait-hold': {
    const pausedAt = paused(engine, runId!);
    await engine.start(expense, { id: 'e-1', amount: 250 }, { id: runId! });
    const taskId = await pausedAt;
    say(`paused ${runId} ${taskId}`);
    if (mode === 'wait') await finish(engine);
    break;
  }
  case 'hang':
    await engine.start(expense, { id: 'e-2', amount: 250 }, { id: runId! });
    break;
  case 'resume': {
    const waiting = await engine.listWaiting();
    say(`waiting ${JSON.stringify(waiting.items)}`);
    const first = waiting.items[0]!;
    await engine.resumeTask(
      first.runId,
      first.taskId,
      { approved: true, by: 'child' },
      { by: 'resume-child' },
    );
    const output = await engine.handle(first.runId).result();
    say(`done ${JSON.stringify(output)}`);
    await finish(engine);
    break;
  }
  case 'pause':
  case 'pause-hold': {
    const started = new Promise<void>((resolve) => {
      hooks.onA = () => resolve();
    });
    await engine.start(batch, { n: 4 }, { id: runId! });
    await started;
    const pausing = engine.pause(runId!);
    for (;;) {
      if ((await store.getRun(runId!))?.pauseRequested) break;
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
    if (mode === 'pause-hold') {
      say(`pause-asked ${runId}`);
      break;
    }
    releaseA();
    const run = await pausing;
    say(`paused ${runId} ${run.pausedTaskId}`);
    await finish(engine);
    break;
  }
  default:
    throw new Error(`unknown mode ${mode}`);
}
