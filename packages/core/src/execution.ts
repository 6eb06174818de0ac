import {
  CairnError,
  IdSchema,
  TRUSTED_CHECKPOINT,
  faults,
  assertSerializable,
  usageOfStep,
  uuidv7,
  type LogLevel,
  type Run,
  type Store,
  type Task,
  type TaskKind,
} from '@cairn/store';
import { z } from 'zod';
import type { Clock } from './clock.js';
import type {
  ChildOptions,
  StepContext,
  StepOptions,
  WaitOptions,
  WorkflowContext,
} from './context.js';
import { toMs, type Duration } from './duration.js';
import { fromErrorInfo, toError, toErrorInfo } from './errors.js';
import type { Emitter } from './events.js';
import { backoff, retryPolicy, shouldRetry, type RetryPolicy } from './retry.js';
import { transition } from './status.js';
import type { AnyWorkflow, Workflow } from './workflow.js';

/** What an execution needs from its engine. */
export interface ExecutionHost {
  readonly store: Store;
  readonly clock: Clock;
  readonly events: Emitter;
  readonly retry: RetryPolicy;
  closing(): boolean;
  /** Runs `fn` through the concurrency queues. */
  schedule<T>(workflow: AnyWorkflow, fn: () => Promise<T>): Promise<T>;
  /** A task with a timer at `at` was written. */
  armTimer(at: number): void;
  /** Finds a registered workflow that a child run may use. */
  registered(def: AnyWorkflow): boolean;
  /** Starts executing a run just created (a child). */
  launch(run: Run, def: AnyWorkflow): void;
  /** Resolves with the run once it is completed, failed or cancelled. */
  waitForRun(runId: string): Promise<Run>;
  /** Cancels a run (children of a cancelled run). */
  cancelRun(runId: string): Promise<unknown>;
  /** The execution wants to be paused and dropped from memory (runs under the run's lock). */
  requestEvict(execution: RunExecution): void;
  /** The run reached a terminal status (or could not write it: `writeError`). */
  finished(execution: RunExecution, writeError?: unknown): void;
  stepStarted(): void;
  stepEnded(): void;
}

interface PendingWait {
  readonly kind: 'wait';
  readonly taskId: string;
  readonly schema: z.ZodType;
  readonly onTimeout: 'fail' | { readonly default: unknown };
  resolve(value: unknown): void;
  reject(error: unknown): void;
}

interface PendingSleep {
  readonly kind: 'sleep';
  readonly taskId: string;
  resolve(): void;
  reject(error: unknown): void;
}

interface PendingChild {
  readonly kind: 'child';
  readonly taskId: string;
  reject(error: unknown): void;
}

type Pending = PendingWait | PendingSleep | PendingChild;

interface Held {
  readonly taskId: string;
  readonly isNew: boolean;
  resolve(): void;
  reject(error: unknown): void;
}

type State = 'active' | 'evicted' | 'finished';

type AttemptOutcome<T> =
  | { readonly ok: true; readonly started: true; readonly value: T }
  | { readonly ok: false; readonly started: boolean; readonly error: Error };

