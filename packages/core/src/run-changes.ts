/**
 * State changes of a run that is not executing in memory, as plain records: used by the
 * engine (cancel, operator pause, a run failed by recovery) and by the offline operations
 * (tools without workflow code). The caller writes them in one checkpoint.
 */
import { CairnError, type ErrorInfo, type Run, type Task } from '@cairn/store';
import { toErrorInfo } from './errors.js';
import { elapsed } from './execution-support.js';
import { transition } from './status.js';

const PENDING = new Set(['running', 'waiting', 'sleeping']);

export interface EndedRun {
  readonly run: Run;
  /** The tasks that were pending, now cancelled. */
  readonly tasks: Task[];
  /** Child runs that were still running: to be cancelled once this run is written. */
  readonly children: string[];
}

/** The run ends `status`, and every task still pending ends cancelled. */
export function endRun(
  run: Run,
  tasks: readonly Task[],
  status: 'cancelled' | 'failed',
  error: ErrorInfo,
  now: number,
  patch: Partial<Pick<Run, 'recoveries'>> = {},
): EndedRun {
  const pending = tasks.filter((t) => PENDING.has(t.status));
  return {
    run: transition(run, status, now, { error, ...patch }),
    tasks: pending.map((t) => ({
      ...t,
      status: 'cancelled' as const,
      endedAt: now,
      durationMs: elapsed(t.startedAt, now),
    })),
    children: pending.flatMap((t) => (t.kind === 'child' && t.childRunId ? [t.childRunId] : [])),
  };
}

/** `endRun` for a cancellation, with the `CANCELLED` error. */
export function cancelRunRecords(run: Run, tasks: readonly Task[], now: number): EndedRun {
  const error = new CairnError('CANCELLED', `Run ${run.id} was cancelled`);
  return endRun(run, tasks, 'cancelled', toErrorInfo(error, 'CANCELLED'), now);
}

/**
 * An operator pause of a run not in memory: a paused run is marked so that answering its
 * waits does not continue it; any other is paused at its first pending task.
 */
export function operatorPaused(run: Run, tasks: readonly Task[], now: number): Run {
  if (run.status === 'paused') return { ...run, pauseRequested: true, updatedAt: now };
  const next = tasks.find((t) => PENDING.has(t.status));
  return transition(run, 'paused', now, {
    pausedTaskId: next?.taskId ?? null,
    pauseRequested: true,
  });
}
