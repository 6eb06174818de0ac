/**
 * Operations on runs from outside: delivering input to waits, resuming a whole run, operator
 * pause and cancellation. Each runs under the run's lock, so operations on one run never
 * interleave.
 */
import {
  CairnError,
  TERMINAL_STATUSES,
  isCairnError,
  assertSerializable,
  checkOptionNames,
  type Run,
} from '@cairn/store';
import type { ResumeOptions, ResumeTaskOptions, ResumeTaskResult } from './engine-types.js';
import {
  checkBy,
  checkId,
  checkKeep,
  notFound,
  refuseUnknownTask,
  runHasEnded,
  typeError,
  waitingIds,
} from './engine-support.js';
import { RESUME_OPTIONS, RESUME_TASK_OPTIONS } from './option-names.js';
import { cancelChildren, type EngineInternals } from './recovery.js';
import { cancelRunRecords, operatorPaused } from './run-changes.js';
import type { RunExecution } from './execution.js';

// --- operating on runs ---------------------------------------------------------------------
/**
 * Delivers input to a waiting task. The payload is validated by the wait's schema
 * (`INVALID_RESUME_INPUT`, nothing changes); a task that is not waiting is `NOT_WAITING`.
 * Input for a wait the run has not reached yet is kept and used when it gets there.
 */
export async function resumeTask(
  engine: EngineInternals,
  runId: string,
  taskId: string,
  data: unknown,
  options: ResumeTaskOptions = {},
): Promise<ResumeTaskResult> {
  engine.assertOpen();
  checkId('runId', runId);
  checkId('taskId', taskId);
  if (typeof options !== 'object' || options === null) throw typeError('options must be an object');
  checkOptionNames('options', options, RESUME_TASK_OPTIONS);
  const by = checkBy(options);
  const keep = checkKeep(options);
  assertSerializable(data, 'data');
  return engine.lock.run(runId, async () => {
    const notWaiting = (): CairnError =>
      new CairnError('NOT_WAITING', `Task "${taskId}" of run ${runId} is not waiting for input`, {
        details: { runId, taskId },
      });
    /** Answers the wait once the run has gone as far as it can (its replay, its writes). */
    const resumeOnceSettled = async (exec: RunExecution): Promise<ResumeTaskResult> => {
      const unpin = exec.pin();
      try {
        await exec.quiet();
        // A replay that failed: its own error, not "not waiting" (the input was not taken).
        const failed = exec.endTrial();
        if (failed) throw failed;
        if (!exec.isWaiting(taskId)) throw notWaiting();
        await exec.resumeWaits(new Map([[taskId, data]]), by);
      } finally {
        unpin();
      }
      return { status: 'resumed', runId, taskId };
    };
    const exec = engine.active.get(runId) ?? engine.unpark(runId);
    if (exec) {
      if (exec.isWaiting(taskId)) {
        await exec.resumeWaits(new Map([[taskId, data]]), by);
        return { status: 'resumed', runId, taskId };
      }
      const known = exec.tasks.get(taskId);
      if (!known) {
        const refused = refuseUnknownTask(exec.run, taskId, exec.waitingTaskIds(), keep);
        if (refused) throw refused;
        await engine.store.putInbox(runId, taskId, data);
        if (exec.isWaiting(taskId)) {
          // The function reached the wait while the input was written: it answers it now.
          try {
            await exec.resumeWaits(new Map([[taskId, data]]), by, true);
          } catch (error) {
            if (isCairnError(error) && error.code === 'INVALID_RESUME_INPUT')
              await engine.store.takeInbox(runId, taskId);
            throw error;
          }
          return { status: 'resumed', runId, taskId };
        }
        // Taken by the wait when it is reached, or as soon as it is set up.
        exec.keepEarlyInput(taskId, data);
        return { status: 'kept', runId, taskId };
      }
      if (known.kind !== 'wait' || known.status !== 'waiting') throw notWaiting();
      // A wait recorded as waiting that the function has not reached yet (its record is
      // being written, or a recovered run is replaying): answer it once the run settles.
      return resumeOnceSettled(exec);
    }
    // One round of reads (the run, its tasks and its inbox, in parallel) serves both the
    // checks and the replay.
    const [run, history, kept] = await Promise.all([
      engine.store.getRun(runId),
      engine.store.listTasks(runId),
      engine.store.listInbox(runId),
    ]);
    if (!run) throw notFound(runId);
    const task = history.find((t) => t.taskId === taskId);
    if (TERMINAL_STATUSES.has(run.status)) {
      if (task) throw notWaiting();
      throw new CairnError('NOT_FOUND', `Run ${runId} has ended and has no task "${taskId}"`, {
        details: { runId, taskId },
      });
    }
    if (!task) {
      const refused = refuseUnknownTask(run, taskId, waitingIds(history), keep);
      if (refused) throw refused;
      await engine.store.putInbox(runId, taskId, data);
      return { status: 'kept', runId, taskId };
    }
    if (task.kind !== 'wait' || task.status !== 'waiting') throw notWaiting();
    const def = engine.lookup(run.workflow, run.version);
    if (!def) throw engine.versionNotRegistered(run);
    return resumeOnceSettled(await engine.load(run, def, history, kept, true));
  });
}

