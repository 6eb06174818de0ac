import {
  CairnError,
  faults,
  assertSerializable,
  taskFailureCode,
  type Run,
  type Store,
  type Task,
  type TaskKind,
  type InboxEntry,
} from '@cairn/store';
import type { StorePort } from '@cairn/store/engine';
import type { Clock } from './clock.js';
import type { WorkflowContext } from './context.js';
import { fromErrorInfo, toErrorInfo } from './errors.js';
import type { Emitter } from './events.js';
import type { RetryPolicy } from './retry.js';
import { transition } from './status.js';
import type { AnyWorkflow } from './workflow.js';
import {
  FINAL_TASK,
  refusedBeforeWriting,
  elapsed,
  type Pending,
  type Held,
  type State,
} from './execution-support.js';
import { makeContext } from './context-impl.js';
import { ReplayOrder } from './replay-order.js';
import { isWaiting, waitingTaskIds, validateResume, resumeWaits, keepEarlyInput } from './waits.js';
import { fireTimer } from './sleeps.js';

/** What an execution needs from its engine. */
export interface ExecutionHost {
  readonly store: Store;
  /** The engine's door into the store: every write of a run goes through it (`write`, `writeSoft`). */
  readonly port: StorePort;
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
  /** The replay of a run loaded to take input failed: it leaves memory, nothing written. */
  dropped(execution: RunExecution): void;
  stepStarted(): void;
  stepEnded(): void;
}

/**
 * One run being executed in memory: it runs the workflow function, answers its calls from
 * history where the run has been before (replay), executes and checkpoints what is new,
 * and decides when the run is paused.
 *
 * The class holds a run's state and its lifecycle (claiming task ids, holding calls, pausing,
 * ending). The kinds of task are in their own files and work on this state: steps.ts,
 * waits.ts, sleeps.ts, children.ts, and context-impl.ts for the context itself. Its members
 * are internal to @cairn/core (the class is not exported from the package).
 */
