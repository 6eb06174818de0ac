import { decodeRaw, encode, validate } from './codec.js';
import { PREFIX, SEP } from './keys.js';
import {
  RUN_STATUSES,
  RunSchema,
  TASK_KINDS,
  TASK_STATUSES,
  TaskSchema,
  type Run,
  type Task,
} from './records.js';

/**
 * Run and task records in their compact form (format 4): a msgpack array of the fields in a
 * fixed order instead of a map. No field names, no ids (the key holds them), a status or kind
 * as its index, and every time after a record's first as an offset from it. A step's record
 * takes about 30 bytes besides its output instead of about 260, and a run's about 50 besides
 * its input and output instead of about 280: a synced batch carries fewer bytes per step.
 *
 * Reads take either form: records written before format 4 stay maps, and a record that cannot
 * be packed exactly (a time that is not a safe integer, a status this code does not know: only
 * a damaged record) is written as a map, so that reading it fails as it did. Both forms are
 * validated against the record's schema after they are read.
 */

/** The first element of a compact record: the layout below (a later layout takes 2). */
const LAYOUT = 1;
const TASK_FIELDS = 14;
const RUN_FIELDS = 19;
/** Per attempt: its number, start offset, end offset, error. */
const ATTEMPT_FIELDS = 4;
/** A task's optional fields, kept in one map when any is set. */
const TASK_EXTRAS = ['schema', 'timeoutAt', 'wakeAt', 'resumedBy', 'childRunId'] as const;

const isTime = (ms: unknown): ms is number => Number.isSafeInteger(ms);
/** `at - from`, with `null` kept; `undefined` when it cannot be stored exactly. */
function offset(at: number | null, from: number): number | null | undefined {
  if (at === null) return null;
  return isTime(at) ? at - from : undefined;
}
/** The time `off` after `from`; anything but numbers or a `null` offset gives `undefined` (invalid). */
function after(off: unknown, from: unknown): number | null | undefined {
  if (off === null) return null;
  return typeof off === 'number' && typeof from === 'number' ? from + off : undefined;
}
const at = <T>(list: readonly T[], index: unknown): T | undefined =>
  typeof index === 'number' ? list[index] : undefined;

export function packTask(task: Task): unknown[] | undefined {
  const kind = TASK_KINDS.indexOf(task.kind);
  const status = TASK_STATUSES.indexOf(task.status);
  const start = task.startedAt;
  if (kind < 0 || status < 0 || !isTime(start) || !Array.isArray(task.attempts)) return undefined;
  const ended = offset(task.endedAt, start);
  if (ended === undefined) return undefined;
  const attempts: unknown[] = [];
  for (const a of task.attempts) {
    const aEnded = offset(a.endedAt, a.startedAt);
    if (!isTime(a.startedAt) || aEnded === undefined) return undefined;
    attempts.push(a.attempt, a.startedAt - start, aEnded, a.error);
  }
  let extras: Record<string, unknown> | null = null;
  for (const name of TASK_EXTRAS) {
    if (task[name] !== undefined) (extras ??= {})[name] = task[name];
  }
  const packed: unknown[] = [
    LAYOUT,
    kind,
    task.seq,
    status,
    task.attempt,
    start,
    ended,
    task.durationMs,
    attempts,
    task.error,
    task.group,
    task.parentTaskId,
    task.meta,
    extras,
  ];
  if (task.output !== undefined) packed.push(task.output);
  return packed;
}

