import { CairnError, type Run, type RunStatus } from '@cairn/store';

const ALLOWED: Record<RunStatus, readonly RunStatus[]> = {
  queued: ['running', 'paused', 'failed', 'cancelled'],
  running: ['paused', 'completed', 'failed', 'cancelled'],
  // paused → queued: resumed without an engine (offline.ts); the next engine recovers it.
  paused: ['running', 'queued', 'failed', 'cancelled'],
  completed: [],
  failed: [],
  cancelled: [],
};

/**
 * The one place a run's status changes. Returns the new record (the old one is not
 * modified); an illegal change is `INVALID_TRANSITION`. Keeps `isPaused`, `pausedTaskId`,
 * `startedAt` and `endedAt` consistent with the status.
 */
export function transition(
  run: Run,
  to: RunStatus,
  now: number,
  patch: Partial<
    Pick<Run, 'output' | 'error' | 'pausedTaskId' | 'recoveries' | 'pauseRequested'>
  > = {},
): Run {
  if (run.status !== to && !ALLOWED[run.status].includes(to)) {
    throw new CairnError('INVALID_TRANSITION', `A ${run.status} run cannot become ${to}`, {
      details: { runId: run.id, from: run.status, to },
    });
  }
  const terminal = to === 'completed' || to === 'failed' || to === 'cancelled';
  const next: Run = {
    ...run,
    ...patch,
    status: to,
    isPaused: to === 'paused',
    pausedTaskId: to === 'paused' ? (patch.pausedTaskId ?? run.pausedTaskId ?? null) : null,
    pauseRequested: terminal ? false : (patch.pauseRequested ?? run.pauseRequested),
    updatedAt: now,
    startedAt: run.startedAt ?? (to === 'running' ? now : null),
    endedAt: terminal ? now : null,
  };
  return next;
}

export function canTransition(from: RunStatus, to: RunStatus): boolean {
  return from === to || ALLOWED[from].includes(to);
}