export class RunExecution {
  run: Run;
  readonly def: AnyWorkflow;
  readonly host: ExecutionHost;
  /** Every task of the run: loaded history, then what this execution adds. */
  readonly tasks = new Map<string, Task>();
  /**
   * History tasks the function has not asked for again yet: those with an outcome, and those
   * in flight when the run stopped (a replay that never reaches them is not the same run).
   */
  readonly unconsumed = new Set<string>();
  /** The order of history's parallel groups, which a replay keeps (see replay-order.ts). */
  readonly #order: ReplayOrder;
  readonly names = new Map<string, number>();
  /** Tasks whose last checkpoint failed: written again, as failed, when the run ends. */
  readonly unwritten = new Set<Task>();
  readonly pending = new Map<string, Pending>();
  /** Input that arrived for a task not reached yet (mirrors the store's inbox). */
  readonly inbox = new Map<string, unknown>();
  /** Calls held back: an operator pause, the engine closing, or replay owing results. */
  held: Held[] = [];
  nextSeq = 0;
  /** The parallel group of calls made in the current turn. */
  group: string | null = null;
  /** Work under way that will move the function on (steps, writes); no pause while > 0. */
  inflight = 0;
  /** Operations that keep the execution in memory while they run. */
  pins = 0;
  /** Calls claimed so far, and the count at the last determinism check. */
  progress = 0;
  judgedProgress = -1;
  checkScheduled = false;
  /** Resolved when the function has gone as far as it can without new input. */
  quietWaiters: (() => void)[] = [];
  /** Checkpoints under way through `write()`, and who waits for them (see `settled`). */
  #writing = 0;
  #settledWaiters: (() => void)[] = [];
  state: State = 'active';
  /** Loaded to take input and still replaying (see the constructor). */
  #onTrial: boolean;
  /** The error a replay on trial failed with (nothing of it was written). */
  #refusal: CairnError | null = null;
  /** The step whose function is being called (its synchronous part), if any. */
  stepRunning: string | null = null;
  /** A `ctx` call refused because a step's function made it (see context-impl.ts). */
  nestedCall: CairnError | null = null;
  #abort: AbortController | null = null;
  /** Ends the current turn's parallel group (one function for the run, not one per call). */
  readonly #endGroup = (): void => {
    this.group = null;
  };
  readonly ctx: WorkflowContext;

  /**
   * `kept`: the run's inbox as stored (input sent for waits not reached yet), read with its
   * history so that reaching a wait needs no read. `onTrial`: the run is loaded to take input
   * (a resume); until its replay is over (`endTrial`, or a call history lacks starting), a
   * failure writes nothing, and the execution leaves memory with the error for the resume to
   * answer with, the run left as it was.
   */
  constructor(
    host: ExecutionHost,
    def: AnyWorkflow,
    run: Run,
    history: readonly Task[],
    kept: readonly InboxEntry[] = [],
    onTrial = false,
  ) {
    this.host = host;
    this.#onTrial = onTrial;
    this.def = def;
    this.run = run;
    for (const entry of kept) this.inbox.set(entry.taskId, entry.data);
    for (const task of history) {
      this.tasks.set(task.taskId, task);
      if (!task.taskId.startsWith('$')) this.unconsumed.add(task.taskId);
      this.nextSeq = Math.max(this.nextSeq, task.seq + 1);
    }
    this.#order = new ReplayOrder([...this.unconsumed].map((id) => this.tasks.get(id)!));
    this.ctx = makeContext(this);
  }

  get id(): string {
    return this.run.id;
  }

  /**
   * The run's abort controller (its signal is `ctx.signal`, and every step's signal follows
   * it), made when first needed: most runs never read it.
   */
  get abort(): AbortController {
    return (this.#abort ??= new AbortController());
  }

  /** Whether the run was aborted (without making a controller for it). */
  get aborted(): boolean {
    return this.#abort?.signal.aborted ?? false;
  }

  /** Starts (or replays) the workflow function. */
  start(): void {
    const input = this.run.input as never;
    void (async () => {
      let output: unknown;
      try {
        output = await this.def.run(this.ctx, input);
      } catch (error) {
        await this.endWithError(error);
        return;
      }
      await this.complete(output);
    })();
  }

  // --- the context -------------------------------------------------------------------------

  /** Gives a call its task id (name plus call-order suffix), seq and history, if any. */
  claim(
    name: string,
    kind: TaskKind,
  ): { taskId: string; seq: number; hist: Task | undefined; group: string | null } {
    this.assertLive();
    const count = (this.names.get(name) ?? 0) + 1;
    this.names.set(name, count);
    const taskId = count === 1 ? name : `${name}#${count}`;
    const hist = this.tasks.get(taskId);
    this.progress++;
    if (hist && hist.kind !== kind) {
      throw this.nonDeterminism(`${hist.kind} "${taskId}"`, `${kind} "${taskId}"`);
    }
    if (hist && this.unconsumed.delete(taskId)) {
      this.#order.called(hist);
      if (this.unconsumed.size === 0) this.releaseHeld();
    }
    if (hist) return { taskId, seq: hist.seq, hist, group: hist.group };
    // A new call joins the group of the turn's new calls. Calls history has keep theirs and
    // never name a group: a new call, even one made in a replay's turn, starts after every call
    // whose result it may have used, and its group says so (replay-order.ts relies on it).
    const seq = this.nextSeq++;
    if (this.group === null) {
      this.group = `g${seq}`;
      queueMicrotask(this.#endGroup);
    }
    return { taskId, seq, hist, group: this.group };
  }

  /**
   * Holds a call that history has in a later parallel group than a call it has not met again
   * yet (see replay-order.ts); nothing to wait for when the call is in order.
   */
  inOrder(hist: Task | undefined): Promise<void> | undefined {
    if (hist === undefined) return undefined;
    const wait = this.#order.wait(hist);
    if (wait) this.scheduleCheck();
    return wait;
  }

  nonDeterminism(expected: string, found: string): CairnError {
    const error = new CairnError(
      'NON_DETERMINISM',
      `Replay of run ${this.run.id} expected ${expected} but the workflow called ${found}. The workflow code changed in a way that does not match the run's history; register the old version to finish this run.`,
      { details: { runId: this.run.id, expected, found } },
    );
    void this.fatal(error);
    return error;
  }

  assertLive(): void {
    if (this.state === 'finished' && this.run.status === 'cancelled') {
      throw new CairnError('CANCELLED', `Run ${this.run.id} was cancelled`);
    }
    if (this.state !== 'active') {
      throw new CairnError('CANCELLED', `Run ${this.run.id} is no longer executing here`);
    }
  }

  /**
   * Holds a call while the run must not start new work: an operator pause, the engine
   * closing, or (for a call history does not have) replay still owing recorded results.
   */
  gate(taskId: string, isNew: boolean, pausable = true): Promise<void> | undefined {
    this.assertLive();
    // The common case returns nothing to wait for: no promise, no extra turn.
    if (!this.#mustHold(isNew, pausable)) {
      // A call history lacks starts: the replay is over, and a failure now is the run's.
      if (isNew) this.#onTrial = false;
      return undefined;
    }
    return this.#hold(taskId, isNew, pausable);
  }

  #mustHold(isNew: boolean, pausable: boolean): boolean {
    return (
      (pausable && this.run.pauseRequested) ||
      this.host.closing() ||
      (isNew && this.unconsumed.size > 0)
    );
  }

  async #hold(taskId: string, isNew: boolean, pausable: boolean): Promise<void> {
    do {
      await new Promise<void>((resolve, reject) => {
        this.held.push({ taskId, isNew, resolve, reject });
        this.scheduleCheck();
      });
      this.assertLive();
    } while (this.#mustHold(isNew, pausable));
    if (isNew) this.#onTrial = false;
  }

  /**
   * Ends the trial of a run loaded to take input once its replay has settled: from now on a
   * failure is the run's, written as usual. Returns the error the replay failed with, if it
   * did: on trial nothing was written and the execution has left memory; a run replayed by
   * recovery was failed with it.
   */
  endTrial(): CairnError | null {
    this.#onTrial = false;
    if (this.#refusal) return this.#refusal;
    if (this.state !== 'finished' || this.run.status !== 'failed' || !this.run.error) return null;
    return fromErrorInfo(this.run.error, 'RUN_FAILED');
  }

  /** A replay on trial failed: nothing is written, the run stays as it is on disk. */
  #refuse(error: unknown): void {
    this.state = 'evicted';
    const refusal =
      error instanceof CairnError
        ? error
        : fromErrorInfo(toErrorInfo(error, 'RUN_FAILED'), 'RUN_FAILED');
    this.#refusal = refusal;
    this.#abort?.abort(refusal);
    this.abandon();
    const quiet = this.quietWaiters;
    this.quietWaiters = [];
    for (const q of quiet) q();
    this.host.dropped(this);
  }

  releaseHeld(): void {
    const held = this.held;
    this.held = [];
    for (const h of held) h.resolve();
  }

  // --- steps ---------------------------------------------------------------------------------

  replayed(task: Task): unknown {
    if (task.status === 'completed') return task.output;
    if (task.status === 'cancelled')
      throw new CairnError('CANCELLED', `Task ${task.taskId} was cancelled`);
    const fallback = taskFailureCode(task.kind);
    throw fromErrorInfo(task.error ?? { message: `Task ${task.taskId} failed` }, fallback);
  }

  // --- recorded values -----------------------------------------------------------------------

  // --- waits ---------------------------------------------------------------------------------

  isWaiting(taskId: string): boolean {
    return isWaiting(this, taskId);
  }

  waitingTaskIds(): string[] {
    return waitingTaskIds(this);
  }

  /** Validates payloads for waits; returns what each wait's schema made of its payload. */
  validateResume(payloads: ReadonlyMap<string, unknown>): Map<string, unknown> {
    return validateResume(this, payloads);
  }

  /** See `resumeWaits` in waits.ts. */
  resumeWaits(
    payloads: ReadonlyMap<string, unknown>,
    by: string | null,
    fromInbox = false,
  ): Promise<void> {
    return resumeWaits(this, payloads, by, fromInbox);
  }

  keepEarlyInput(taskId: string, data: unknown): void {
    return keepEarlyInput(this, taskId, data);
  }

  // --- sleeps --------------------------------------------------------------------------------

  async fireTimer(taskId: string): Promise<boolean> {
    return fireTimer(this, taskId);
  }

  // --- children ------------------------------------------------------------------------------

  // --- writes, pause and the end of the run ---------------------------------------------------

  /** A durable checkpoint; a failure stops the run (fail closed). */
  write(
    checkpoint: Parameters<Store['checkpoint']>[0],
    onRefused?: (error: unknown) => void,
  ): Promise<void> {
    let landing: Promise<void>;
    this.#writing++;
    try {
      landing = this.host.port.write(checkpoint, { durable: true });
    } catch (error) {
      this.#wrote();
      return this.#writeFailed(checkpoint, error, onRefused);
    }
    return landing.then(
      () => this.#wrote(),
      (error: unknown) => {
        this.#wrote();
        return this.#writeFailed(checkpoint, error, onRefused);
      },
    );
  }

  /**
   * A soft checkpoint (a step's "started" marker, a recorded value): not synced on its own;
   * resolves once the store has it (a `LevelStore`'s log, at the end of the turn). A failure
   * is the caller's to report: losing it costs at most a repeat.
   */
  writeSoft(checkpoint: Parameters<Store['checkpoint']>[0]): Promise<void> {
    return this.host.port.write(checkpoint, { durable: false });
  }

  #wrote(): void {
    this.#writing--;
    if (this.state !== 'active') this.#releaseSettled();
    else if (this.#settledWaiters.length > 0) this.scheduleCheck();
  }

  /**
   * Resolves once the function has gone as far as it can without a step's result, input or
   * time: none of its checkpoints is being written and its promise callbacks have run (the
   * checkpoint of a pause or an end may still be on its way). A timer's dispatch waits for it.
   */
  settled(): Promise<void> {
    if (this.state !== 'active' && this.#writing === 0) return Promise.resolve();
    return new Promise((resolve) => {
      this.#settledWaiters.push(resolve);
      this.scheduleCheck();
    });
  }

  #releaseSettled(): void {
    if (this.#writing > 0 || this.#settledWaiters.length === 0) return;
    const waiters = this.#settledWaiters;
    this.#settledWaiters = [];
    for (const resolve of waiters) resolve();
  }

  async #writeFailed(
    checkpoint: Parameters<Store['checkpoint']>[0],
    error: unknown,
    onRefused?: (error: unknown) => void,
  ): Promise<never> {
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
        t.error = toErrorInfo(error, 'WRITE_FAILED');
        delete t.output;
      }
      this.unwritten.add(t);
    }
    await this.fatal(error);
    throw error;
  }

  scheduleCheck(): void {
    if (this.checkScheduled || this.state !== 'active') return;
    // Nothing to decide: no wait, sleep, child, held call, pause request or quiet waiter.
    if (
      this.pending.size === 0 &&
      this.held.length === 0 &&
      this.#order.held.length === 0 &&
      this.quietWaiters.length === 0 &&
      this.#settledWaiters.length === 0 &&
      !this.run.pauseRequested
    ) {
      return;
    }
    this.checkScheduled = true;
    setImmediate(() => {
      this.checkScheduled = false;
      this.check();
    });
  }

  /** Runs after the function's microtasks settle: detects stuck replays and pauses. */
  check(): void {
    this.#releaseSettled();
    if (this.state !== 'active') return;
    const outOfOrder = this.#order.held[0]?.task;
    if (this.unconsumed.size > 0 && (outOfOrder || this.held.some((h) => h.isNew))) {
      if (this.progress !== this.judgedProgress) {
        this.judgedProgress = this.progress;
        this.scheduleCheck();
        return;
      }
      const expected = [...this.unconsumed]
        .map((id) => this.tasks.get(id)!)
        .sort((a, b) => a.seq - b.seq)[0]!;
      const found = outOfOrder
        ? `${outOfOrder.kind} "${outOfOrder.taskId}"`
        : `"${this.held.find((h) => h.isNew)!.taskId}"`;
      this.nonDeterminism(`${expected.kind} "${expected.taskId}"`, found);
      return;
    }
    if (this.inflight > 0) return;
    const quiet = this.quietWaiters;
    this.quietWaiters = [];
    for (const q of quiet) q();
    if (this.pins > 0 || !this.wantsPause()) return;
    this.host.requestEvict(this);
  }

  /** Whether the run has no runnable work: an operator pause, or every branch waits for input. */
  wantsPause(): boolean {
    if (this.state !== 'active' || this.inflight > 0 || this.pins > 0) return false;
    if (this.run.pauseRequested) return true;
    if (this.held.length > 0 || this.#order.held.length > 0) return false;
    let waits = 0;
    for (const p of this.pending.values()) {
      if (p.kind !== 'wait') return false;
      waits++;
    }
    return waits > 0;
  }

  /**
   * Checkpoints the pause and leaves memory, or, when `park` and the run waits only for
   * input, stays in memory as it is (`parked`) so that a resume needs no read and no replay.
   * Called by the engine under the run's lock.
   */
  async pauseAndEvict(park: boolean): Promise<'parked' | 'evicted' | null> {
    if (!this.wantsPause()) return null;
    const operator = this.run.pauseRequested;
    const waiting = this.waitingTaskIds();
    const others = [...this.pending.keys()].sort(
      (a, b) => this.tasks.get(a)!.seq - this.tasks.get(b)!.seq,
    );
    const pausedTaskId = operator
      ? (this.held[0]?.taskId ?? others[0] ?? null)
      : (waiting[0] ?? null);
    this.state = 'evicted';
    if (this.run.status !== 'paused' || this.run.pausedTaskId !== pausedTaskId) {
      this.run = transition(this.run, 'paused', this.host.clock.now(), { pausedTaskId });
      try {
        faults.hit('pause.before-commit', this.run);
        await this.host.port.write({ runs: [this.run] }, { durable: true });
      } catch (error) {
        this.state = 'active';
        await this.fatal(error);
        return null;
      }
      this.host.events.emit('run:paused', {
        runId: this.run.id,
        workflow: this.run.workflow,
        pausedTaskId,
        reason: operator ? 'operator' : 'waiting',
      });
    }
    if (park && !operator) {
      this.state = 'parked';
      return 'parked';
    }
    this.abandon();
    return 'evicted';
  }

  /** A parked execution goes on: it is the run's execution in memory again. */
  unpark(): void {
    this.state = 'active';
    // Whatever is done with it next, a run that still only waits is parked again.
    this.scheduleCheck();
  }

  /**
   * The engine closes: nothing more of the run is written in this process. Steps in flight see
   * their signal aborted with `reason` (their outcome is not checkpointed); the next engine
   * recovers the run from its checkpoints.
   */
  stop(reason: CairnError): void {
    if (this.state !== 'active') return;
    this.state = 'evicted';
    this.abort.abort(reason);
  }

  /** A parked execution leaves memory: it will never be continued in this process. */
  unload(): void {
    this.state = 'evicted';
    this.abandon();
  }

  /** Drops the function's pending calls: it will never be continued in this process. */
  abandon(): void {
    this.pending.clear();
    this.held = [];
    this.#order.clear();
    this.#releaseSettled();
  }

  /** Keeps the execution in memory (while an operation on it is under way). */
  pin(): () => void {
    this.pins++;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.pins--;
      this.scheduleCheck();
    };
  }

  /** Resolves once the function has gone as far as it can without new input. */
  quiet(): Promise<void> {
    if (this.state !== 'active') return Promise.resolve();
    return new Promise((resolve) => {
      this.quietWaiters.push(resolve);
      this.scheduleCheck();
    });
  }

  /** An operator pause: no new task starts; once in-flight steps finish, the run pauses. */
  async requestPause(): Promise<void> {
    if (this.run.pauseRequested) return;
    this.run = { ...this.run, pauseRequested: true, updatedAt: this.host.clock.now() };
    await this.write({ runs: [this.run] });
    this.scheduleCheck();
  }

  /** Ends an operator pause of a run still in memory. */
  async clearPause(): Promise<void> {
    if (!this.run.pauseRequested) return;
    const now = this.host.clock.now();
    this.run =
      this.run.status === 'paused'
        ? transition(this.run, 'running', now, { pauseRequested: false })
        : { ...this.run, pauseRequested: false, updatedAt: now };
    await this.write({ runs: [this.run] });
    this.releaseHeld();
    this.scheduleCheck();
  }

  async complete(output: unknown): Promise<void> {
    if (this.state !== 'active') return;
    if (this.unconsumed.size > 0) {
      const expected = [...this.unconsumed]
        .map((id) => this.tasks.get(id)!)
        .sort((a, b) => a.seq - b.seq)[0]!;
      this.nonDeterminism(`${expected.kind} "${expected.taskId}"`, 'the end of the workflow');
      return;
    }
    let result = output;
    if (this.def.output) {
      const parsed = this.def.output.safeParse(output);
      if (!parsed.success) {
        await this.end(
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
      await this.end('failed', error);
      return;
    }
    await this.end('completed', undefined, result);
  }

  async endWithError(error: unknown): Promise<void> {
    if (this.state !== 'active') return;
    await this.end('failed', error);
  }

  /** Stops the run at once with `error` (non-determinism, a checkpoint that failed). */
  async fatal(error: unknown): Promise<void> {
    if (this.state !== 'active') return;
    await this.end('failed', error);
  }

  /** Cancels the run: aborts in-flight steps, ends pending tasks, checkpoints `cancelled`. */
  async cancel(): Promise<void> {
    if (this.state !== 'active') return;
    await this.end('cancelled', new CairnError('CANCELLED', `Run ${this.run.id} was cancelled`));
  }

  async end(
    status: 'completed' | 'failed' | 'cancelled',
    error?: unknown,
    output?: unknown,
  ): Promise<void> {
    if (this.#onTrial && status === 'failed') {
      this.#refuse(error);
      return;
    }
    this.state = 'finished';
    const now = this.host.clock.now();
    let errorInfo = error === undefined ? null : toErrorInfo(error, 'RUN_FAILED');
    const leftovers: Task[] = [];
    const children: string[] = [];
    for (const task of this.unwritten) {
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
      this.pending.size > 0 ||
      this.held.length > 0 ||
      status !== 'completed'
    ) {
      const reason =
        error instanceof CairnError
          ? error
          : new CairnError('CANCELLED', `Run ${this.run.id} ended`);
      this.abort.abort(reason);
      for (const p of this.pending.values()) p.reject(reason);
      for (const h of this.held) h.reject(reason);
      this.#order.rejectAll(reason);
    }
    this.abandon();
    // Nothing more will happen here: whoever waits for the run to settle may go on.
    const quiet = this.quietWaiters;
    this.quietWaiters = [];
    for (const q of quiet) q();
    const last = this.run;
    this.run = transition(last, status, now, {
      error: errorInfo,
      ...(status === 'completed' ? { output } : {}),
    });
    try {
      try {
        await this.host.port.write({ runs: [this.run], tasks: leftovers }, { durable: true });
      } catch (refused) {
        if (status !== 'completed' || !refusedBeforeWriting(refused)) throw refused;
        // The result cannot be stored (too large): the run fails with that error instead,
        // rather than stay running on disk and fail the same way after every recovery.
        status = 'failed';
        errorInfo = toErrorInfo(refused, 'RUN_FAILED');
        this.run = transition(last, 'failed', now, { error: errorInfo });
        await this.host.port.write({ runs: [this.run], tasks: leftovers }, { durable: true });
      }
    } catch (cause) {
      // The final state could not be written: the run stays as it was on disk and recovery
      // will pick it up again. Nothing is reported as done.
      this.host.finished(this, cause);
      return;
    }
    for (const childRunId of children) {
      // Not awaited: each child is cancelled under its own lock, after this run's end.
      this.host.cancelRun(childRunId).catch((cause: unknown) => {
        this.host.events.emit('warning', {
          message: `Child run ${childRunId} could not be cancelled`,
          runId: childRunId,
          cause,
        });
      });
    }
    const event = { runId: this.run.id, workflow: this.run.workflow };
    if (status === 'completed') {
      this.host.events.emit('run:completed', {
        ...event,
        output,
        durationMs: now - (this.run.startedAt ?? this.run.createdAt),
      });
    } else if (status === 'failed') {
      this.host.events.emit('run:failed', { ...event, error: errorInfo! });
    } else {
      this.host.events.emit('run:cancelled', event);
    }
    this.host.finished(this);
  }
}