/**
 * Resumes the whole run: ends an operator pause, and with `data` resumes every waiting
 * task, all or nothing: one payload for all, or an object keyed by task id.
 */
export async function resumeRun(
  engine: EngineInternals,
  runId: string,
  data?: unknown,
  options: ResumeOptions = {},
): Promise<Run> {
  engine.assertOpen();
  checkId('runId', runId);
  if (typeof options !== 'object' || options === null) throw typeError('options must be an object');
  checkOptionNames('options', options, RESUME_OPTIONS);
  const by = checkBy(options);
  if (data !== undefined) assertSerializable(data, 'data');
  return engine.lock.run(runId, async () => {
    const run = await engine.store.getRun(runId);
    if (!run) throw notFound(runId);
    if (TERMINAL_STATUSES.has(run.status)) {
      throw runHasEnded(run, '; there is nothing to resume');
    }
    let exec = engine.active.get(runId) ?? engine.unpark(runId);
    let loaded = false;
    if (!exec) {
      const page = await engine.store.listWaiting({ runId, limit: 1000 });
      // A damaged waiting task: its error (naming the key), not "the run is not paused".
      if (page.corrupt[0] !== undefined) throw page.corrupt[0].error;
      const waiting = page.items;
      if (!run.pauseRequested && (data === undefined || waiting.length === 0)) {
        throw notPaused(engine, run, waiting.length > 0);
      }
      const def = engine.lookup(run.workflow, run.version);
      if (!def) throw engine.versionNotRegistered(run);
      exec = await engine.load(run, def, undefined, undefined, true);
      loaded = true;
    }
    const unpin = exec.pin();
    try {
      // A run just loaded first replays up to where it stopped. A run already in memory is
      // taken as it is: waiting for its steps in flight would hold the run's lock (and so
      // pause and cancel) for as long as they take.
      if (loaded) await exec.quiet();
      const failed = exec.endTrial();
      if (failed) throw failed;
      const waiting = exec.waitingTaskIds();
      const operator = exec.run.pauseRequested;
      if (data !== undefined && waiting.length > 0) {
        const payloads = new Map<string, unknown>();
        const keyed =
          typeof data === 'object' &&
          data !== null &&
          !Array.isArray(data) &&
          Object.keys(data).length > 0 &&
          Object.keys(data).every((k) => waiting.includes(k));
        for (const taskId of waiting) {
          if (keyed) {
            if (Object.hasOwn(data, taskId))
              payloads.set(taskId, (data as Record<string, unknown>)[taskId]);
          } else {
            payloads.set(taskId, data);
          }
        }
        // Waits first (all validated before anything changes): if the store refuses a payload
        // (too large), the pause stays too.
        await exec.resumeWaits(payloads, by);
        if (operator) {
          await exec.clearPause();
          engine.events.emit('run:resumed', { runId, workflow: run.workflow });
        }
      } else if (operator) {
        await exec.clearPause();
        engine.events.emit('run:resumed', { runId, workflow: run.workflow });
      } else {
        throw notPaused(engine, exec.run, waiting.length > 0);
      }
      engine.timers.release(runId);
    } finally {
      unpin();
    }
    return exec.run;
  });
}

