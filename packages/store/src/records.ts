import { z } from 'zod';

/**
 * Names and ids: 1–200 characters, no control characters (they separate key parts), and no
 * half of a surrogate pair (a key is UTF-8: it would come back as U+FFFD, another name). With
 * the `u` flag a pair is one code point, and only a half on its own is in U+D800–U+DFFF.
 */
const NAME_RE = /^[^\x00-\x1f\x7f\uD800-\uDFFF]+$/u;

/** Text without half of a surrogate pair (empty too). */
const WELL_FORMED = /^[^\uD800-\uDFFF]*$/u;

export const IdSchema = z
  .string()
  .max(200)
  .regex(
    NAME_RE,
    'must be 1-200 characters without control characters or half of a surrogate pair',
  );
const Millis = z.number().int().nonnegative();

/**
 * An object with `Object.prototype` or none, returned as it is: `z.record` would drop a
 * `__proto__` key and give an object without a prototype one, so what was stored would not
 * be what is read.
 */
const ObjectSchema = z.custom<Record<string, unknown>>((value) => {
  if (typeof value !== 'object' || value === null) return false;
  const proto: unknown = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}, 'must be an object');

export const RUN_STATUSES = [
  'queued',
  'running',
  'paused',
  'completed',
  'failed',
  'cancelled',
] as const;
export const RunStatusSchema = z.enum(RUN_STATUSES);
export type RunStatus = z.infer<typeof RunStatusSchema>;

/** Statuses a run never leaves. */
export const TERMINAL_STATUSES: ReadonlySet<RunStatus> = new Set([
  'completed',
  'failed',
  'cancelled',
]);

export const TASK_KINDS = ['step', 'wait', 'sleep', 'child'] as const;
export const TaskKindSchema = z.enum(TASK_KINDS);
export type TaskKind = z.infer<typeof TaskKindSchema>;

export const TASK_STATUSES = [
  'running',
  'waiting',
  'sleeping',
  'completed',
  'failed',
  'timed_out',
  'cancelled',
] as const;
export const TaskStatusSchema = z.enum(TASK_STATUSES);
export type TaskStatus = z.infer<typeof TaskStatusSchema>;

/** An error as it is checkpointed: plain data, never an `Error` instance. */
export const ErrorInfoSchema = z.object({
  code: z.string().optional(),
  name: z.string().optional(),
  message: z.string(),
  stack: z.string().optional(),
  details: ObjectSchema.optional(),
});
export type ErrorInfo = z.infer<typeof ErrorInfoSchema>;

/** Workflow metadata: one record per run, under `runs/<runId>`. */
export const RunSchema = z.object({
  id: IdSchema,
  workflow: IdSchema,
  version: IdSchema,
  namespace: IdSchema,
  status: RunStatusSchema,
  /** True exactly while `status` is `paused`. */
  isPaused: z.boolean(),
  /** The waiting task the run is stopped at, or the task that would have run next. */
  pausedTaskId: IdSchema.nullable(),
  /** An operator asked for a pause; in-flight steps are still finishing. */
  pauseRequested: z.boolean(),
  input: z.unknown(),
  output: z.unknown().optional(),
  error: ErrorInfoSchema.nullable(),
  createdAt: Millis,
  startedAt: Millis.nullable(),
  updatedAt: Millis,
  endedAt: Millis.nullable(),
  parentRunId: IdSchema.nullable(),
  parentTaskId: IdSchema.nullable(),
  depth: z.number().int().nonnegative(),
  /** How many times recovery restarted this run after its process died. */
  recoveries: z.number().int().nonnegative(),
  tags: z
    .array(z.string().max(200).regex(WELL_FORMED, 'must not hold half of a surrogate pair'))
    .max(64),
});
export type Run = z.infer<typeof RunSchema>;

export const AttemptSchema = z.object({
  attempt: z.number().int().positive(),
  startedAt: Millis,
  endedAt: Millis.nullable(),
  error: ErrorInfoSchema.nullable(),
});
export type Attempt = z.infer<typeof AttemptSchema>;

/** A task execution: one record per step, wait, sleep or child, under `tasks/<runId>/<taskId>`. */
export const TaskSchema = z.object({
  runId: IdSchema,
  taskId: IdSchema,
  kind: TaskKindSchema,
  /** Order of first call within the run. */
  seq: z.number().int().nonnegative(),
  status: TaskStatusSchema,
  attempt: z.number().int().nonnegative(),
  attempts: z.array(AttemptSchema),
  output: z.unknown().optional(),
  error: ErrorInfoSchema.nullable(),
  startedAt: Millis,
  endedAt: Millis.nullable(),
  durationMs: z.number().nonnegative().nullable(),
  /** The parallel group the task started in (tasks started in the same turn share one). */
  group: z.string().nullable(),
  parentTaskId: IdSchema.nullable(),
  /** Free-form annotations: model, prompt/completion/total tokens, finish reason, ... */
  meta: ObjectSchema,
  /** Waits: the JSON schema of the expected input. */
  schema: z.unknown().optional(),
  /** Waits: when the wait times out. */
  timeoutAt: Millis.nullable().optional(),
  /** Sleeps: when the sleep ends. */
  wakeAt: Millis.nullable().optional(),
  /** Waits: who or what resumed it. */
  resumedBy: z.string().nullable().optional(),
  /** Children: the child run. */
  childRunId: IdSchema.nullable().optional(),
});
export type Task = z.infer<typeof TaskSchema>;

export const LOG_LEVELS = ['debug', 'info', 'warn', 'error'] as const;
export const LogLevelSchema = z.enum(LOG_LEVELS);
export type LogLevel = z.infer<typeof LogLevelSchema>;

/** A line written by `ctx.log()`, under `logs/<runId>/<seq>`. */
export const LogLineSchema = z.object({
  runId: IdSchema,
  seq: z.number().int().nonnegative(),
  at: Millis,
  level: LogLevelSchema,
  message: z.string().max(64 * 1024),
  taskId: IdSchema.nullable(),
  data: z.unknown().optional(),
});
export type LogLine = z.infer<typeof LogLineSchema>;

/** What a caller gives to `appendLogs`: the store assigns `seq`. */
export const LogInputSchema = LogLineSchema.omit({ seq: true });
export type LogInput = z.infer<typeof LogInputSchema>;

/** A due timer, as listed by `dueTimers`. */
export interface Timer {
  readonly at: number;
  readonly runId: string;
  readonly taskId: string;
}
