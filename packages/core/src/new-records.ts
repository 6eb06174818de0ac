import type { Run, Task, TaskKind, TaskStatus } from '@cairn/store';
import type { AnyWorkflow } from './workflow.js';

/** What a new task record needs; the rest starts empty. */
export type NewTask = Pick<Task, 'taskId' | 'seq' | 'status' | 'startedAt' | 'group'> & {
  readonly kind: TaskKind;
  readonly status: TaskStatus;
} & Partial<Task>;

/** A task record as it is first written, in the run `exec` executes. */
export function newTask(exec: { readonly run: Pick<Run, 'id'> }, fields: NewTask): Task {
  return {
    runId: exec.run.id,
    attempt: 1,
    attempts: [],
    error: null,
    endedAt: null,
    durationMs: null,
    parentTaskId: null,
    meta: {},
    ...fields,
  };
}

export interface NewRun {
  readonly id: string;
  readonly def: AnyWorkflow;
  readonly namespace: string;
  /** Already validated by the workflow's input schema. */
  readonly input: unknown;
  readonly now: number;
  /** For a child run: its parent run, the parent's task, and the parent's depth. */
  readonly parent?: { readonly runId: string; readonly taskId: string; readonly depth: number };
  readonly tags: readonly string[];
}

/** A run record as it is first written: running, pinned to the workflow's version. */
export function newRun(fields: NewRun): Run {
  return {
    id: fields.id,
    workflow: fields.def.name,
    version: fields.def.version,
    namespace: fields.namespace,
    status: 'running',
    isPaused: false,
    pausedTaskId: null,
    pauseRequested: false,
    input: fields.input,
    error: null,
    createdAt: fields.now,
    startedAt: fields.now,
    updatedAt: fields.now,
    endedAt: null,
    parentRunId: fields.parent?.runId ?? null,
    parentTaskId: fields.parent?.taskId ?? null,
    depth: fields.parent === undefined ? 0 : fields.parent.depth + 1,
    recoveries: 0,
    tags: [...fields.tags],
  };
}