export function notPaused(engine: EngineInternals, run: Run, waiting: boolean): CairnError {
  return waiting
    ? new CairnError(
        'INVALID_RESUME_INPUT',
        `Run ${run.id} waits for input: pass the data to resume it with`,
        {
          details: { runId: run.id, issues: [] },
        },
      )
    : new CairnError('NOT_PAUSED', `Run ${run.id} is ${run.status} and not paused`, {
        details: { runId: run.id, status: run.status },
      });
}

/**
 * Operator pause: no new task starts, in-flight steps finish and are checkpointed, then
 * the run is `paused` (with `pausedTaskId`) and stays so across restarts until resumed.
 */
export async function pauseRun(engine: EngineInternals, runId: string): Promise<Run> {
  engine.assertOpen();
  checkId('runId', runId);
  const inMemory = await engine.lock.run(
    runId,
    async (): Promise<{ paused: Promise<void> } | null> => {
      const run = await engine.store.getRun(runId);
      if (!run) throw notFound(runId);
      if (TERMINAL_STATUSES.has(run.status)) {
        throw runHasEnded(run, ' and cannot be paused');
      }
      const exec = engine.active.get(runId);
      if (exec) {
        const paused = new Promise<void>((resolve) => engine.onPaused(runId, resolve));
        await exec.requestPause();
        // Wrapped: returning the promise itself would wait for it inside the lock.
        return { paused };
      }
      if (run.pauseRequested && run.status === 'paused') return null;
      engine.forget(runId);
      const tasks = await engine.store.listTasks(runId);
      const paused = operatorPaused(run, tasks, engine.clock.now());
      await engine.port.write({ runs: [paused] }, { durable: true });
      engine.events.emit('run:paused', {
        runId,
        workflow: run.workflow,
        pausedTaskId: paused.pausedTaskId,
        reason: 'operator',
      });
      return null;
    },
  );
  if (inMemory) {
    await inMemory.paused;
    // The engine closed meanwhile: the pause may not have been written.
    engine.assertOpen();
  }
  const run = await engine.store.getRun(runId);
  if (!run) throw notFound(runId);
  return run;
}

export async function cancelRun(engine: EngineInternals, runId: string): Promise<Run> {
  const children: string[] = [];
  const result = await engine.lock.run(runId, async () => {
    const run = await engine.store.getRun(runId);
    if (!run) throw notFound(runId);
    if (run.status === 'cancelled') return run;
    if (TERMINAL_STATUSES.has(run.status)) {
      throw runHasEnded(run, ' and cannot be cancelled');
    }
    const exec = engine.active.get(runId);
    if (exec) {
      await exec.cancel();
      return exec.run;
    }
    engine.forget(runId);
    const ended = cancelRunRecords(run, await engine.store.listTasks(runId), engine.clock.now());
    children.push(...ended.children);
    await engine.port.write({ runs: [ended.run], tasks: ended.tasks }, { durable: true });
    engine.events.emit('run:cancelled', { runId, workflow: run.workflow });
    engine.timers.release(runId);
    engine.notifyFinished(ended.run);
    return ended.run;
  });
  await cancelChildren(engine, children, (child) => cancelRun(engine, child));
  return result;
}
