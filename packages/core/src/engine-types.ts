/** The engine's public option and result types. */
import type { RefusedInput, Run, RunStatus } from '@cairn/store';
import type { Store } from '@cairn/store';
import type { Clock } from './clock.js';
import type { Duration } from './duration.js';
import type { RetryOptions } from './context.js';
import type { EngineEventName, Listener } from './events.js';
import type { AnyWorkflow } from './workflow.js';

export interface EngineOptions {
  /**
   * Where runs are kept.
   * @default a `LevelStore` at the default location (`CAIRN_STORE_DIR`, else `./.cairn`)
   */
  readonly store?: Store;
  /** Every workflow (and every version of it) this engine may run or recover. */
  readonly workflows: readonly AnyWorkflow[];
  /** Steps running at once, across all runs. @default 32 */
  readonly concurrency?: number;
  /** Times recovery may restart a run before it fails with `MAX_RECOVERIES_EXCEEDED`. @default 10 */
  readonly maxRecoveries?: number;
  /** Default retry options of steps. @default 3 attempts, 200 ms doubling, ±20% jitter */
  readonly retry?: RetryOptions;
  /** The clock (tests pass a `ManualClock`). @default the system clock */
  readonly clock?: Clock;
  /** The namespace of runs started without one. @default 'default' */
  readonly namespace?: string;
  /**
   * How many runs paused waiting for input stay in memory, as they are, so that resuming one
   * needs no read of its history and no replay (the least recently paused leave first). They
   * hold their tasks' outputs; a paused run not kept is loaded when it is resumed. A store that
   * cannot know of every write to its data (a `MemoryStore`) keeps none.
   * 0 keeps none. @default 500
   */
  readonly keepPausedRuns?: number;
  /** Recover `queued` and `running` runs when the engine starts. @default true */
  readonly recover?: boolean;
  /**
   * Listeners attached before the engine opens, so the events of recovery (`run:recovered`,
   * `problem`) reach them too; `engine.on()` only sees what happens after `createEngine`.
   * @example { on: { problem: (e) => console.error(e.runId, e.error.code) } }
   */
  readonly on?: { readonly [K in EngineEventName]?: Listener<K> };
}

export interface StartOptions {
  /** The run's id. Starting again with the same id and input returns the existing run. */
  readonly id?: string;
  /** The project the run belongs to. @default the engine's namespace */
  readonly namespace?: string;
  readonly tags?: readonly string[];
}

/** A started run. */
export interface RunHandle<O = unknown> {
  readonly id: string;
  /** The run's status now. */
  status(): Promise<RunStatus>;
  /** The run's record now. */
  run(): Promise<Run>;
  /**
   * Resolves with the output once the run completes; rejects with a `CairnError` when it
   * fails (the error's code, e.g. `STEP_FAILED`, `RUN_FAILED`) or is cancelled (`CANCELLED`).
   */
  result(): Promise<O>;
}

export interface ResumeOptions {
  /** Who or what resumed it (recorded as the task's `resumedBy`). */
  readonly by?: string;
}

export interface ResumeTaskOptions extends ResumeOptions {
  /**
   * Keep the input for a task the run does not have yet even though the run is paused waiting
   * for input on other tasks (by default that is refused with `NOT_WAITING`: a misspelt task id
   * would otherwise wait forever). Use it for a wait the run reaches after the one it waits on.
   * @default false
   */
  readonly keep?: boolean;
}

export interface CloseOptions {
  /**
   * How long steps in flight may take to finish. Past it their `AbortSignal` is aborted (reason
   * `ENGINE_CLOSED`), nothing more is checkpointed for them, and the engine closes: the next
   * engine recovers their runs and runs them again. `Infinity` waits for them however long.
   * @default '5s'
   */
  readonly timeout?: Duration;
}

/** What `resumeTask` did: resumed a waiting task, or kept input for a wait not reached yet. */
export interface ResumeTaskResult {
  readonly status: 'resumed' | 'kept';
  readonly runId: string;
  readonly taskId: string;
}

export interface ListWaitingOptions {
  readonly namespace?: string;
  readonly workflow?: string;
  readonly runId?: string;
  readonly limit?: number;
  readonly cursor?: string | null;
}

/** A task waiting for input, with what a UI needs to ask for it. */
export interface WaitingTask {
  readonly runId: string;
  readonly taskId: string;
  readonly workflow: string;
  readonly version: string;
  readonly namespace: string;
  /** JSON schema of the expected input. */
  readonly schema: unknown;
  readonly description: string | null;
  readonly waitingSince: number;
  readonly timeoutAt: number | null;
  /** Input sent before the run reached the wait, that its schema refused (the wait waits on). */
  readonly refusedInput: RefusedInput | null;
}
