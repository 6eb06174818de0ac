/**
 * Recovery and timer dispatch: when the engine starts, every `queued` and `running` run is
 * loaded and replayed from its checkpoints; when a durable timer falls due for a run not in
 * memory, the run is loaded so the timer can fire.
 */
import {
  CairnError,
  TERMINAL_STATUSES,
  type InboxEntry,
  type Page,
  type Run,
  type Store,
  type Task,
  type Timer,
} from '@cairn/store';
import type { StorePort } from '@cairn/store/engine';
import type { Clock } from './clock.js';
import { toErrorInfo } from './errors.js';
import type { Emitter } from './events.js';
import type { RunExecution } from './execution.js';
import { timerIsDue } from './engine-support.js';
import type { KeyedLock } from './lock.js';
import { endRun } from './run-changes.js';
import { transition } from './status.js';
import type { TimerService, TimerVerdict } from './timers.js';
import type { AnyWorkflow } from './workflow.js';

/** What recovery needs from the engine (its private state, handed over by reference). */
export interface EngineInternals {
  readonly store: Store;
  /** The engine's door into the store (its writes and change tracker). */
  readonly port: StorePort;
  readonly clock: Clock;
  readonly events: Emitter;
  readonly lock: KeyedLock;
  readonly active: ReadonlyMap<string, RunExecution>;
  readonly maxRecoveries: number;
  lookup(name: string, version: string): AnyWorkflow | undefined;
  versionNotRegistered(run: Run): CairnError;
  launch(
    run: Run,
    def: AnyWorkflow,
    history: readonly Task[],
    started: boolean,
    kept?: readonly InboxEntry[],
  ): RunExecution;
  /** `onTrial`: loaded to take input (see `RunExecution`); a replay that fails writes nothing. */
  load(
    run: Run,
    def: AnyWorkflow,
    history?: readonly Task[],
    kept?: readonly InboxEntry[],
    onTrial?: boolean,
  ): Promise<RunExecution>;
  /** The run's parked execution, in memory again, if it is still current (see the engine). */
  unpark(runId: string): RunExecution | undefined;
  /** Drops the run's parked execution, if any (the run is about to change without it). */
  forget(runId: string): void;
  notifyFinished(run: Run, error?: unknown): void;
  cancel(runId: string): Promise<Run>;
  assertOpen(): void;
  /** Calls `fn` once the run is paused (or ends). */
  onPaused(runId: string, fn: () => void): void;
  readonly timers: TimerService;
}

/**
 * Hands a due timer to its run, loading the run if it is not in memory, and resolves once
 * the run has reacted (see `RunExecution.settled`), outside the run's lock: the timer service
 * then lists the next timers with that reaction in them, and a manual clock moves on after it.
 */
export async function dispatchTimer(engine: EngineInternals, timer: Timer): Promise<TimerVerdict> {
  // The run the timer woke: its reaction is waited for once the lock is released.
  let woken = undefined as RunExecution | undefined;
  const verdict = await engine.lock.run(timer.runId, async (): Promise<TimerVerdict> => {
    const exec = engine.active.get(timer.runId) ?? engine.unpark(timer.runId);
    if (exec) {
      woken = exec;
      return (await exec.fireTimer(timer.taskId)) ? 'done' : 'skip';
    }
    let run: Run | undefined;
    let task: Task | undefined;
    try {
      run = await engine.store.getRun(timer.runId);
      if (!run || TERMINAL_STATUSES.has(run.status)) {
        if (!run) staleTimer(engine, timer, 'its run does not exist');
        return 'skip';
      }
      if (run.pauseRequested) return 'skip';
      task = await engine.store.getTask(timer.runId, timer.taskId);
    } catch (error) {
      if (!(error instanceof CairnError)) throw error;
      engine.events.emit('problem', { runId: timer.runId, error });
      return 'skip';
    }
    // Loading the run for a timer its task does not have would find nothing to fire, evict
    // the run, release the timer and load it again, forever.
    if (!timerIsDue(task, engine.clock.now())) {
      staleTimer(engine, timer, 'its task is not sleeping or waiting until then');
      return 'skip';
    }
    const def = engine.lookup(run.workflow, run.version);
    if (!def) {
      engine.events.emit('problem', { runId: run.id, error: engine.versionNotRegistered(run) });
      return 'skip';
    }
    woken = await engine.load(run, def);
    return 'skip';
  });
  await woken?.settled();
  return verdict;
}

