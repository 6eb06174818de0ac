import type { LogLevel } from '@cairn/store';
import type { z } from 'zod';
import type { Duration } from './duration.js';
import type { Workflow } from './workflow.js';

/**
 * What a workflow function receives. Everything the workflow does that must survive a
 * restart goes through it: steps, waits, sleeps, children, and the recorded `now()`,
 * `random()` and `uuid()`. The function must be deterministic given what these return.
 */
export interface WorkflowContext {
  readonly runId: string;
  readonly workflow: string;
  readonly version: string;
  readonly namespace: string;
  /** Aborted when the run is cancelled. */
  readonly signal: AbortSignal;

  /**
   * Runs `fn` once (at least once, if the process dies while it runs) and checkpoints its
   * result; on replay returns the recorded result without running `fn`. A name used again
   * in the same run gets a suffix by call order: `fetch`, `fetch#2`, ...
   */
  step<T>(
    id: string,
    fn: (step: StepContext) => T | Promise<T>,
    options?: StepOptions<T>,
  ): Promise<T>;

  /**
   * Waits for input from outside (a person's approval): the task is recorded as waiting,
   * with `schema` stored as JSON schema, until `engine.resumeTask()` delivers a payload
   * that `schema` accepts. Returns the validated payload.
   */
  waitForInput<S extends z.ZodType>(id: string, options: WaitOptions<S>): Promise<z.output<S>>;

  /** A durable timer: survives restarts and ends at the same moment after one. */
  sleep(id: string, duration: Duration): Promise<void>;

  /** Starts a child run and waits for its result. */
  child<I, O>(id: string, workflow: Workflow<I, O>, input: I, options?: ChildOptions): Promise<O>;

  /** The time, recorded on first call and replayed after. */
  now(): number;
  /** A random number in [0, 1), recorded on first call and replayed after. */
  random(): number;
  /** A UUIDv7, recorded on first call and replayed after. */
  uuid(): string;

  /** Writes a log line for this run. Fail-open: a write failure is a warning, never an error. */
  log(message: string, data?: unknown, level?: LogLevel): void;
}

/** What a step function receives. */
export interface StepContext {
  readonly runId: string;
  readonly taskId: string;
  /** 1 on the first attempt; retries and recoveries count up. */
  readonly attempt: number;
  /** `runId:taskId`: the same on every attempt, for calls to APIs that deduplicate. */
  readonly idempotencyKey: string;
  /** Aborted on timeout and when the run is cancelled. */
  readonly signal: AbortSignal;
  /**
   * Adds annotations to the task record (model, tokens, anything). A function of its own,
   * so it may be taken from the context (`({ annotate }) => …`).
   */
  readonly annotate: (meta: Record<string, unknown>) => void;
}

export interface RetryOptions {
  /** Attempts in all, the first included. @default 3 */
  readonly attempts?: number;
  /** Delay before the first retry. @default '200ms' */
  readonly initialDelay?: Duration;
  /** Each delay is the previous times this. @default 2 */
  readonly factor?: number;
  /** @default '30s' */
  readonly maxDelay?: Duration;
  /** Random spread of each delay, 0 to 1 (0.2 = ±20%). @default 0.2 */
  readonly jitter?: number;
  /** Decides whether an error is worth retrying. `TerminalError` never is. */
  readonly retryable?: (error: Error) => boolean;
}

export interface StepOptions<T> {
  /** Retries: options, or a number of attempts in all. */
  readonly retry?: RetryOptions | number;
  /** Each attempt fails with `STEP_TIMEOUT` after this long (its signal is aborted). */
  readonly timeout?: Duration;
  /**
   * Annotations recorded on the task: an object, or a function of the step's result (e.g.
   * `(r) => ({ model: r.model, totalTokens: r.usage.total })`).
   */
  readonly meta?: Record<string, unknown> | ((output: T) => Record<string, unknown>);
}

export interface WaitOptions<S extends z.ZodType> {
  /** Validates the payload; stored as JSON schema so a UI can render a form. */
  readonly schema: S;
  /** How long to wait before timing out. */
  readonly timeout?: Duration;
  /**
   * On timeout: `'fail'` (default) throws `WAIT_TIMEOUT` from the wait (the run fails unless
   * the workflow catches it); `{ default: value }` returns `value` instead.
   */
  readonly onTimeout?: 'fail' | { readonly default: z.output<S> };
  /** Shown to people deciding (stored in the task's meta). */
  readonly description?: string;
}

export interface ChildOptions {
  readonly tags?: readonly string[];
}
