import { PREFIX, key, orderKey, timerKey, waitingKey } from './keys.js';
import { IdSchema, RUN_STATUSES, type Run, type Task } from './records.js';

/**
 * Index entries and timers are pure functions of the records they belong to. A checkpoint
 * writes the entries of each record's new state and deletes every other entry of the same
 * family (or, for a run whose status on disk the store knows, only the entries of that
 * status: see `runStatusKeys`), so the engine's writes need no read of the previous state and
 * a crash can never leave an index disagreeing with its record (they are in one batch). What
 * the engine never changes (a run's namespace, workflow, tags and creation time, a task's
 * kind and timer) a checkpoint from outside may: the store then reads the records it
 * replaces and deletes their entries in the same batch. The integrity check uses the same
 * functions.
 */
export function runIndexKeys(run: Run): string[] {
  const order = orderKey(run.createdAt, run.id);
  return [
    key(PREFIX.idxAll, order),
    key(PREFIX.idxStatus, run.status, order),
    key(PREFIX.idxWorkflow, run.workflow, order),
    key(PREFIX.idxNamespace, run.namespace, order),
    key(PREFIX.idxNamespaceStatus, run.namespace, run.status, order),
    ...runTagKeys(run),
  ];
}

/**
 * `idx-tag/<tag>/<order>` for each distinct tag. The engine never changes a run's tags, so
 * they have no stale entries of their own (see above for a checkpoint that does). A tag that is not a valid name (empty, or with control
 * characters, which separate key parts) is not indexed; a query by tag cannot name it.
 */
export function runTagKeys(run: Run): string[] {
  const order = orderKey(run.createdAt, run.id);
  const keys: string[] = [];
  for (const tag of new Set(run.tags)) {
    if (isIndexableTag(tag)) keys.push(key(PREFIX.idxTag, tag, order));
  }
  return keys;
}

export function isIndexableTag(tag: string): boolean {
  return IdSchema.safeParse(tag).success;
}

/** The entries of a run that depend on its status, for `status`. */
export function runStatusKeys(run: Run, status: Run['status']): string[] {
  const order = orderKey(run.createdAt, run.id);
  return [
    key(PREFIX.idxStatus, status, order),
    key(PREFIX.idxNamespaceStatus, run.namespace, status, order),
  ];
}

/** Entries that this run could have had in an earlier status, and must not have now. */
export function runStaleKeys(run: Run): string[] {
  const order = orderKey(run.createdAt, run.id);
  const stale: string[] = [];
  for (const status of RUN_STATUSES) {
    if (status === run.status) continue;
    stale.push(key(PREFIX.idxStatus, status, order));
    stale.push(key(PREFIX.idxNamespaceStatus, run.namespace, status, order));
  }
  return stale;
}

/** When the task's timer fires, if it has one. */
export function taskTimerAt(task: Task): number | null {
  if (task.kind === 'sleep') return task.wakeAt ?? null;
  if (task.kind === 'wait') return task.timeoutAt ?? null;
  return null;
}

export function taskIndexKeys(task: Task): string[] {
  const keys: string[] = [];
  if (task.status === 'waiting') keys.push(waitingKey(task.runId, task.taskId));
  const at = taskTimerAt(task);
  if (at !== null && (task.status === 'waiting' || task.status === 'sleeping')) {
    keys.push(timerKey(at, task.runId, task.taskId));
  }
  return keys;
}

export function taskStaleKeys(task: Task): string[] {
  if (task.kind !== 'wait' && task.kind !== 'sleep') return [];
  const stale: string[] = [];
  if (task.kind === 'wait' && task.status !== 'waiting') {
    stale.push(waitingKey(task.runId, task.taskId));
  }
  const at = taskTimerAt(task);
  if (at !== null && task.status !== 'waiting' && task.status !== 'sleeping') {
    stale.push(timerKey(at, task.runId, task.taskId));
  }
  return stale;
}
