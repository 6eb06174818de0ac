/** Steps: running a step function through the queue, retries with backoff, timeouts, and checkpointing each outcome. */
import {
  CairnError,
  checkOptionNames,
  faults,
  assertSerializable,
  usageOfStep,
  type Task,
} from '@cairn/store';
import type { StepContext, StepOptions } from './context.js';
import { toMs } from './duration.js';
import { fromErrorInfo, toError, toErrorInfo } from './errors.js';
import { backoff, retryPolicy, shouldRetry, type RetryPolicy } from './retry.js';
import {
  FINAL_TASK,
  typeError,
  checkName,
  elapsed,
  isThenable,
  type AttemptOutcome,
} from './execution-support.js';
import { newTask } from './new-records.js';
import { STEP_OPTIONS } from './option-names.js';
import type { RunExecution } from './execution.js';

export async function runStep<T>(
  exec: RunExecution,
  name: string,
  fn: (step: StepContext) => T | Promise<T>,
  options: StepOptions<T> = {},
): Promise<T> {
  checkName('step', name);
  if (typeof fn !== 'function') throw typeError('step function must be a function');
  if (typeof options !== 'object' || options === null)
    throw typeError('step options must be an object');
  checkOptionNames('step options', options, STEP_OPTIONS);
  const policy = retryPolicy(options.retry, exec.host.retry);
  const timeout = options.timeout === undefined ? undefined : toMs(options.timeout, 'timeout');
  if (
    options.meta !== undefined &&
    (typeof options.meta !== 'object' || options.meta === null) &&
    typeof options.meta !== 'function'
  ) {
    throw typeError('step meta must be an object or a function');
  }
  if (typeof options.meta === 'object') assertSerializable(options.meta, 'step meta');
  const { taskId, seq, hist, group } = exec.claim(name, 'step');
  const ordered = exec.inOrder(hist);
  if (ordered) await ordered;
  if (hist && FINAL_TASK.has(hist.status)) return exec.replayed(hist) as T;
  const held = exec.gate(taskId, hist === undefined);
  if (held) await held;
  const task: Task = hist
    ? { ...hist, status: 'running', error: null, endedAt: null, durationMs: null }
    : newTask(exec, {
        taskId,
        kind: 'step',
        seq,
        status: 'running',
        attempt: 0,
        startedAt: exec.host.clock.now(),
        group,
        meta:
          options.meta !== undefined && typeof options.meta === 'object' ? { ...options.meta } : {},
      });
  exec.tasks.set(taskId, task);
  exec.inflight++;
  try {
    return await executeStep(exec, task, fn, options, policy, timeout);
  } finally {
    exec.inflight--;
    exec.scheduleCheck();
  }
}

export async function executeStep<T>(
  exec: RunExecution,
  task: Task,
  fn: (step: StepContext) => T | Promise<T>,
  options: StepOptions<T>,
  policy: RetryPolicy,
  timeout: number | undefined,
): Promise<T> {
  let attempt = task.attempt + 1;
  for (;;) {
    const outcome = await exec.host.schedule(exec.def, () =>
      runAttempt(exec, task, attempt, fn, timeout),
    );
    try {
      const retry = await settleAttempt(exec, task, attempt, outcome, options, policy);
      if (!retry) return (outcome as { value: T }).value;
    } finally {
      if (outcome.started) exec.host.stepEnded();
    }
    await retryDelay(exec, backoff(policy, attempt));
    const held = exec.gate(task.taskId, false);
    if (held) await held;
    attempt++;
  }
}

/**
 * Checkpoints an attempt's outcome. Returns false when the step completed, true when it
 * should be retried; throws when it failed for good.
 */
export async function settleAttempt<T>(
  exec: RunExecution,
  task: Task,
  attempt: number,
  outcome: AttemptOutcome<T>,
  options: StepOptions<T>,
  policy: RetryPolicy,
): Promise<boolean> {
  {
    faults.hit('step.after-run', task);
    if (exec.state !== 'active') throw new CairnError('CANCELLED', `Run ${exec.run.id} stopped`);
    const now = exec.host.clock.now();
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
        return failStep(exec, task, toError(error), false);
      }
      // What the refusal below puts back (a copy of the whole record cost more than these).
      const before = {
        status: task.status,
        meta: task.meta,
        endedAt: task.endedAt,
        durationMs: task.durationMs,
      };
      task.status = 'completed';
      task.output = outcome.value;
      task.meta = meta;
      task.endedAt = now;
      task.durationMs = elapsed(task.startedAt, now);
      let refused: unknown;
      // A result the store refuses (too large) fails the step, as one it cannot serialise does.
      // The step's usage (model, tokens) is added to the store's totals in the same batch.
      const usage = [usageOfStep(exec.run, task)];
      try {
        await exec.write({ tasks: [task], usage }, (error) => {
          refused = error;
          delete task.output;
          Object.assign(task, before);
        });
      } catch (error) {
        if (refused === undefined) throw error;
      }
      if (refused !== undefined) return failStep(exec, task, toError(refused), false);
      faults.hit('step.after-commit', task);
      if (exec.host.events.has('task:completed')) {
        exec.host.events.emit('task:completed', {
          runId: exec.run.id,
          taskId: task.taskId,
          kind: 'step',
          durationMs: task.durationMs,
        });
      }
      return false;
    }
    const error = outcome.error;
    record.error = toErrorInfo(error, 'STEP_FAILED');
    const retry = !exec.aborted && shouldRetry(policy, attempt, error);
    if (!retry) return failStep(exec, task, error, true);
    exec.host.events.emit('task:failed', {
      runId: exec.run.id,
      taskId: task.taskId,
      kind: 'step',
      error: record.error,
      willRetry: true,
    });
    return true;
  }
}

