import { CairnError, reportedCode } from './errors.js';
import type { SalvageReport } from './log-recovery.js';
import { TERMINAL_STATUSES, type LogLine, type Run, type RunStatus, type Task } from './records.js';
import { checkOptionNames, optionNames } from './options.js';
import { Store, checkId, typeError } from './store.js';

/**
 * Queries over a store that need no workflow code: what a dashboard, a CLI or an operator
 * asks about one run. They read records only (`Store` public methods).
 */

/** Tasks started in the same turn of the workflow function (`Promise.all`). */
export interface TaskGroup {
  readonly group: string;
  /** By `seq`. */
  readonly taskIds: string[];
}

export interface RunDetail {
  readonly run: Run;
  /** Every task by `seq`, with timing, attempts, output, error and group. */
  readonly tasks: Task[];
  /** Parallel groups with more than one task, by the `seq` of their first task. */
  readonly groups: TaskGroup[];
  /** Child runs started by the run's `child` tasks, by `seq` (missing ones left out). */
  readonly children: Run[];
  /** Tasks waiting for input, with their JSON schema. */
  readonly waiting: Task[];
  readonly logs: LogLine[];
}

export interface RunDetailOptions {
  /** At most this many log lines (the first ones). @default all */
  readonly logLimit?: number;
}

function notFound(runId: string): CairnError {
  return new CairnError('NOT_FOUND', `No run with id "${runId}"`, { details: { runId } });
}

async function childRuns(store: Store, tasks: readonly Task[]): Promise<Map<string, Run>> {
  const out = new Map<string, Run>();
  for (const task of tasks) {
    if (task.kind !== 'child' || !task.childRunId) continue;
    try {
      const child = await store.getRun(task.childRunId);
      if (child) out.set(child.id, child);
    } catch (error) {
      // A damaged child is left out here; `verify()` and its own detail report it.
      if (!(error instanceof CairnError && error.code === 'CORRUPT_RECORD')) throw error;
    }
  }
  return out;
}

/** Everything about one run: tasks, parallel groups, children, waits and logs. `NOT_FOUND` if none. */
export async function runDetail(
  store: Store,
  runId: string,
  options: RunDetailOptions = {},
): Promise<RunDetail> {
  checkQuery(store, runId, options, RUN_DETAIL_OPTIONS);
  if (options.logLimit !== undefined) checkWhole('options.logLimit', options.logLimit, 1);
  const run = await store.getRun(runId);
  if (!run) throw notFound(runId);
  const tasks = await store.listTasks(runId);
  const byGroup = new Map<string, string[]>();
  for (const task of tasks) {
    if (task.group === null) continue;
    const ids = byGroup.get(task.group);
    if (ids) ids.push(task.taskId);
    else byGroup.set(task.group, [task.taskId]);
  }
  const groups = [...byGroup]
    .filter(([, ids]) => ids.length > 1)
    .map(([group, taskIds]) => ({ group, taskIds }));
  const children = [...(await childRuns(store, tasks)).values()];
  const logs = await store.readLogs(
    runId,
    options.logLimit === undefined ? {} : { limit: options.logLimit },
  );
  return {
    run,
    tasks,
    groups,
    children,
    waiting: tasks.filter((t) => t.status === 'waiting'),
    logs,
  };
}

/**
 * Input sent for a wait before the run reached it, that the wait's schema refused when it got
 * there: kept on the wait's record (`meta.refusedInput`) while the wait waits on.
 */
export interface RefusedInput {
  /** When the wait refused it (epoch ms). */
  readonly at: number;
  /** The schema's issues (zod issues: `path`, `message`, `code`, ...), at most 20. */
  readonly issues: readonly unknown[];
  /** The input; absent when it and the wait did not fit in one record. */
  readonly data?: unknown;
}

/** The early input a wait refused, read from its record; null if there is none. */
export function refusedInputOf(task: Task): RefusedInput | null {
  const value = task.meta.refusedInput;
  if (typeof value !== 'object' || value === null) return null;
  const { at, issues } = value as { at?: unknown; issues?: unknown };
  if (typeof at !== 'number' || !Array.isArray(issues)) return null;
  return value as RefusedInput;
}

const iso = (ms: number): string => new Date(ms).toISOString();

/** One line about refused input: its first issue, and how many more there are. */
function refusedSentence(taskId: string, refused: RefusedInput): string {
  const [first] = refused.issues as { path?: unknown; message?: unknown }[];
  const where =
    Array.isArray(first?.path) && first.path.length > 0 ? `${first.path.join('.')}: ` : '';
  const what = typeof first?.message === 'string' ? `${where}${first.message}` : 'refused';
  const more = refused.issues.length > 1 ? `, and ${refused.issues.length - 1} more` : '';
  return `input sent early for "${taskId}" was refused by its schema at ${iso(refused.at)} (${what}${more}); it waits for valid input`;
}

export interface WaitingInfo {
  readonly taskId: string;
  readonly since: number;
  readonly timeoutAt: number | null;
  readonly description: string | null;
  /** JSON schema of the expected input. */
  readonly schema: unknown;
  /** Input sent before the run reached the wait, that its schema refused. */
  readonly refusedInput: RefusedInput | null;
}