const FINAL_TASK = new Set(['completed', 'failed', 'timed_out', 'cancelled']);
const NAME_RE = /^[^\x00-\x1f\x7f#$][^\x00-\x1f\x7f#]{0,99}$/;

function typeError(message: string): TypeError {
  return Object.assign(new TypeError(message), { code: 'INVALID_ARGUMENT' });
}

function checkName(what: string, name: unknown): string {
  if (typeof name !== 'string') throw typeError(`${what} id must be a string`);
  if (!NAME_RE.test(name)) {
    throw new CairnError(
      'INVALID_ARGUMENT',
      `${what} id "${name}" must be 1-100 characters, not start with "$", and contain no "#" or control characters`,
    );
  }
  return name;
}

/**
 * One run being executed in memory: it runs the workflow function, answers its calls from
 * history where the run has been before (replay), executes and checkpoints what is new,
 * and decides when the run is paused.
 */
export class RunExecution {
  run: Run;
  readonly def: AnyWorkflow;
  readonly #host: ExecutionHost;
  /** Every task of the run: loaded history, then what this execution adds. */
  readonly tasks = new Map<string, Task>();
  /**
   * History tasks the function has not asked for again yet: those with an outcome, and those
   * in flight when the run stopped (a replay that never reaches them is not the same run).
   */
  readonly #unconsumed = new Set<string>();
  readonly #names = new Map<string, number>();
  /** Tasks whose last checkpoint failed: written again, as failed, when the run ends. */
  readonly #unwritten = new Set<Task>();
  readonly #pending = new Map<string, Pending>();
  /** Input that arrived for a task not reached yet (mirrors the store's inbox). */
  readonly #inbox = new Map<string, unknown>();
  #held: Held[] = [];
  #nextSeq = 0;
  #group: string | null = null;
  #inflight = 0;
  #pins = 0;
  #progress = 0;
  #judgedProgress = -1;
  #checkScheduled = false;
  #quiet: (() => void)[] = [];
  #state: State = 'active';
  readonly #abort = new AbortController();
  readonly #ctx: WorkflowContext;

  constructor(host: ExecutionHost, def: AnyWorkflow, run: Run, history: readonly Task[]) {
    this.#host = host;
    this.def = def;
    this.run = run;
    for (const task of history) {
      this.tasks.set(task.taskId, task);
      if (!task.taskId.startsWith('$')) this.#unconsumed.add(task.taskId);
      this.#nextSeq = Math.max(this.#nextSeq, task.seq + 1);
    }
    this.#ctx = this.#makeContext();
  }

  get state(): State {
    return this.#state;
  }

  get id(): string {
    return this.run.id;
  }

  /** Starts (or replays) the workflow function. */
  start(): void {
    const input = this.run.input as never;
    void (async () => {
      let output: unknown;
      try {
        output = await this.def.run(this.#ctx, input);
      } catch (error) {
        await this.#endWithError(error);
        return;
      }
      await this.#complete(output);
    })();
  }

  // --- the context -------------------------------------------------------------------------

  #makeContext(): WorkflowContext {
    // eslint-disable-next-line @typescript-eslint/no-this-alias -- getters need the execution
    const self = this;
    return {
      get runId() {
        return self.run.id;
      },
      get workflow() {
        return self.run.workflow;
      },
      get version() {
        return self.run.version;
      },
      get namespace() {
        return self.run.namespace;
      },
      get signal() {
        return self.#abort.signal;
      },
      step: (id, fn, options) => this.#step(id, fn, options),
      waitForInput: (id, options) => this.#waitForInput(id, options),
      sleep: (id, duration) => this.#sleep(id, duration),
      child: (id, wf, input, options) => this.#child(id, wf, input, options),
      now: () => this.#recorded('now', () => this.#host.clock.now()),
      random: () => this.#recorded('random', () => Math.random()),
      uuid: () => this.#recorded('uuid', () => uuidv7(this.#host.clock.now())),
      log: (message, data, level) => this.#log(message, data, level),
    };
  }

  /** Gives a call its task id (name plus call-order suffix), seq and history, if any. */
  #claim(
    name: string,
    kind: TaskKind,
  ): { taskId: string; seq: number; hist: Task | undefined; group: string } {
    this.#assertLive();
    const count = (this.#names.get(name) ?? 0) + 1;
    this.#names.set(name, count);
    const taskId = count === 1 ? name : `${name}#${count}`;
    const hist = this.tasks.get(taskId);
    this.#progress++;
    if (hist && hist.kind !== kind) {
      throw this.#nonDeterminism(`${hist.kind} "${taskId}"`, `${kind} "${taskId}"`);
    }
    if (hist && this.#unconsumed.delete(taskId) && this.#unconsumed.size === 0) this.#releaseHeld();
    const seq = hist ? hist.seq : this.#nextSeq++;
    if (this.#group === null) {
      this.#group = `g${seq}`;
      queueMicrotask(() => (this.#group = null));
    }
    return { taskId, seq, hist, group: hist?.group ?? this.#group };
  }

  #nonDeterminism(expected: string, found: string): CairnError {
    const error = new CairnError(
      'NON_DETERMINISM',
      `Replay of run ${this.run.id} expected ${expected} but the workflow called ${found}. The workflow code changed in a way that does not match the run's history; register the old version to finish this run.`,
      { details: { runId: this.run.id, expected, found } },
    );
    void this.#fatal(error);
    return error;
  }

  #assertLive(): void {
    if (this.#state === 'finished' && this.run.status === 'cancelled') {
      throw new CairnError('CANCELLED', `Run ${this.run.id} was cancelled`);
    }
    if (this.#state !== 'active') {
      throw new CairnError('CANCELLED', `Run ${this.run.id} is no longer executing here`);
    }
  }

  /**
   * Holds a call while the run must not start new work: an operator pause, the engine
   * closing, or (for a call history does not have) replay still owing recorded results.
   */
  async #gate(taskId: string, isNew: boolean, pausable = true): Promise<void> {
    for (;;) {
      this.#assertLive();
      const hold =
        (pausable && this.run.pauseRequested) ||
        this.#host.closing() ||
        (isNew && this.#unconsumed.size > 0);
      if (!hold) return;
      await new Promise<void>((resolve, reject) => {
        this.#held.push({ taskId, isNew, resolve, reject });
        this.#scheduleCheck();
      });
    }
  }

  #releaseHeld(): void {
    const held = this.#held;
    this.#held = [];
    for (const h of held) h.resolve();
  }

  // --- steps ---------------------------------------------------------------------------------

  async #step<T>(
    name: string,
    fn: (step: StepContext) => T | Promise<T>,
    options: StepOptions<T> = {},
  ): Promise<T> {
    checkName('step', name);
    if (typeof fn !== 'function') throw typeError('step function must be a function');
    if (typeof options !== 'object' || options === null)
      throw typeError('step options must be an object');
    const policy = retryPolicy(options.retry, this.#host.retry);
    const timeout = options.timeout === undefined ? undefined : toMs(options.timeout, 'timeout');
    if (
      options.meta !== undefined &&
      (typeof options.meta !== 'object' || options.meta === null) &&
      typeof options.meta !== 'function'
    ) {
      throw typeError('step meta must be an object or a function');
    }
    if (typeof options.meta === 'object') assertSerializable(options.meta, 'step meta');
    const { taskId, seq, hist, group } = this.#claim(name, 'step');
    if (hist && FINAL_TASK.has(hist.status)) return this.#replayed(hist) as T;
    await this.#gate(taskId, hist === undefined);
    const task: Task = hist
      ? { ...hist, status: 'running', error: null, endedAt: null, durationMs: null }
      : {
          runId: this.run.id,
          taskId,
          kind: 'step',
          seq,
          status: 'running',
          attempt: 0,
          attempts: [],
          error: null,
          startedAt: this.#host.clock.now(),
          endedAt: null,
          durationMs: null,
          group,
          parentTaskId: null,
          meta:
            options.meta !== undefined && typeof options.meta === 'object'
              ? { ...options.meta }
              : {},
        };
    this.tasks.set(taskId, task);
    this.#inflight++;
    try {
      return await this.#execute(task, fn, options, policy, timeout);
    } finally {
      this.#inflight--;
      this.#scheduleCheck();
    }
  }

  #replayed(task: Task): unknown {
    if (task.status === 'completed') return task.output;
    if (task.status === 'cancelled')
      throw new CairnError('CANCELLED', `Task ${task.taskId} was cancelled`);
    const fallback =
      task.kind === 'child'
        ? 'CHILD_FAILED'
        : task.kind === 'wait'
          ? 'WAIT_TIMEOUT'
          : 'STEP_FAILED';
    throw fromErrorInfo(task.error ?? { message: `Task ${task.taskId} failed` }, fallback);
  }

  async #execute<T>(
    task: Task,
    fn: (step: StepContext) => T | Promise<T>,
    options: StepOptions<T>,
    policy: RetryPolicy,
    timeout: number | undefined,
  ): Promise<T> {
    let attempt = task.attempt + 1;
    for (;;) {
      const outcome = await this.#host.schedule(this.def, () =>
        this.#attempt(task, attempt, fn, timeout),
      );
      try {
        const retry = await this.#settleAttempt(task, attempt, outcome, options, policy);
        if (!retry) return (outcome as { value: T }).value;
      } finally {
        if (outcome.started) this.#host.stepEnded();
      }
      await this.#delay(backoff(policy, attempt));
      await this.#gate(task.taskId, false);
      attempt++;
    }
  }

  /**
   * Checkpoints an attempt's outcome. Returns false when the step completed, true when it
   * should be retried; throws when it failed for good.
   */
  async #settleAttempt<T>(
    task: Task,
    attempt: number,
    outcome: AttemptOutcome<T>,
    options: StepOptions<T>,
    policy: RetryPolicy,
  ): Promise<boolean> {
    {
      faults.hit('step.after-run', task);
      if (this.#state !== 'active') throw new CairnError('CANCELLED', `Run ${this.run.id} stopped`);
      const now = this.#host.clock.now();
      const record = task.attempts[task.attempts.length - 1]!;
      record.endedAt = now;
      if (outcome.ok) {
        let meta = task.meta;
        try {
          assertSerializable(outcome.value, `the result of step "${task.taskId}"`);
          if (typeof options.meta === 'function') {
            const extra = options.meta(outcome.value);
            assertSerializable(extra, `the meta of step "${task.taskId}"`);
            meta = { ...meta, ...extra };
          }
        } catch (error) {
          return this.#failStep(task, toError(error), false);
        }
        const running = { ...task };
        task.status = 'completed';
        task.output = outcome.value;
        task.meta = meta;
        task.endedAt = now;
        task.durationMs = elapsed(task.startedAt, now);
        let refused: unknown;
        // A result the store refuses (too large) fails the step, as one it cannot serialise does.
        // The step's usage (model, tokens) is added to the store's totals in the same batch.
        const usage = [usageOfStep(this.run, task)];
        await this.#write({ tasks: [task], usage }, (error) => {
          refused = error;
          delete task.output;
          Object.assign(task, running);
        }).catch((error: unknown) => {
          if (refused === undefined) throw error;
        });
        if (refused !== undefined) return this.#failStep(task, toError(refused), false);
        faults.hit('step.after-commit', task);
        this.#host.events.emit('task:completed', {
          runId: this.run.id,
          taskId: task.taskId,
          kind: 'step',
          durationMs: task.durationMs,
        });
        return false;
      }
      const error = outcome.error;
      record.error = toErrorInfo(error);
      const retry = !this.#abort.signal.aborted && shouldRetry(policy, attempt, error);
      if (!retry) return this.#failStep(task, error, true);
      this.#host.events.emit('task:failed', {
        runId: this.run.id,
        taskId: task.taskId,
        kind: 'step',
        error: record.error,
        willRetry: true,
      });
      return true;
    }
  }

  async #failStep(task: Task, error: Error, recorded: boolean): Promise<never> {
    const now = this.#host.clock.now();
    const info = toErrorInfo(error);
    if (!recorded) {
      const last = task.attempts[task.attempts.length - 1];
      if (last) last.error = info;
    }
    task.status = 'failed';
    task.error = info;
    task.endedAt = now;
    task.durationMs = elapsed(task.startedAt, now);
    await this.#write({ tasks: [task] });
    this.#host.events.emit('task:failed', {
      runId: this.run.id,
      taskId: task.taskId,
      kind: 'step',
      error: info,
      willRetry: false,
    });
    const thrown = fromErrorInfo(info, 'STEP_FAILED');
    (thrown as { cause?: unknown }).cause = error;
    throw thrown;
  }

  /** One attempt of a step, inside the queue. Never throws: the outcome says what happened. */
  async #attempt<T>(
    task: Task,
    attempt: number,
    fn: (step: StepContext) => T | Promise<T>,
    timeout: number | undefined,
  ): Promise<AttemptOutcome<T>> {
    if (this.#state !== 'active') {
      return { ok: false, started: false, error: new CairnError('CANCELLED', 'Run stopped') };
    }
    const clock = this.#host.clock;
    const startedAt = clock.now();
    task.attempt = attempt;
    task.attempts.push({ attempt, startedAt, endedAt: null, error: null });
    // The "started" marker: not synced on its own, and replaced in the same batch by the
    // result when the step finishes quickly.
    this.#host.store[TRUSTED_CHECKPOINT]({ tasks: [task] }, false).catch((cause: unknown) => {
      this.#host.events.emit('warning', {
        message: 'A step start marker could not be written',
        runId: this.run.id,
        cause,
      });
    });
    if (this.#host.events.has('task:started')) {
      this.#host.events.emit('task:started', {
        runId: this.run.id,
        taskId: task.taskId,
        kind: 'step',
        attempt,
      });
    }
    this.#host.stepStarted();
    // The attempt's abort controller is made only when something needs it: a timeout, a
    // step function that reads its signal, or an asynchronous step (cancellation aborts it).
    let controller: AbortController | null = null;
    const runSignal = this.#abort.signal;
    let settled = false;
    const ensure = (): AbortController => {
      if (controller === null) {
        controller = new AbortController();
        if (runSignal.aborted && !settled) controller.abort(runSignal.reason);
      }
      return controller;
    };
    let timer: unknown;
    let onRunAbort: (() => void) | null = null;
    try {
      const stepContext: StepContext = {
        runId: this.run.id,
        taskId: task.taskId,
        attempt,
        idempotencyKey: `${this.run.id}:${task.taskId}`,
        get signal() {
          return ensure().signal;
        },
        annotate: (meta) => {
          if (typeof meta !== 'object' || meta === null)
            throw typeError('annotate takes an object');
          assertSerializable(meta, 'meta');
          task.meta = { ...task.meta, ...meta };
        },
      };
      faults.hit('step.before-run', task);
      const result = fn(stepContext);
      if (!isThenable(result)) return { ok: true, started: true, value: result };
      // An asynchronous step races its timeout and the run's cancellation.
      const ac = ensure();
      const stopped = new Promise<never>((_, reject) => {
        if (timeout !== undefined) {
          timer = clock.setTimeout(() => {
            const error = new CairnError(
              'STEP_TIMEOUT',
              `Step "${task.taskId}" timed out after ${timeout} ms`,
              {
                details: { taskId: task.taskId, timeoutMs: timeout },
              },
            );
            ac.abort(error);
            reject(error);
          }, timeout);
        }
        onRunAbort = (): void => ac.abort(runSignal.reason);
        runSignal.addEventListener('abort', onRunAbort, { once: true });
        const onAbort = (): void => {
          const reason: unknown = ac.signal.reason;
          reject(
            reason instanceof Error ? reason : new CairnError('CANCELLED', 'The step was aborted'),
          );
        };
        if (ac.signal.aborted) onAbort();
        else ac.signal.addEventListener('abort', onAbort, { once: true });
      });
      const value = await Promise.race([result, stopped]);
      return { ok: true, started: true, value };
    } catch (error) {
      return { ok: false, started: true, error: toError(error) };
    } finally {
      settled = true;
      if (timer !== undefined) clock.clearTimeout(timer);
      if (onRunAbort !== null) runSignal.removeEventListener('abort', onRunAbort);
    }
  }

  #delay(ms: number): Promise<void> {
    return new Promise((resolve, reject) => {
      const handle = this.#host.clock.setTimeout(() => {
        this.#abort.signal.removeEventListener('abort', onAbort);
        resolve();
      }, ms);
      const onAbort = (): void => {
        this.#host.clock.clearTimeout(handle);
        reject(new CairnError('CANCELLED', `Run ${this.run.id} was cancelled`));
      };
      this.#abort.signal.addEventListener('abort', onAbort, { once: true });
    });
  }

  // --- recorded values -----------------------------------------------------------------------

  #recorded<T>(kind: 'now' | 'random' | 'uuid', make: () => T): T {
    const { taskId, seq, hist, group } = this.#claim(`$${kind}`, 'step');
    if (hist && hist.status === 'completed') return hist.output as T;
    const value = make();
    const now = this.#host.clock.now();
    const task: Task = {
      runId: this.run.id,
      taskId,
      kind: 'step',
      seq,
      status: 'completed',
      attempt: 1,
      attempts: [],
      output: value,
      error: null,
      startedAt: now,
      endedAt: now,
      durationMs: 0,
      group,
      parentTaskId: null,
      meta: { recorded: kind },
    };
    this.tasks.set(taskId, task);
    // Not synced on its own: anything that depends on the value is written after it.
    this.#host.store[TRUSTED_CHECKPOINT]({ tasks: [task] }, false).catch((error: unknown) => {
      void this.#fatal(error);
    });
    return value;
  }

  #log(message: unknown, data?: unknown, level: LogLevel = 'info'): void {
    if (typeof message !== 'string') throw typeError('log message must be a string');
    if (this.#unconsumed.size > 0 || this.#state !== 'active') return; // replaying: already logged
    try {
      faults.hit('telemetry.write', message);
    } catch (cause) {
      this.#host.events.emit('warning', {
        message: 'A log line could not be written',
        runId: this.run.id,
        cause,
      });
      return;
    }
    this.#host.store
      .appendLogs([
        {
          runId: this.run.id,
          at: this.#host.clock.now(),
          level,
          message,
          taskId: null,
          ...(data === undefined ? {} : { data }),
        },
      ])
      .catch((cause: unknown) => {
        this.#host.events.emit('warning', {
          message: 'A log line could not be written',
          runId: this.run.id,
          cause,
        });
      });
  }

  // --- waits ---------------------------------------------------------------------------------

  async #waitForInput<S extends z.ZodType>(
    name: string,
    options: WaitOptions<S>,
  ): Promise<z.output<S>> {
    checkName('wait', name);
    if (typeof options !== 'object' || options === null)
      throw typeError('wait options must be an object');
    const schema = options.schema;
    if (typeof schema !== 'object' || schema === null || typeof schema.safeParse !== 'function') {
      throw typeError('wait options.schema must be a zod schema');
    }
    const timeoutMs = options.timeout === undefined ? undefined : toMs(options.timeout, 'timeout');
    if (options.description !== undefined && typeof options.description !== 'string')
      throw typeError('wait options.description must be a string');
    const onTimeout = options.onTimeout ?? 'fail';
    if (
      onTimeout !== 'fail' &&
      (typeof onTimeout !== 'object' || onTimeout === null || !('default' in onTimeout))
    ) {
      throw typeError("wait options.onTimeout must be 'fail' or { default: value }");
    }
    if (onTimeout !== 'fail')
      assertSerializable(onTimeout.default, 'wait options.onTimeout.default');
    const { taskId, seq, hist, group } = this.#claim(name, 'wait');
    if (hist && FINAL_TASK.has(hist.status)) {
      if (hist.status === 'completed')
        return this.#parse(schema, hist.output, taskId) as z.output<S>;
      if (hist.status === 'timed_out' && hist.error === null) return hist.output as z.output<S>;
      return this.#replayed(hist) as never;
    }
    // A wait already recorded starts nothing: an operator pause does not hold it, so input
    // can still be delivered to it (the run stays paused until `resume`).
    await this.#gate(taskId, hist === undefined, hist === undefined);
    this.#inflight++;
    try {
      let task = hist;
      if (!task) {
        const now = this.#host.clock.now();
        task = {
          runId: this.run.id,
          taskId,
          kind: 'wait',
          seq,
          status: 'waiting',
          attempt: 1,
          attempts: [],
          error: null,
          startedAt: now,
          endedAt: null,
          durationMs: null,
          group,
          parentTaskId: null,
          meta: {
            onTimeout: onTimeout === 'fail' ? 'fail' : 'default',
            ...(options.description === undefined ? {} : { description: options.description }),
          },
          schema: jsonSchema(schema),
          timeoutAt: timeoutMs === undefined ? null : now + timeoutMs,
          resumedBy: null,
        };
        this.tasks.set(taskId, task);
      }
      // Input sent before the wait was reached (or, for a recorded wait, before a crash
      // let it be delivered) answers it now.
      const early = await this.#takeEarlyInput(taskId);
      if (early.found) {
        const parsed = schema.safeParse(early.data);
        if (parsed.success) {
          this.#completeWait(task, early.data, 'inbox');
          await this.#write({ tasks: [task], inboxTaken: [{ runId: this.run.id, taskId }] });
          return parsed.data;
        }
        this.#host.events.emit('warning', {
          message: `Input sent early for "${taskId}" does not match its schema and was dropped`,
          runId: this.run.id,
          cause: parsed.error,
        });
        await this.#write({ tasks: [task], inboxTaken: [{ runId: this.run.id, taskId }] });
      } else if (!hist) {
        await this.#write({ tasks: [task] });
      }
      if (!hist) {
        this.#host.events.emit('task:waiting', {
          runId: this.run.id,
          taskId,
          schema: task.schema,
          timeoutAt: task.timeoutAt ?? null,
        });
      }
      const promise = new Promise<unknown>((resolve, reject) => {
        this.#pending.set(taskId, { kind: 'wait', taskId, schema, onTimeout, resolve, reject });
      });
      if (task.timeoutAt !== null && task.timeoutAt !== undefined) {
        if (task.timeoutAt <= this.#host.clock.now()) this.#fireSoon(taskId);
        else this.#host.armTimer(task.timeoutAt);
      }
      // Input kept for this wait while it was being written answers it now.
      if (this.#inbox.has(taskId)) this.#answerKept(taskId);
      this.#inflight--;
      this.#scheduleCheck();
      try {
        return (await promise) as z.output<S>;
      } finally {
        this.#inflight++;
      }
    } finally {
      this.#inflight--;
      this.#scheduleCheck();
    }
  }

  /** Answers a wait just set up with the input kept for it meanwhile (dropped if invalid). */
  #answerKept(taskId: string): void {
    const data = this.#inbox.get(taskId);
    this.#inbox.delete(taskId);
    const pending = this.#pending.get(taskId) as PendingWait;
    const parsed = pending.schema.safeParse(data);
    const warn = (message: string, cause: unknown): void =>
      this.#host.events.emit('warning', { message, runId: this.run.id, cause });
    if (!parsed.success) {
      warn(
        `Input sent early for "${taskId}" does not match its schema and was dropped`,
        parsed.error,
      );
      this.#write({ inboxTaken: [{ runId: this.run.id, taskId }] }).catch(() => undefined);
      return;
    }
    this.resumeWaits(new Map([[taskId, data]]), 'inbox', true).catch((cause: unknown) =>
      warn(`Input kept for "${taskId}" could not be delivered`, cause),
    );
  }

  #parse(schema: z.ZodType, data: unknown, taskId: string): unknown {
    const parsed = schema.safeParse(data);
    if (parsed.success) return parsed.data;
    throw this.#nonDeterminism(
      `input for "${taskId}" that its schema accepts`,
      'a schema that refuses the recorded input',
    );
  }

  async #takeEarlyInput(taskId: string): Promise<{ found: boolean; data?: unknown }> {
    if (this.#inbox.has(taskId)) {
      const data = this.#inbox.get(taskId);
      this.#inbox.delete(taskId);
      return { found: true, data };
    }
    const entry = await this.#host.store.getInbox(this.run.id, taskId);
    if (this.#inbox.has(taskId)) {
      const data = this.#inbox.get(taskId);
      this.#inbox.delete(taskId);
      return { found: true, data };
    }
    return entry === undefined ? { found: false } : { found: true, data: entry.data };
  }

  #completeWait(task: Task, data: unknown, by: string | null): void {
    const now = this.#host.clock.now();
    task.status = 'completed';
    task.output = data;
    task.resumedBy = by;
    task.endedAt = now;
    task.durationMs = elapsed(task.startedAt, now);
  }

  /** Whether the task is a wait the run is waiting on right now. */
  isWaiting(taskId: string): boolean {
    return this.#pending.get(taskId)?.kind === 'wait';
  }

  /** Waits the run is waiting on, by seq. */
  waitingTaskIds(): string[] {
    return [...this.#pending.values()]
      .filter((p) => p.kind === 'wait')
      .map((p) => p.taskId)
      .sort((a, b) => this.tasks.get(a)!.seq - this.tasks.get(b)!.seq);
  }

  /**
   * Validates payloads for waiting tasks with their live schemas, all before anything is
   * written: one invalid payload refuses them all with `INVALID_RESUME_INPUT`.
   */
  validateResume(payloads: ReadonlyMap<string, unknown>): void {
    const problems: { taskId: string; issues: unknown }[] = [];
    for (const [taskId, data] of payloads) {
      const pending = this.#pending.get(taskId);
      if (!pending || pending.kind !== 'wait') {
        throw new CairnError(
          'NOT_WAITING',
          `Task "${taskId}" of run ${this.run.id} is not waiting for input`,
          {
            details: { runId: this.run.id, taskId },
          },
        );
      }
      const parsed = pending.schema.safeParse(data);
      if (!parsed.success) problems.push({ taskId, issues: parsed.error.issues });
      else assertSerializable(data, 'data');
    }
    if (problems.length > 0) {
      throw new CairnError(
        'INVALID_RESUME_INPUT',
        `The input for ${problems.map((p) => `"${p.taskId}"`).join(', ')} does not match the schema; the run is unchanged`,
        {
          details: {
            runId: this.run.id,
            issues: problems.length === 1 ? problems[0]!.issues : problems,
          },
        },
      );
    }
  }

  /** Resumes waiting tasks with already validated payloads, in one checkpoint. */
  async resumeWaits(
    payloads: ReadonlyMap<string, unknown>,
    by: string | null,
    /** The payloads were kept in the inbox: their entries are taken in the same checkpoint. */
    fromInbox = false,
  ): Promise<void> {
    this.validateResume(payloads);
    // Before anything changes in memory: a fault here leaves the waits waiting.
    faults.hit(
      'resume.before-commit',
      [...payloads.keys()].map((taskId) => this.tasks.get(taskId)),
    );
    const tasks: Task[] = [];
    const settle: (() => void)[] = [];
    const before: { task: Task; pending: PendingWait }[] = [];
    const runBefore = this.run;
    for (const [taskId, data] of payloads) {
      const pending = this.#pending.get(taskId) as PendingWait;
      this.#pending.delete(taskId);
      const task = this.tasks.get(taskId)!;
      before.push({ task: { ...task }, pending });
      this.#completeWait(task, data, by);
      tasks.push(task);
      const parsed = pending.schema.safeParse(data);
      settle.push(() => pending.resolve(parsed.success ? parsed.data : data));
    }
    const resumed = this.run.status === 'paused' && !this.run.pauseRequested;
    if (resumed) this.run = transition(this.run, 'running', this.#host.clock.now());
    this.#inflight++;
    try {
      await this.#write(
        {
          tasks,
          ...(resumed ? { runs: [this.run] } : {}),
          ...(fromInbox
            ? {
                inboxTaken: [...payloads.keys()].map((taskId) => ({ runId: this.run.id, taskId })),
              }
            : {}),
        },
        // The store wrote nothing (e.g. the payload is too large): the waits wait on.
        () => {
          for (const b of before) {
            this.tasks.set(b.task.taskId, b.task);
            this.#pending.set(b.task.taskId, b.pending);
          }
          this.run = runBefore;
        },
      );
    } finally {
      this.#inflight--;
    }
    for (const taskId of payloads.keys()) {
      this.#host.events.emit('task:resumed', { runId: this.run.id, taskId, by });
    }
    if (resumed)
      this.#host.events.emit('run:resumed', { runId: this.run.id, workflow: this.run.workflow });
    for (const s of settle) s();
    this.#scheduleCheck();
  }

  /** Keeps input for a task the function has not reached yet. */
  keepEarlyInput(taskId: string, data: unknown): void {
    this.#inbox.set(taskId, data);
  }

  // --- sleeps --------------------------------------------------------------------------------

  async #sleep(name: string, duration: Duration): Promise<void> {
    checkName('sleep', name);
    const ms = toMs(duration, 'duration');
    const { taskId, seq, hist, group } = this.#claim(name, 'sleep');
    if (hist && FINAL_TASK.has(hist.status)) {
      this.#replayed(hist);
      return;
    }
    await this.#gate(taskId, hist === undefined);
    this.#inflight++;
    try {
      let task = hist;
      if (!task) {
        const now = this.#host.clock.now();
        task = {
          runId: this.run.id,
          taskId,
          kind: 'sleep',
          seq,
          status: 'sleeping',
          attempt: 1,
          attempts: [],
          error: null,
          startedAt: now,
          endedAt: null,
          durationMs: null,
          group,
          parentTaskId: null,
          meta: { durationMs: ms },
          wakeAt: now + ms,
        };
        this.tasks.set(taskId, task);
        await this.#write({ tasks: [task] });
      }
      const wakeAt = task.wakeAt ?? 0;
      const promise = new Promise<void>((resolve, reject) => {
        this.#pending.set(taskId, { kind: 'sleep', taskId, resolve, reject });
      });
      if (wakeAt <= this.#host.clock.now()) this.#fireSoon(taskId);
      else this.#host.armTimer(wakeAt);
      this.#inflight--;
      try {
        await promise;
      } finally {
        this.#inflight++;
      }
    } finally {
      this.#inflight--;
      this.#scheduleCheck();
    }
  }

  #fireSoon(taskId: string): void {
    this.fireTimer(taskId).catch(() => undefined);
  }

  /**
   * A timer fell due: a sleep ends, or a wait times out (returning its default or failing
   * with `WAIT_TIMEOUT`). The outcome is checkpointed before the function sees it.
   */
  async fireTimer(taskId: string): Promise<boolean> {
    const pending = this.#pending.get(taskId);
    const task = this.tasks.get(taskId);
    if (!pending || !task || this.#state !== 'active') return false;
    const now = this.#host.clock.now();
    if (pending.kind === 'sleep') {
      if ((task.wakeAt ?? 0) > now) return false;
      this.#pending.delete(taskId);
      task.status = 'completed';
      task.endedAt = now;
      task.durationMs = elapsed(task.startedAt, now);
      this.#inflight++;
      try {
        await this.#write({ tasks: [task] });
      } finally {
        this.#inflight--;
      }
      this.#host.events.emit('task:completed', {
        runId: this.run.id,
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
    this.#pending.delete(taskId);
    task.status = 'timed_out';
    task.endedAt = now;
    task.durationMs = elapsed(task.startedAt, now);
    let error: CairnError | null = null;
    if (pending.onTimeout === 'fail') {
      error = new CairnError('WAIT_TIMEOUT', `Nobody answered "${taskId}" in time`, {
        details: { runId: this.run.id, taskId, timeoutAt: task.timeoutAt },
      });
      task.error = toErrorInfo(error);
    } else {
      task.output = pending.onTimeout.default;
    }
    const resumed = this.run.status === 'paused' && !this.run.pauseRequested;
    if (resumed) this.run = transition(this.run, 'running', now);
    this.#inflight++;
    try {
      await this.#write({ tasks: [task], ...(resumed ? { runs: [this.run] } : {}) });
    } finally {
      this.#inflight--;
    }
    this.#host.events.emit('task:timed-out', { runId: this.run.id, taskId, kind: 'wait' });
    if (resumed)
      this.#host.events.emit('run:resumed', { runId: this.run.id, workflow: this.run.workflow });
    if (error) pending.reject(error);
    else pending.resolve(task.output);
    return true;
  }

  // --- children ------------------------------------------------------------------------------

  async #child<I, O>(
    name: string,
    wf: Workflow<I, O>,
    input: I,
    options: ChildOptions = {},
  ): Promise<O> {
    checkName('child', name);
    if (typeof wf !== 'object' || wf === null || typeof wf.name !== 'string') {
      throw typeError('child workflow must be a workflow definition');
    }
    if (!this.#host.registered(wf)) {
      throw new CairnError(
        'WORKFLOW_NOT_REGISTERED',
        `Workflow "${wf.name}" version ${wf.version} is not registered with this engine`,
        { details: { workflow: wf.name, version: wf.version } },
      );
    }
    if (typeof options !== 'object' || options === null)
      throw typeError('child options must be an object');
    if (options.tags !== undefined) {
      const tags: unknown = options.tags;
      if (!Array.isArray(tags) || tags.some((t) => typeof t !== 'string'))
        throw typeError('child options.tags must be an array of strings');
      if (tags.length > 64 || (tags as string[]).some((t) => t.length > 200)) {
        throw new CairnError(
          'INVALID_ARGUMENT',
          'child options.tags: at most 64 tags of at most 200 characters',
        );
      }
    }
    const { taskId, seq, hist, group } = this.#claim(name, 'child');
    if (hist && FINAL_TASK.has(hist.status)) return this.#replayed(hist) as O;
    await this.#gate(taskId, hist === undefined);
    this.#inflight++;
    let task = hist;
    try {
      if (!task) {
        const parsed = wf.input.safeParse(input);
        if (!parsed.success) {
          throw new CairnError(
            'INVALID_INPUT',
            `The input of child "${taskId}" does not match ${wf.name}'s schema`,
            {
              details: { issues: parsed.error.issues },
            },
          );
        }
        assertSerializable(parsed.data, 'input');
        const now = this.#host.clock.now();
        const childRunId = uuidv7(now);
        const tags = [...(options.tags ?? [])].map(String);
        const childRun: Run = {
          id: childRunId,
          workflow: wf.name,
          version: wf.version,
          namespace: this.run.namespace,
          status: 'running',
          isPaused: false,
          pausedTaskId: null,
          pauseRequested: false,
          input: parsed.data,
          error: null,
          createdAt: now,
          startedAt: now,
          updatedAt: now,
          endedAt: null,
          parentRunId: this.run.id,
          parentTaskId: taskId,
          depth: this.run.depth + 1,
          recoveries: 0,
          tags,
        };
        task = {
          runId: this.run.id,
          taskId,
          kind: 'child',
          seq,
          status: 'running',
          attempt: 1,
          attempts: [],
          error: null,
          startedAt: now,
          endedAt: null,
          durationMs: null,
          group,
          parentTaskId: null,
          meta: { workflow: wf.name, version: wf.version },
          childRunId,
        };
        this.tasks.set(taskId, task);
        await this.#write({ runs: [childRun], tasks: [task] });
        this.#host.events.emit('task:started', {
          runId: this.run.id,
          taskId,
          kind: 'child',
          attempt: 1,
        });
        this.#host.launch(childRun, wf);
      }
      const childRunId = task.childRunId!;
      const cancelled = new Promise<never>((_, reject) => {
        this.#pending.set(taskId, { kind: 'child', taskId, reject });
      });
      this.#inflight--;
      this.#scheduleCheck();
      let child: Run;
      try {
        child = await Promise.race([this.#host.waitForRun(childRunId), cancelled]);
      } finally {
        this.#inflight++;
        this.#pending.delete(taskId);
      }
      this.#assertLive();
      const now = this.#host.clock.now();
      task.endedAt = now;
      task.durationMs = elapsed(task.startedAt, now);
      if (child.status === 'completed') {
        task.status = 'completed';
        task.output = child.output;
      } else {
        task.status = child.status === 'cancelled' ? 'cancelled' : 'failed';
        task.error = child.error ?? { message: `Child run ${childRunId} was ${child.status}` };
        if (task.error.code !== 'CANCELLED' && child.status === 'failed') {
          task.error = {
            ...task.error,
            code: 'CHILD_FAILED',
            details: { ...task.error.details, childError: task.error },
          };
        }
      }
      await this.#write({ tasks: [task] });
      if (task.status === 'completed') {
        this.#host.events.emit('task:completed', {
          runId: this.run.id,
          taskId,
          kind: 'child',
          durationMs: task.durationMs,
        });
        return child.output as O;
      }
      this.#host.events.emit('task:failed', {
        runId: this.run.id,
        taskId,
        kind: 'child',
        error: task.error!,
        willRetry: false,
      });
      return this.#replayed(task) as O;
    } finally {
      this.#inflight--;
      this.#scheduleCheck();
    }
  }

  // --- writes, pause and the end of the run ---------------------------------------------------

  /** A durable checkpoint; a failure stops the run (fail closed). */
  async #write(
    checkpoint: Parameters<Store['checkpoint']>[0],
    onRefused?: (error: unknown) => void,
  ): Promise<void> {
    try {
      await this.#host.store[TRUSTED_CHECKPOINT](checkpoint, true);
    } catch (error) {
      if (onRefused && refusedBeforeWriting(error)) {
        // Nothing was written (e.g. a value too large to store): the caller undoes its change
        // and the run goes on as it was.
        onRefused(error);
        throw error;
      }
      // The outcome of these tasks is not on disk: the end of the run records them as failed
      // (with this error when they had not failed already), never as done.
      for (const t of checkpoint.tasks ?? []) {
        if (t.status !== 'failed') {
          t.status = 'failed';
          t.error = toErrorInfo(error);
          delete t.output;
        }
        this.#unwritten.add(t);
      }
      await this.#fatal(error);
      throw error;
    }
  }

  #scheduleCheck(): void {
    if (this.#checkScheduled || this.#state !== 'active') return;
    // Nothing to decide: no wait, sleep, child, held call, pause request or quiet waiter.
    if (
      this.#pending.size === 0 &&
      this.#held.length === 0 &&
      this.#quiet.length === 0 &&
      !this.run.pauseRequested
    ) {
      return;
    }
    this.#checkScheduled = true;
    setImmediate(() => {
      this.#checkScheduled = false;
      this.#check();
    });
  }

  /** Runs after the function's microtasks settle: detects stuck replays and pauses. */
  #check(): void {
    if (this.#state !== 'active') return;
    if (this.#unconsumed.size > 0 && this.#held.some((h) => h.isNew)) {
      if (this.#progress !== this.#judgedProgress) {
        this.#judgedProgress = this.#progress;
        this.#scheduleCheck();
        return;
      }
      const expected = [...this.#unconsumed]
        .map((id) => this.tasks.get(id)!)
        .sort((a, b) => a.seq - b.seq)[0]!;
      const found = this.#held.find((h) => h.isNew)!;
      this.#nonDeterminism(`${expected.kind} "${expected.taskId}"`, `"${found.taskId}"`);
      return;
    }
    if (this.#inflight > 0) return;
    const quiet = this.#quiet;
    this.#quiet = [];
    for (const q of quiet) q();
    if (this.#pins > 0 || !this.wantsPause()) return;
    this.#host.requestEvict(this);
  }

  /** Whether the run has no runnable work: an operator pause, or every branch waits for input. */
  wantsPause(): boolean {
    if (this.#state !== 'active' || this.#inflight > 0 || this.#pins > 0) return false;
    if (this.run.pauseRequested) return true;
    if (this.#held.length > 0) return false;
    let waits = 0;
    for (const p of this.#pending.values()) {
      if (p.kind !== 'wait') return false;
      waits++;
    }
    return waits > 0;
  }

  /** Checkpoints the pause and leaves memory. Called by the engine under the run's lock. */
  async pauseAndEvict(): Promise<boolean> {
    if (!this.wantsPause()) return false;
    const operator = this.run.pauseRequested;
    const waiting = this.waitingTaskIds();
    const others = [...this.#pending.keys()].sort(
      (a, b) => this.tasks.get(a)!.seq - this.tasks.get(b)!.seq,
    );
    const pausedTaskId = operator
      ? (this.#held[0]?.taskId ?? others[0] ?? null)
      : (waiting[0] ?? null);
    this.#state = 'evicted';
    if (this.run.status !== 'paused' || this.run.pausedTaskId !== pausedTaskId) {
      this.run = transition(this.run, 'paused', this.#host.clock.now(), { pausedTaskId });
      try {
        faults.hit('pause.before-commit', this.run);
        await this.#host.store[TRUSTED_CHECKPOINT]({ runs: [this.run] }, true);
      } catch (error) {
        this.#state = 'active';
        await this.#fatal(error);
        return false;
      }
      this.#host.events.emit('run:paused', {
        runId: this.run.id,
        workflow: this.run.workflow,
        pausedTaskId,
        reason: operator ? 'operator' : 'waiting',
      });
    }
    this.#abandon();
    return true;
  }

  /** Drops the function's pending calls: it will never be continued in this process. */
  #abandon(): void {
    this.#pending.clear();
    this.#held = [];
  }

  /** Keeps the execution in memory (while an operation on it is under way). */
  pin(): () => void {
    this.#pins++;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.#pins--;
      this.#scheduleCheck();
    };
  }

  /** Resolves once the function has gone as far as it can without new input. */
  quiet(): Promise<void> {
    if (this.#state !== 'active') return Promise.resolve();
    return new Promise((resolve) => {
      this.#quiet.push(resolve);
      this.#scheduleCheck();
    });
  }

  /** An operator pause: no new task starts; once in-flight steps finish, the run pauses. */
  async requestPause(): Promise<void> {
    if (this.run.pauseRequested) return;
    this.run = { ...this.run, pauseRequested: true, updatedAt: this.#host.clock.now() };
    await this.#write({ runs: [this.run] });
    this.#scheduleCheck();
  }

  /** Ends an operator pause of a run still in memory. */
  async clearPause(): Promise<void> {
    if (!this.run.pauseRequested) return;
    const now = this.#host.clock.now();
    this.run =
      this.run.status === 'paused'
        ? transition(this.run, 'running', now, { pauseRequested: false })
        : { ...this.run, pauseRequested: false, updatedAt: now };
    await this.#write({ runs: [this.run] });
    this.#releaseHeld();
    this.#scheduleCheck();
  }

  async #complete(output: unknown): Promise<void> {
    if (this.#state !== 'active') return;
    if (this.#unconsumed.size > 0) {
      const expected = [...this.#unconsumed]
        .map((id) => this.tasks.get(id)!)
        .sort((a, b) => a.seq - b.seq)[0]!;
      this.#nonDeterminism(`${expected.kind} "${expected.taskId}"`, 'the end of the workflow');
      return;
    }
    let result = output;
    if (this.def.output) {
      const parsed = this.def.output.safeParse(output);
      if (!parsed.success) {
        await this.#end(
          'failed',
          new CairnError(
            'INVALID_OUTPUT',
            `The result of ${this.def.name} does not match its output schema`,
            {
              details: { issues: parsed.error.issues },
            },
          ),
        );
        return;
      }
      result = parsed.data;
    }
    try {
      assertSerializable(result, 'the workflow result');
    } catch (error) {
      await this.#end('failed', error);
      return;
    }
    await this.#end('completed', undefined, result);
  }

  async #endWithError(error: unknown): Promise<void> {
    if (this.#state !== 'active') return;
    await this.#end('failed', error);
  }

  /** Stops the run at once with `error` (non-determinism, a checkpoint that failed). */
  async #fatal(error: unknown): Promise<void> {
    if (this.#state !== 'active') return;
    await this.#end('failed', error);
  }

  /** Cancels the run: aborts in-flight steps, ends pending tasks, checkpoints `cancelled`. */
  async cancel(): Promise<void> {
    if (this.#state !== 'active') return;
    await this.#end('cancelled', new CairnError('CANCELLED', `Run ${this.run.id} was cancelled`));
  }

  async #end(
    status: 'completed' | 'failed' | 'cancelled',
    error?: unknown,
    output?: unknown,
  ): Promise<void> {
    this.#state = 'finished';
    const now = this.#host.clock.now();
    let errorInfo = error === undefined ? null : toErrorInfo(error);
    const leftovers: Task[] = [];
    const children: string[] = [];
    for (const task of this.#unwritten) {
      task.endedAt ??= now;
      task.durationMs ??= elapsed(task.startedAt, now);
      leftovers.push(task);
    }
    for (const task of this.tasks.values()) {
      if (FINAL_TASK.has(task.status)) continue;
      if (task.kind === 'child' && task.childRunId) children.push(task.childRunId);
      task.status = 'cancelled';
      task.endedAt = now;
      task.durationMs = elapsed(task.startedAt, now);
      leftovers.push(task);
    }
    // A run that completed with nothing left in flight has nothing to abort or reject.
    if (
      leftovers.length > 0 ||
      this.#pending.size > 0 ||
      this.#held.length > 0 ||
      status !== 'completed'
    ) {
      const reason =
        error instanceof CairnError
          ? error
          : new CairnError('CANCELLED', `Run ${this.run.id} ended`);
      this.#abort.abort(reason);
      for (const p of this.#pending.values()) p.reject(reason);
      for (const h of this.#held) h.reject(reason);
    }
    this.#abandon();
    // Nothing more will happen here: whoever waits for the run to settle may go on.
    const quiet = this.#quiet;
    this.#quiet = [];
    for (const q of quiet) q();
    const last = this.run;
    this.run = transition(last, status, now, {
      error: errorInfo,
      ...(status === 'completed' ? { output } : {}),
    });
    try {
      try {
        await this.#host.store[TRUSTED_CHECKPOINT]({ runs: [this.run], tasks: leftovers }, true);
      } catch (refused) {
        if (status !== 'completed' || !refusedBeforeWriting(refused)) throw refused;
        // The result cannot be stored (too large): the run fails with that error instead,
        // rather than stay running on disk and fail the same way after every recovery.
        status = 'failed';
        errorInfo = toErrorInfo(refused);
        this.run = transition(last, 'failed', now, { error: errorInfo });
        await this.#host.store[TRUSTED_CHECKPOINT]({ runs: [this.run], tasks: leftovers }, true);
      }
    } catch (cause) {
      // The final state could not be written: the run stays as it was on disk and recovery
      // will pick it up again. Nothing is reported as done.
      this.#host.finished(this, cause);
      return;
    }
    for (const childRunId of children) {
      this.#host.cancelRun(childRunId).catch(() => undefined);
    }
    const event = { runId: this.run.id, workflow: this.run.workflow };
    if (status === 'completed') {
      this.#host.events.emit('run:completed', {
        ...event,
        output,
        durationMs: now - (this.run.startedAt ?? this.run.createdAt),
      });
    } else if (status === 'failed') {
      this.#host.events.emit('run:failed', { ...event, error: errorInfo! });
    } else {
      this.#host.events.emit('run:cancelled', event);
    }
    this.#host.finished(this);
  }
}

/** Errors a store raises while checking a checkpoint, before it writes anything. */
function refusedBeforeWriting(error: unknown): boolean {
  return (
    error instanceof CairnError &&
    (error.code === 'VALUE_TOO_LARGE' ||
      error.code === 'NOT_SERIALIZABLE' ||
      error.code === 'INVALID_ARGUMENT')
  );
}

/** Milliseconds from `start` to `now`, never negative (clocks can step back). */
export function elapsed(start: number, now: number): number {
  return Math.max(0, now - start);
}

function isThenable<T>(value: T | PromiseLike<T>): value is PromiseLike<T> {
  return (
    (typeof value === 'object' || typeof value === 'function') &&
    value !== null &&
    typeof (value as PromiseLike<T>).then === 'function'
  );
}

/** The JSON schema of what a form must send: the schema's input side (before defaults and transforms). */
function jsonSchema(schema: z.ZodType): unknown {
  try {
    return z.toJSONSchema(schema, { unrepresentable: 'any', io: 'input' });
  } catch {
    return {};
  }
}

export { IdSchema };
