/** Argument checks and small rules shared by the engine's parts. */
import { CairnError, IdSchema, type Run, type Task } from '@cairn/store';

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
