/** Sleeps and due timers: a sleep ends, a wait times out, and the outcome is checkpointed. */
import { CairnError } from '@cairn/store';
import { toMs, type Duration } from './duration.js';
import { toErrorInfo } from './errors.js';
import { transition } from './status.js';
import { FINAL_TASK, checkName, elapsed } from './execution-support.js';
import { newTask } from './new-records.js';
import type { RunExecution } from './execution.js';

export async function sleepTask(
  exec: RunExecution,
  name: string,
  duration: Duration,
): Promise<void> {
  checkName('sleep', name);
  const ms = toMs(duration, 'duration');
  const { taskId, seq, hist, group } = exec.claim(name, 'sleep');
  const ordered = exec.inOrder(hist);
  if (ordered) await ordered;
  if (hist && FINAL_TASK.has(hist.status)) {
    exec.replayed(hist);
    return;
  }
  const held = exec.gate(taskId, hist === undefined);
  if (held) await held;
  exec.inflight++;
  try {
    let task = hist;
    if (!task) {
      const now = exec.host.clock.now();
      task = newTask(exec, {
        taskId,
        kind: 'sleep',
        seq,
        status: 'sleeping',
        attempt: 1,
        startedAt: now,
        group,
        meta: { durationMs: ms },
        wakeAt: now + ms,
      });
      exec.tasks.set(taskId, task);
      await exec.write({ tasks: [task] });
    }
    const wakeAt = task.wakeAt ?? 0;
    const promise = new Promise<void>((resolve, reject) => {
      exec.pending.set(taskId, { kind: 'sleep', taskId, resolve, reject });
    });
    if (wakeAt <= exec.host.clock.now()) fireSoon(exec, taskId);
    else exec.host.armTimer(wakeAt);
    exec.inflight--;
    try {
      await promise;
    } finally {
      exec.inflight++;
    }
  } finally {
    exec.inflight--;
    exec.scheduleCheck();
  }
}

export function fireSoon(exec: RunExecution, taskId: string): void {
  exec.fireTimer(taskId).catch(() => undefined);
}

/**
 * A timer fell due: a sleep ends, or a wait times out (returning its default or failing
 * with `WAIT_TIMEOUT`). The outcome is checkpointed before the function sees it.
 */
export async function fireTimer(exec: RunExecution, taskId: string): Promise<boolean> {
  const pending = exec.pending.get(taskId);
  const task = exec.tasks.get(taskId);
  if (!pending || !task || exec.state !== 'active') return false;
  const now = exec.host.clock.now();
  if (pending.kind === 'sleep') {
    if ((task.wakeAt ?? 0) > now) return false;
    exec.pending.delete(taskId);
    task.status = 'completed';
    task.endedAt = now;
    task.durationMs = elapsed(task.startedAt, now);
    exec.inflight++;
    try {
      await exec.write({ tasks: [task] });
    } finally {
      exec.inflight--;
    }
    exec.host.events.emit('task:completed', {
      runId: exec.run.id,
      taskId,
      kind: 'sleep',
      durationMs: task.durationMs,
    });
    pending.resolve();
    return true;
  }
  if (
    pending.kind !== 'wait' ||
    task.timeoutAt === null ||
    task.timeoutAt === undefined ||
    task.timeoutAt > now
  ) {
    return false;
  }
  exec.pending.delete(taskId);
  task.status = 'timed_out';
  task.endedAt = now;
  task.durationMs = elapsed(task.startedAt, now);
  let error: CairnError | null = null;
  if (pending.onTimeout === 'fail') {
    error = new CairnError('WAIT_TIMEOUT', `Nobody answered "${taskId}" in time`, {
      details: { runId: exec.run.id, taskId, timeoutAt: task.timeoutAt },
    });
    task.error = toErrorInfo(error, 'WAIT_TIMEOUT');
  } else {
    task.output = pending.onTimeout.default;
  }
  const resumed = exec.run.status === 'paused' && !exec.run.pauseRequested;
  if (resumed) exec.run = transition(exec.run, 'running', now);
  exec.inflight++;
  try {
    await exec.write({ tasks: [task], ...(resumed ? { runs: [exec.run] } : {}) });
  } finally {
    exec.inflight--;
  }
  exec.host.events.emit('task:timed-out', { runId: exec.run.id, taskId, kind: 'wait' });
  if (resumed)
    exec.host.events.emit('run:resumed', { runId: exec.run.id, workflow: exec.run.workflow });
  if (error) pending.reject(error);
  else pending.resolve(task.output);
  return true;
}