export async function failStep(
  exec: RunExecution,
  task: Task,
  error: Error,
  recorded: boolean,
): Promise<never> {
  const now = exec.host.clock.now();
  const info = toErrorInfo(error, 'STEP_FAILED');
  if (!recorded) {
    const last = task.attempts[task.attempts.length - 1];
    if (last) last.error = info;
  }
  task.status = 'failed';
  task.error = info;
  task.endedAt = now;
  task.durationMs = elapsed(task.startedAt, now);
  await exec.write({ tasks: [task] });
  exec.host.events.emit('task:failed', {
    runId: exec.run.id,
    taskId: task.taskId,
    kind: 'step',
    error: info,
    willRetry: false,
  });
  const thrown = fromErrorInfo(info, 'STEP_FAILED');
  (thrown as { cause?: unknown }).cause = error;
  throw thrown;
}

/**
 * The "started" marker of an attempt: a soft write (not synced on its own). It resolves once the
 * store's log has it, at the end of the current turn with the other markers of the turn: the
 * step function is called after that, so the attempt is on disk if the process dies in it.
 */
function markStarted(exec: RunExecution, task: Task): Promise<void> {
  return exec.writeSoft({ tasks: [task] }).catch((cause: unknown) => {
    exec.host.events.emit('warning', {
      message: 'A step start marker could not be written',
      runId: exec.run.id,
      cause,
    });
  });
}

/**
 * What a step function receives. A class, so that `signal` is an accessor on the prototype
 * rather than a getter made with each attempt; `annotate` stays an own arrow function, so a
 * step function may take it apart (`({ annotate }) => …`).
 */
class AttemptContext implements StepContext {
  readonly runId: string;
  readonly taskId: string;
  readonly attempt: number;
  readonly idempotencyKey: string;
  readonly annotate: (meta: Record<string, unknown>) => void;
  readonly #ensure: () => AbortController;

  constructor(exec: RunExecution, task: Task, attempt: number, ensure: () => AbortController) {
    this.runId = exec.run.id;
    this.taskId = task.taskId;
    this.attempt = attempt;
    this.idempotencyKey = `${exec.run.id}:${task.taskId}`;
    this.#ensure = ensure;
    this.annotate = (meta) => {
      if (typeof meta !== 'object' || meta === null) throw typeError('annotate takes an object');
      assertSerializable(meta, 'meta');
      task.meta = { ...task.meta, ...meta };
    };
  }

  get signal(): AbortSignal {
    return this.#ensure().signal;
  }
}

/** One attempt of a step, inside the queue. Never throws: the outcome says what happened. */
export async function runAttempt<T>(
  exec: RunExecution,
  task: Task,
  attempt: number,
  fn: (step: StepContext) => T | Promise<T>,
  timeout: number | undefined,
): Promise<AttemptOutcome<T>> {
  if (exec.state !== 'active') {
    return { ok: false, started: false, error: new CairnError('CANCELLED', 'Run stopped') };
  }
  const clock = exec.host.clock;
  const startedAt = clock.now();
  task.attempt = attempt;
  task.attempts.push({ attempt, startedAt, endedAt: null, error: null });
  if (exec.host.events.has('task:started')) {
    exec.host.events.emit('task:started', {
      runId: exec.run.id,
      taskId: task.taskId,
      kind: 'step',
      attempt,
    });
  }
  exec.host.stepStarted();
  // Recorded before the step function runs: a process that dies in it leaves the attempt on
  // disk, and the next one is attempt + 1.
  await markStarted(exec, task);
  if (exec.state !== 'active') {
    return { ok: false, started: true, error: new CairnError('CANCELLED', 'Run stopped') };
  }
  // The attempt's abort controller is made only when something needs it: a timeout, a
  // step function that reads its signal, or an asynchronous step (cancellation aborts it).
  let controller: AbortController | null = null;
  let settled = false;
  const ensure = (): AbortController => {
    if (controller === null) {
      controller = new AbortController();
      const runSignal = exec.abort.signal;
      if (runSignal.aborted && !settled) controller.abort(runSignal.reason);
    }
    return controller;
  };

  let timer: unknown;
  let onRunAbort: (() => void) | null = null;
  try {
    const stepContext = new AttemptContext(exec, task, attempt, ensure);
    faults.hit('step.before-run', task);
    exec.stepRunning = task.taskId;
    let result: T | PromiseLike<T>;
    try {
      result = fn(stepContext);
    } finally {
      exec.stepRunning = null;
    }
    if (exec.nestedCall !== null) refuseNested(exec, result);
    if (!isThenable(result)) return { ok: true, started: true, value: result };
    // An asynchronous step races its timeout and the run's cancellation.
    const ac = ensure();
    const runSignal = exec.abort.signal;
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
          // The attempt has timed out before its signal is aborted: whatever the step
          // function does when it sees the abort (settles at once, as fetch does) comes
          // after, and cannot win the race below.
          reject(error);
          ac.abort(error);
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
    if (onRunAbort !== null) exec.abort.signal.removeEventListener('abort', onRunAbort);
  }
}

/** A step function called `ctx`: its attempt fails with that `NESTED_STEP`, caught or not. */
function refuseNested(exec: RunExecution, result: unknown): never {
  const error = exec.nestedCall!;
  exec.nestedCall = null;
  if (isThenable(result)) result.then(undefined, () => undefined);
  throw error;
}

export function retryDelay(exec: RunExecution, ms: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const handle = exec.host.clock.setTimeout(() => {
      exec.abort.signal.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = (): void => {
      exec.host.clock.clearTimeout(handle);
      reject(new CairnError('CANCELLED', `Run ${exec.run.id} was cancelled`));
    };
    exec.abort.signal.addEventListener('abort', onAbort, { once: true });
  });
}
