/** Argument checks and small rules shared by the engine's parts. */
import { CairnError, IdSchema, closest, type Run, type Task } from '@cairn/store';

export function typeError(message: string): TypeError {
  return Object.assign(new TypeError(message), { code: 'INVALID_ARGUMENT' });
}

export function checkId(name: string, value: unknown): asserts value is string {
  if (typeof value !== 'string') throw typeError(`${name} must be a string`);
  if (!IdSchema.safeParse(value).success) {
    throw new CairnError(
      'INVALID_ARGUMENT',
      `${name} must be 1-200 characters without control characters or half of a surrogate pair`,
    );
  }
}

/** Whether `task` has a timer that is due at `now`: a sleep that has ended, a wait that timed out. */
export function timerIsDue(task: Task | undefined, now: number): boolean {
  if (task?.status === 'sleeping') return (task.wakeAt ?? 0) <= now;
  if (task?.status === 'waiting') {
    return task.timeoutAt !== null && task.timeoutAt !== undefined && task.timeoutAt <= now;
  }
  return false;
}

export function notFound(runId: string): CairnError {
  return new CairnError('NOT_FOUND', `No run with id "${runId}"`, { details: { runId } });
}

/** `INVALID_TRANSITION` for an operation on a run that has ended; `why` follows its status. */
export function runHasEnded(run: Pick<Run, 'id' | 'status'>, why: string): CairnError {
  return new CairnError('INVALID_TRANSITION', `Run ${run.id} is ${run.status}${why}`, {
    details: { runId: run.id, status: run.status },
  });
}

/**
 * Input for a task the run does not have: kept for a wait the run has not reached yet, except
 * on a run paused waiting for input on other tasks, where a misspelt task id would wait forever:
 * that is refused (`NOT_WAITING`, naming the waiting tasks and the closest one) unless the caller
 * asked to `keep` it. Returns the refusal, or null when the input is to be kept.
 */
export function refuseUnknownTask(
  run: Pick<Run, 'id' | 'status'>,
  taskId: string,
  waiting: readonly string[],
  keep: boolean,
): CairnError | null {
  if (keep || run.status !== 'paused' || waiting.length === 0) return null;
  const suggestion = closest(taskId, waiting);
  const list = waiting.map((id) => `"${id}"`).join(', ');
  return new CairnError(
    'NOT_WAITING',
    `Run ${run.id} has no task "${taskId}": it waits for input on ${list}${suggestion === undefined ? '' : ` (did you mean "${suggestion}"?)`}. To keep the input for a wait the run reaches later, pass keep: true.`,
    {
      details: {
        runId: run.id,
        taskId,
        waiting: [...waiting],
        ...(suggestion === undefined ? {} : { suggestion }),
      },
    },
  );
}

/** The ids of the waits among `tasks` that are waiting, in the order of `tasks`. */
export function waitingIds(tasks: readonly Task[]): string[] {
  return tasks.filter((t) => t.kind === 'wait' && t.status === 'waiting').map((t) => t.taskId);
}

/** Checks the `by` of resume options; returns it, or null. */
export function checkBy(options: { readonly by?: unknown }): string | null {
  if (options.by !== undefined && typeof options.by !== 'string')
    throw typeError('options.by must be a string');
  return options.by ?? null;
}

/** Checks the `keep` of resume options. */
export function checkKeep(options: { readonly keep?: unknown }): boolean {
  if (options.keep !== undefined && typeof options.keep !== 'boolean')
    throw typeError('options.keep must be a boolean');
  return options.keep ?? false;
}