/** A compact task back as an object to validate; what is not a compact task is returned as it is. */
export function unpackTask(runId: string, taskId: string, packed: unknown[]): unknown {
  if (packed[0] !== LAYOUT || (packed.length !== TASK_FIELDS && packed.length !== TASK_FIELDS + 1))
    return packed;
  const [, kind, seq, status, attempt, start, ended, durationMs, list, error, group, parent] =
    packed;
  const meta = packed[12];
  const extras = packed[13];
  // What is wrong beyond these two is left for the schema to report.
  if (
    !Array.isArray(list) ||
    (extras !== null && (typeof extras !== 'object' || Array.isArray(extras)))
  )
    return packed;
  const attempts: Record<string, unknown>[] = [];
  const fields = list as unknown[];
  for (let i = 0; i < fields.length; i += ATTEMPT_FIELDS) {
    const attemptStart = after(fields[i + 1], start);
    attempts.push({
      attempt: fields[i],
      startedAt: attemptStart,
      endedAt: after(fields[i + 2], attemptStart),
      error: fields[i + 3],
    });
  }
  const task: Record<string, unknown> = {
    runId,
    taskId,
    kind: at(TASK_KINDS, kind),
    seq,
    status: at(TASK_STATUSES, status),
    attempt,
    attempts,
    error,
    startedAt: start,
    endedAt: after(ended, start),
    durationMs,
    group,
    parentTaskId: parent,
    meta,
  };
  if (packed.length > TASK_FIELDS) task.output = packed[TASK_FIELDS];
  if (extras !== null) {
    for (const name of TASK_EXTRAS) if (name in extras) task[name] = (extras as Task)[name];
  }
  return task;
}

export function packRun(run: Run): unknown[] | undefined {
  const status = RUN_STATUSES.indexOf(run.status);
  const created = run.createdAt;
  if (status < 0 || !isTime(created)) return undefined;
  const started = offset(run.startedAt, created);
  const updated = offset(run.updatedAt, created);
  const ended = offset(run.endedAt, created);
  if (started === undefined || updated === undefined || ended === undefined) return undefined;
  const packed: unknown[] = [
    LAYOUT,
    run.workflow,
    run.version,
    run.namespace,
    status,
    run.isPaused,
    run.pausedTaskId,
    run.pauseRequested,
    run.input,
    run.error,
    created,
    started,
    updated,
    ended,
    run.parentRunId,
    run.parentTaskId,
    run.depth,
    run.recoveries,
    run.tags,
  ];
  if (run.output !== undefined) packed.push(run.output);
  return packed;
}

/** A compact run back as an object to validate; what is not a compact run is returned as it is. */
export function unpackRun(id: string, packed: unknown[]): unknown {
  if (packed[0] !== LAYOUT || (packed.length !== RUN_FIELDS && packed.length !== RUN_FIELDS + 1))
    return packed;
  const [, workflow, version, namespace, status, isPaused, pausedTaskId, pauseRequested] = packed;
  const [input, error, created, started, updated, ended, parentRunId, parentTaskId] = packed.slice(
    8,
    16,
  );
  if (!isTime(created)) return packed;
  const run: Record<string, unknown> = {
    id,
    workflow,
    version,
    namespace,
    status: at(RUN_STATUSES, status),
    isPaused,
    pausedTaskId,
    pauseRequested,
    input,
    error,
    createdAt: created,
    startedAt: after(started, created),
    updatedAt: after(updated, created),
    endedAt: after(ended, created),
    parentRunId,
    parentTaskId,
    depth: packed[16],
    recoveries: packed[17],
    tags: packed[18],
  };
  if (packed.length > RUN_FIELDS) run.output = packed[RUN_FIELDS];
  return run;
}

export const encodeTask = (task: Task): Uint8Array => encode(packTask(task) ?? task);
export const encodeRun = (run: Run): Uint8Array => encode(packRun(run) ?? run);

/** The run id of a `runs/<runId>` key. */
const runIdOf = (k: string): string => k.slice(PREFIX.runs.length + SEP.length);

/** Decodes and validates the run record at `k`, in either form (`CORRUPT_RECORD` if damaged). */
export function decodeRun(k: string, bytes: Uint8Array): Run {
  const raw = decodeRaw(k, bytes);
  return validate(k, Array.isArray(raw) ? unpackRun(runIdOf(k), raw) : raw, RunSchema);
}

/** Decodes and validates the task record at `k`, in either form (`CORRUPT_RECORD` if damaged). */
export function decodeTask(k: string, bytes: Uint8Array): Task {
  const raw = decodeRaw(k, bytes);
  if (!Array.isArray(raw)) return validate(k, raw, TaskSchema);
  const ids = k.slice(PREFIX.tasks.length + SEP.length);
  const sep = ids.indexOf(SEP);
  return validate(k, unpackTask(ids.slice(0, sep), ids.slice(sep + 1), raw), TaskSchema);
}
