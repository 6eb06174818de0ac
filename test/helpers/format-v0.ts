import { ClassicLevel } from 'classic-level';
import type { Run, RunStatus, Task } from '@cairn/store';

/**
 * Format 0, the pre-release layout: JSON values (utf8) under `run:<id>` and
 * `task:<runId>:<taskId>`, ISO dates, statuses `pending | running | paused | done | failed
 * | cancelled`, errors as strings, no indexes and no meta keys.
 */
export interface V0Run {
  id: string;
  workflow: string;
  version?: string;
  status: string;
  pausedTask?: string;
  input: unknown;
  output?: unknown;
  error?: string;
  createdAt: string;
  updatedAt: string;
  parentId?: string;
  tags?: string[];
}

export interface V0Task {
  runId: string;
  taskId: string;
  kind: 'step' | 'wait' | 'sleep' | 'child';
  seq: number;
  status: string;
  attempt?: number;
  output?: unknown;
  error?: string;
  startedAt: string;
  endedAt?: string;
  meta?: Record<string, unknown>;
  schema?: unknown;
}

export interface V0Fixture {
  readonly runs: V0Run[];
  readonly tasks: V0Task[];
}

const BASE = Date.UTC(2024, 0, 1);
const iso = (ms: number): string => new Date(ms).toISOString();
const V0_STATUSES = ['pending', 'running', 'paused', 'done', 'failed', 'cancelled'];
const WORKFLOWS = ['expense-approval', 'onboarding', 'nightly-report'];
const APPROVAL_SCHEMA = {
  type: 'object',
  properties: { approved: { type: 'boolean' }, by: { type: 'string' } },
  required: ['approved', 'by'],
};

/** A deterministic format-0 data set: the same `count` always gives the same records. */
export function v0Fixture(count: number): V0Fixture {
  const runs: V0Run[] = [];
  const tasks: V0Task[] = [];
  for (let i = 0; i < count; i++) {
    const id = `run-${String(i).padStart(6, '0')}`;
    const status = V0_STATUSES[i % V0_STATUSES.length]!;
    const created = BASE + i * 1000;
    const run: V0Run = {
      id,
      workflow: WORKFLOWS[i % WORKFLOWS.length]!,
      status,
      input: { n: i, note: `run ${i}` },
      createdAt: iso(created),
      updatedAt: iso(created + 500),
    };
    if (i % 4 !== 0) run.version = String(1 + (i % 2));
    if (i % 10 === 9) run.parentId = runs[i - 1]!.id;
    if (i % 5 === 0) run.tags = ['vip', `batch-${i % 3}`];
    const fetch: V0Task = {
      runId: id,
      taskId: 'fetch',
      kind: 'step',
      seq: 0,
      status: status === 'pending' ? 'running' : 'done',
      startedAt: iso(created + 10),
      output: { rows: i % 7 },
      meta: { model: 'small', totalTokens: 100 + i },
    };
    if (fetch.status === 'done') fetch.endedAt = iso(created + 60);
    tasks.push(fetch);
    if (status === 'paused') {
      run.pausedTask = 'approve';
      tasks.push({
        runId: id,
        taskId: 'approve',
        kind: 'wait',
        seq: 1,
        status: 'waiting',
        startedAt: iso(created + 100),
        schema: APPROVAL_SCHEMA,
      });
    } else if (status === 'running') {
      tasks.push({
        runId: id,
        taskId: 'nap',
        kind: 'sleep',
        seq: 1,
        status: 'sleeping',
        startedAt: iso(created + 100),
      });
    } else if (status === 'done') {
      run.output = { paid: true };
      tasks.push({
        runId: id,
        taskId: 'pay',
        kind: 'step',
        seq: 1,
        status: 'done',
        attempt: 2,
        startedAt: iso(created + 100),
        endedAt: iso(created + 400),
        output: 'ok',
      });
    } else if (status === 'failed') {
      run.error = 'payment provider said no';
      tasks.push({
        runId: id,
        taskId: 'pay',
        kind: 'step',
        seq: 1,
        status: 'failed',
        attempt: 3,
        startedAt: iso(created + 100),
        endedAt: iso(created + 300),
        error: 'payment provider said no',
      });
    }
    runs.push(run);
  }
  return { runs, tasks };
}

/** Writes `fixture` as a format-0 store at `path` (created if missing). */
export async function writeV0Store(path: string, fixture: V0Fixture): Promise<void> {
  const db = new ClassicLevel<string, string>(path, { keyEncoding: 'utf8', valueEncoding: 'utf8' });
  await db.open();
  try {
    const batch = db.batch();
    for (const run of fixture.runs) batch.put(`run:${run.id}`, JSON.stringify(run));
    for (const task of fixture.tasks) {
      batch.put(`task:${task.runId}:${task.taskId}`, JSON.stringify(task));
    }
    await batch.write();
  } finally {
    await db.close();
  }
}

const RUN_STATUS: Record<string, RunStatus> = {
  pending: 'queued',
  running: 'running',
  paused: 'paused',
  done: 'completed',
  failed: 'failed',
  cancelled: 'cancelled',
};

/** What format 1 must hold for a format-0 run. */
export function expectedRun(v0: V0Run): Run {
  const status = RUN_STATUS[v0.status]!;
  const createdAt = Date.parse(v0.createdAt);
  const updatedAt = Date.parse(v0.updatedAt);
  const ended = status === 'completed' || status === 'failed' || status === 'cancelled';
  return {
    id: v0.id,
    workflow: v0.workflow,
    version: v0.version ?? '1',
    namespace: 'default',
    status,
    isPaused: status === 'paused',
    pausedTaskId: status === 'paused' ? v0.pausedTask! : null,
    pauseRequested: false,
    input: v0.input,
    ...(v0.output === undefined ? {} : { output: v0.output }),
    error: v0.error === undefined ? null : { message: v0.error },
    createdAt,
    startedAt: createdAt,
    updatedAt,
    endedAt: ended ? updatedAt : null,
    parentRunId: v0.parentId ?? null,
    parentTaskId: null,
    depth: v0.parentId === undefined ? 0 : 1,
    recoveries: 0,
    tags: v0.tags ?? [],
  };
}

/** What format 1 must hold for a format-0 task. */
export function expectedTask(v0: V0Task): Task {
  const startedAt = Date.parse(v0.startedAt);
  const endedAt = v0.endedAt === undefined ? null : Date.parse(v0.endedAt);
  const status = v0.status === 'done' ? 'completed' : (v0.status as Task['status']);
  return {
    runId: v0.runId,
    taskId: v0.taskId,
    kind: v0.kind,
    seq: v0.seq,
    status,
    attempt: v0.attempt ?? 1,
    attempts: [],
    ...(v0.output === undefined ? {} : { output: v0.output }),
    error: v0.error === undefined ? null : { message: v0.error },
    startedAt,
    endedAt,
    durationMs: endedAt === null ? null : endedAt - startedAt,
    group: null,
    parentTaskId: null,
    meta: v0.meta ?? {},
    ...(v0.kind === 'wait' ? { schema: v0.schema ?? {}, timeoutAt: null } : {}),
  };
}