export interface TimerInfo {
  readonly taskId: string;
  readonly kind: 'sleep' | 'wait';
  /** When it fires (epoch ms). */
  readonly at: number;
}

export interface RunningTask {
  readonly taskId: string;
  readonly kind: Task['kind'];
  readonly attempt: number;
  readonly startedAt: number;
  /** Children: the child run and its status (null when it cannot be read). */
  readonly childRunId?: string | null;
  readonly childStatus?: RunStatus | null;
}

export interface DiagnoseOptions {
  /** Versions of the run's workflow that the engine has; omit when unknown. */
  readonly registeredVersions?: readonly string[];
  /** The run's recovery limit, when known. */
  readonly maxRecoveries?: number;
  /** The time to judge deadlines against. @default Date.now() */
  readonly now?: number;
}

export interface Diagnosis {
  readonly run: Run;
  readonly status: RunStatus;
  /** The last time anything of the run was written. */
  readonly lastCheckpointAt: number;
  readonly waiting: WaitingInfo[];
  readonly timers: TimerInfo[];
  /** Tasks in flight: steps that were running, children not finished. */
  readonly running: RunningTask[];
  /** Task ids with input kept for a wait the run has not reached. */
  readonly inbox: string[];
  readonly recoveries: number;
  readonly maxRecoveries?: number;
  /** Whether the engine has the run's version; null when unknown (a store-only diagnosis). */
  readonly versionRegistered: boolean | null;
  /**
   * The last salvage of a damaged log that named this run: it may have lost its last
   * checkpoints then (steps after them run again). Null when none did.
   */
  readonly salvage: SalvageReport | null;
  /** Plain sentences, most important first. */
  readonly findings: string[];
}

function lastWrite(run: Run, tasks: readonly Task[]): number {
  let last = run.updatedAt;
  for (const t of tasks) {
    last = Math.max(last, t.endedAt ?? t.startedAt);
    for (const a of t.attempts) last = Math.max(last, a.endedAt ?? a.startedAt);
  }
  return last;
}

function ended(run: Run): string {
  const at = iso(run.endedAt ?? run.updatedAt);
  if (run.status === 'completed') return `it completed at ${at}; nothing is stuck`;
  if (run.status === 'cancelled') return `it was cancelled at ${at}`;
  const error = run.error ? `${reportedCode(run.error, 'RUN_FAILED')}: ${run.error.message}` : '';
  return `it failed at ${at}${error ? `: ${error}` : ''}`;
}

/**
 * Why is this run where it is? Reads the run, its tasks, children and inbox, and says in plain
 * sentences what it waits for, what was in flight, which timers are due, and what stops it
 * (an operator pause, a version the engine does not have, recoveries near the limit).
 */