/** A timer entry that names no due task: reported and left alone (`verify()` shows it too). */
function staleTimer(engine: EngineInternals, timer: Timer, why: string): void {
  engine.events.emit('problem', {
    runId: timer.runId,
    error: new CairnError(
      'CORRUPT_RECORD',
      `A timer for task "${timer.taskId}" of run ${timer.runId} is not in step with its records: ${why}; it is ignored`,
      { details: { runId: timer.runId, taskId: timer.taskId, at: timer.at } },
    ),
  });
}

export async function recoverAll(engine: EngineInternals): Promise<void> {
  for (const status of ['running', 'queued'] as const) {
    let cursor: string | null = null;
    do {
      const page: Page<Run> = await engine.store.listRuns({ status, limit: 500, cursor });
      for (const bad of page.corrupt) {
        engine.events.emit('problem', {
          runId: bad.key.split('/').pop() ?? bad.key,
          error: bad.error,
        });
      }
      for (const run of page.items) {
        try {
          await recover(engine, run);
        } catch (error) {
          const problem =
            error instanceof CairnError
              ? error
              : new CairnError('CORRUPT_RECORD', `Run ${run.id} could not be recovered`, {
                  cause: error,
                });
          engine.events.emit('problem', { runId: run.id, error: problem });
        }
      }
      cursor = page.cursor;
    } while (cursor !== null);
  }
}

async function recover(engine: EngineInternals, stored: Run): Promise<void> {
  // Children of a run failed here are cancelled once its lock is released.
  const orphans: string[] = [];
  await engine.lock.run(stored.id, async () => {
    if (engine.active.has(stored.id)) return;
    const def = engine.lookup(stored.workflow, stored.version);
    if (!def) throw engine.versionNotRegistered(stored);
    const [tasks, kept] = await Promise.all([
      engine.store.listTasks(stored.id),
      engine.store.listInbox(stored.id),
    ]);
    let run = stored;
    if (run.status === 'queued') {
      run = transition(run, 'running', engine.clock.now());
    } else {
      const interrupted =
        tasks.some((t) => t.kind === 'step' && t.status === 'running') ||
        !tasks.some(
          (t) =>
            t.status === 'waiting' ||
            t.status === 'sleeping' ||
            (t.kind === 'child' && t.status === 'running'),
        );
      if (interrupted) {
        const recoveries = run.recoveries + 1;
        const max = def.maxRecoveries ?? engine.maxRecoveries;
        if (recoveries > max) {
          const now = engine.clock.now();
          const error = new CairnError(
            'MAX_RECOVERIES_EXCEEDED',
            `Run ${run.id} was interrupted ${recoveries} times (the limit is ${max}); it is failed so it cannot crash the process again`,
            { details: { runId: run.id, recoveries, maxRecoveries: max } },
          );
          const ended = endRun(run, tasks, 'failed', toErrorInfo(error, 'RUN_FAILED'), now, {
            recoveries,
          });
          await engine.port.write({ runs: [ended.run], tasks: ended.tasks }, { durable: true });
          engine.events.emit('run:failed', {
            runId: run.id,
            workflow: run.workflow,
            error: ended.run.error!,
          });
          engine.notifyFinished(ended.run);
          orphans.push(...ended.children);
          return;
        }
        run = { ...run, recoveries, updatedAt: engine.clock.now() };
      }
    }
    if (run !== stored) await engine.port.write({ runs: [run] }, { durable: true });
    engine.events.emit('run:recovered', {
      runId: run.id,
      workflow: run.workflow,
      recoveries: run.recoveries,
    });
    // A run that never started (no `startedAt`) starts now; a queued one that had started
    // (resumed offline) goes on.
    engine.launch(run, def, tasks, stored.startedAt === null, kept);
  });
  await cancelChildren(engine, orphans, (child) => engine.cancel(child));
}

/**
 * Cancels the children of a run that ended. A child that cannot be cancelled (it ended
 * meanwhile, or its record is damaged) is reported as a warning; the parent's end stands.
 */
export async function cancelChildren(
  engine: Pick<EngineInternals, 'events'>,
  children: readonly string[],
  cancel: (runId: string) => Promise<unknown>,
): Promise<void> {
  for (const child of children) {
    await cancel(child).catch((cause: unknown) => {
      engine.events.emit('warning', {
        message: `Child run ${child} could not be cancelled`,
        runId: child,
        cause,
      });
    });
  }
}