export async function diagnose(
  store: Store,
  runId: string,
  options: DiagnoseOptions = {},
): Promise<Diagnosis> {
  checkQuery(store, runId, options, DIAGNOSE_OPTIONS);
  const versions: unknown = options.registeredVersions;
  if (
    versions !== undefined &&
    (!Array.isArray(versions) || versions.some((v) => typeof v !== 'string'))
  ) {
    throw typeError('options.registeredVersions must be an array of strings');
  }
  if (options.maxRecoveries !== undefined)
    checkWhole('options.maxRecoveries', options.maxRecoveries, 0);
  if (options.now !== undefined) checkWhole('options.now', options.now, 0);
  const run = await store.getRun(runId);
  if (!run) throw notFound(runId);
  const now = options.now ?? Date.now();
  const tasks = await store.listTasks(runId);
  const children = await childRuns(store, tasks);
  const inbox = (await store.listInbox(runId)).map((e) => e.taskId);
  const salvage = (await store.salvages()).findLast((s) => s.runs.includes(runId)) ?? null;
  const versionRegistered =
    options.registeredVersions === undefined
      ? null
      : options.registeredVersions.includes(run.version);
  const waiting: WaitingInfo[] = tasks
    .filter((t) => t.status === 'waiting')
    .map((t) => ({
      taskId: t.taskId,
      since: t.startedAt,
      timeoutAt: t.timeoutAt ?? null,
      description: typeof t.meta.description === 'string' ? t.meta.description : null,
      schema: t.schema,
      refusedInput: refusedInputOf(t),
    }));
  const timers: TimerInfo[] = [];
  for (const t of tasks) {
    if (t.status === 'sleeping' && typeof t.wakeAt === 'number') {
      timers.push({ taskId: t.taskId, kind: 'sleep', at: t.wakeAt });
    } else if (t.status === 'waiting' && typeof t.timeoutAt === 'number') {
      timers.push({ taskId: t.taskId, kind: 'wait', at: t.timeoutAt });
    }
  }
  timers.sort((a, b) => a.at - b.at);
  const running: RunningTask[] = tasks
    .filter((t) => t.status === 'running')
    .map((t) =>
      t.kind === 'child'
        ? {
            taskId: t.taskId,
            kind: t.kind,
            attempt: t.attempt,
            startedAt: t.startedAt,
            childRunId: t.childRunId ?? null,
            childStatus: (t.childRunId && children.get(t.childRunId)?.status) || null,
          }
        : { taskId: t.taskId, kind: t.kind, attempt: t.attempt, startedAt: t.startedAt },
    );

  const findings: string[] = [];
  const say = (sentence: string) => findings.push(sentence);
  if (salvage !== null) {
    say(
      `the store's log was damaged (${salvage.reason}, at offset ${salvage.offset} of ${salvage.file}) and salvaged at ${iso(salvage.at)}: this run may have lost the checkpoints it made last before that; steps after its last checkpoint run again`,
    );
  }
  if (TERMINAL_STATUSES.has(run.status)) {
    say(ended(run));
  } else {
    if (versionRegistered === false) {
      const known = options.registeredVersions!.join(', ') || 'none';
      say(
        `${run.workflow} version ${run.version} is not registered (registered: ${known}); an engine with that version is needed to continue it`,
      );
    }
    if (run.pauseRequested) {
      say(
        run.status === 'paused'
          ? `an operator paused it (at ${iso(run.updatedAt)}); it stays paused until it is resumed`
          : 'an operator asked to pause it; steps in flight finish first',
      );
    }
    for (const w of waiting) {
      let sentence = `waits for input on "${w.taskId}" since ${iso(w.since)}`;
      if (w.timeoutAt !== null) {
        sentence +=
          w.timeoutAt <= now
            ? `; its timeout passed at ${iso(w.timeoutAt)} and fires when an engine runs`
            : `; it times out at ${iso(w.timeoutAt)}`;
      }
      say(sentence);
      if (w.refusedInput !== null) say(refusedSentence(w.taskId, w.refusedInput));
    }
    for (const t of timers.filter((x) => x.kind === 'sleep')) {
      say(
        t.at <= now
          ? `its sleep "${t.taskId}" was due at ${iso(t.at)}; it wakes when an engine runs`
          : `sleeps in "${t.taskId}" until ${iso(t.at)}`,
      );
    }
    for (const r of running) {
      if (r.kind === 'child') {
        const child = r.childRunId ? children.get(r.childRunId) : undefined;
        if (!child) say(`waits for child run ${r.childRunId ?? '?'}, which cannot be found`);
        else if (TERMINAL_STATUSES.has(child.status)) {
          say(
            `its child run ${child.id} has ${child.status === 'completed' ? 'completed' : `ended ${child.status}`}; the next engine that recovers the run takes the result`,
          );
        } else say(`waits for child run ${child.id} (${child.workflow}, ${child.status})`);
      } else {
        say(
          `step "${r.taskId}" was in flight (attempt ${r.attempt}, started ${iso(r.startedAt)}); if no engine is running it, the next engine runs it again`,
        );
      }
    }
    if (run.status === 'queued') say('it is queued: the next engine that starts picks it up');
    const idle = waiting.length + timers.length + running.length === 0;
    if (run.status === 'running' && idle) {
      say(
        'it is marked running with nothing in flight: if no engine is running it, its process stopped and the next engine recovers it',
      );
    }
    if (run.status === 'paused' && !run.pauseRequested && waiting.length === 0) {
      say('it is paused with nothing waiting and no operator pause; resuming it continues it');
    }
    for (const taskId of inbox) {
      say(`input is kept for "${taskId}", a wait the run has not reached yet`);
    }
    if (run.recoveries > 0 || options.maxRecoveries !== undefined) {
      const max = options.maxRecoveries;
      if (max === undefined) say(`it was recovered ${run.recoveries} times`);
      else if (run.recoveries >= max) {
        say(
          `it was recovered ${run.recoveries} times (the limit is ${max}): one more interruption fails it with MAX_RECOVERIES_EXCEEDED`,
        );
      } else if (run.recoveries > 0) {
        say(`it was recovered ${run.recoveries} of at most ${max} times`);
      }
    }
  }
  return {
    run,
    status: run.status,
    lastCheckpointAt: lastWrite(run, tasks),
    waiting,
    timers,
    running,
    inbox,
    recoveries: run.recoveries,
    ...(options.maxRecoveries === undefined ? {} : { maxRecoveries: options.maxRecoveries }),
    versionRegistered,
    salvage,
    findings,
  };
}

const RUN_DETAIL_OPTIONS = optionNames<RunDetailOptions>()({ logLimit: true });
const DIAGNOSE_OPTIONS = optionNames<DiagnoseOptions>()({
  registeredVersions: true,
  maxRecoveries: true,
  now: true,
});

function checkQuery(
  store: unknown,
  runId: unknown,
  options: unknown,
  known: ReadonlySet<string>,
): void {
  if (!(store instanceof Store)) throw typeError('store must be a Store');
  checkId('runId', runId);
  if (typeof options !== 'object' || options === null) throw typeError('options must be an object');
  checkOptionNames('options', options, known);
}

function checkWhole(name: string, value: unknown, min: number): void {
  if (typeof value !== 'number') throw typeError(`${name} must be a number`);
  if (!Number.isInteger(value) || value < min) {
    throw new CairnError('INVALID_ARGUMENT', `${name} must be a whole number of at least ${min}`);
  }
}
