import { isDeepStrictEqual } from 'node:util';
import {
  CairnError,
  LevelStore,
  checkOptionNames,
  MAX_LIMIT,
  Store,
  TERMINAL_STATUSES,
  assertSerializable,
  diagnose,
  roundTrip,
  runDetail,
  uuidv7,
  type Diagnosis,
  type ListRunsQuery,
  type Page,
  type Run,
  type RunDetail,
  type InboxEntry,
  type Task,
  type Timer,
  type UsageQuery,
  type UsageRow,
} from '@cairn/store';
import { storePort, type StorePort } from '@cairn/store/engine';
import PQueue from 'p-queue';
import { systemClock, type Clock } from './clock.js';
import { fromErrorInfo } from './errors.js';
import { Emitter, type EngineEventName, type Listener } from './events.js';
import { RunExecution, type ExecutionHost } from './execution.js';
import { newRun } from './new-records.js';
import { KeyedLock } from './lock.js';
import { listWaitingTasks } from './waiting-list.js';
import { DEFAULT_RETRY, retryPolicy, type RetryPolicy } from './retry.js';
import { TimerService, type TimerVerdict } from './timers.js';
import { dispatchTimer, recoverAll, type EngineInternals } from './recovery.js';
import { cancelRun, pauseRun, resumeRun, resumeTask } from './operations.js';
import { checkId, notFound, typeError } from './engine-support.js';
import { CLOSE_OPTIONS, ENGINE_OPTIONS, START_OPTIONS } from './option-names.js';
import { toMs } from './duration.js';
import type {
  CloseOptions,
  EngineOptions,
  ListWaitingOptions,
  ResumeOptions,
  ResumeTaskOptions,
  ResumeTaskResult,
  RunHandle,
  StartOptions,
  WaitingTask,
} from './engine-types.js';
import type { AnyWorkflow, WorkflowInput, WorkflowOutput } from './workflow.js';

/** Creates an engine, opens its store and recovers interrupted runs. */
export async function createEngine(options: EngineOptions): Promise<Engine> {
  return Engine.create(options);
}

/**
 * The engine: starts runs, executes their steps through a concurrency queue, checkpoints
 * every step, pauses runs that wait, resumes them, and recovers every interrupted run
 * when it starts.
 */
export class Engine {
  readonly #store: Store;
  /** The engine's door into the store: its writes and the change tracker (engine-port.ts). */
  readonly #port: StorePort;
  readonly #ownsStore: boolean;
  readonly #clock: Clock;
  readonly #events = new Emitter();
  readonly #registry = new Map<string, Map<string, AnyWorkflow>>();
  readonly #latest = new Map<string, AnyWorkflow>();
  readonly #active = new Map<string, RunExecution>();
  /** Runs paused waiting for input, kept in memory (oldest first); see `keepPausedRuns`. */
  readonly #parked = new Map<string, { exec: RunExecution; stamp: number }>();
  readonly #keepPaused: number;
  readonly #lock = new KeyedLock();
  readonly #queue: PQueue;
  readonly #workflowQueues = new Map<string, PQueue>();
  readonly #watchers = new Map<
    string,
    Set<{ resolve(run: Run): void; reject(error: unknown): void }>
  >();
  readonly #pauseWatchers = new Map<string, Set<() => void>>();
  readonly #namespace: string;
  readonly #maxRecoveries: number;
  readonly #retry: RetryPolicy;
  readonly #timers: TimerService;
  readonly #host: ExecutionHost;
  readonly #internals: EngineInternals;
  #executing = 0;
  #idle: (() => void)[] = [];
  #closing: Promise<void> | null = null;

  private constructor(options: EngineOptions) {
    if (typeof options !== 'object' || options === null)
      throw typeError('options must be an object');
    checkOptionNames('options', options, ENGINE_OPTIONS);
    if (options.store !== undefined && !(options.store instanceof Store)) {
      throw typeError('options.store must be a Store');
    }
    if (!Array.isArray(options.workflows))
      throw typeError('options.workflows must be an array of workflows');
    const concurrency = options.concurrency ?? 32;
    if (typeof concurrency !== 'number' || !Number.isInteger(concurrency) || concurrency < 1) {
      throw new CairnError(
        'INVALID_ARGUMENT',
        'options.concurrency must be a whole number of at least 1',
      );
    }
    const maxRecoveries = options.maxRecoveries ?? 10;
    if (
      typeof maxRecoveries !== 'number' ||
      !Number.isInteger(maxRecoveries) ||
      maxRecoveries < 0
    ) {
      throw new CairnError('INVALID_ARGUMENT', 'options.maxRecoveries must be a whole number');
    }
    const keepPaused = options.keepPausedRuns ?? 500;
    if (typeof keepPaused !== 'number' || !Number.isInteger(keepPaused) || keepPaused < 0) {
      throw new CairnError(
        'INVALID_ARGUMENT',
        'options.keepPausedRuns must be a whole number of at least 0',
      );
    }
    this.#keepPaused = keepPaused;
    const namespace = options.namespace ?? 'default';
    checkId('options.namespace', namespace);
    if (options.recover !== undefined && typeof options.recover !== 'boolean')
      throw typeError('options.recover must be a boolean');
    this.#namespace = namespace;
    this.#maxRecoveries = maxRecoveries;
    this.#retry = retryPolicy(options.retry, DEFAULT_RETRY);
    const clock: unknown = options.clock ?? systemClock;
    if (
      typeof clock !== 'object' ||
      clock === null ||
      (['now', 'setTimeout', 'clearTimeout'] as const).some(
        (name) => typeof (clock as Record<string, unknown>)[name] !== 'function',
      )
    ) {
      throw typeError('options.clock must have now(), setTimeout() and clearTimeout()');
    }
    // Records hold whole, non-negative milliseconds whatever the clock returns.
    const given = clock as Clock;
    this.#clock =
      given === systemClock
        ? given
        : {
            now: () => Math.max(0, Math.floor(given.now())),
            setTimeout: (fn, ms) => given.setTimeout(fn, ms),
            clearTimeout: (handle) => given.clearTimeout(handle),
          };
    this.#store = options.store ?? new LevelStore();
    this.#ownsStore = options.store === undefined;
    this.#port = storePort(this.#store);
    this.#queue = new PQueue({ concurrency });
    for (const wf of options.workflows as readonly unknown[]) this.#register(wf as AnyWorkflow);
    if (options.on !== undefined) {
      if (typeof options.on !== 'object' || options.on === null)
        throw typeError('options.on must be an object of listeners');
      for (const [name, listener] of Object.entries(options.on)) {
        if (typeof listener !== 'function')
          throw typeError(`options.on["${name}"] must be a function`);
        this.#events.on(name as EngineEventName, listener as Listener<EngineEventName>);
      }
    }
    this.#timers = new TimerService(
      this.#store,
      this.#clock,
      (timer) => this.#onTimer(timer),
      (cause) => this.#events.emit('warning', { message: 'The timer service failed', cause }),
    );
    this.#host = this.#makeHost();
    this.#internals = {
      store: this.#store,
      port: this.#port,
      clock: this.#clock,
      events: this.#events,
      lock: this.#lock,
      active: this.#active,
      maxRecoveries: this.#maxRecoveries,
      lookup: (name, version) => this.#lookup(name, version),
      versionNotRegistered: (run) => this.#versionNotRegistered(run),
      launch: (run, def, history, started, kept) => this.#launch(run, def, history, started, kept),
      load: (run, def, history, kept, onTrial) => this.#load(run, def, history, kept, onTrial),
      unpark: (runId) => this.#unpark(runId),
      forget: (runId) => this.#forget(runId),
      notifyFinished: (run, error) => this.#notifyFinished(run, error),
      cancel: (runId) => this.#cancel(runId),
      assertOpen: () => this.#assertOpen(),
      onPaused: (runId, fn) => this.#onPaused(runId, fn),
      timers: this.#timers,
    };
  }

  static async create(options: EngineOptions): Promise<Engine> {
    const engine = new Engine(options);
    await engine.#open(options.recover ?? true);
    return engine;
  }

  #register(wf: AnyWorkflow): void {
    if (
      typeof wf !== 'object' ||
      wf === null ||
      typeof wf.name !== 'string' ||
      typeof wf.run !== 'function'
    ) {
      throw typeError('every entry of options.workflows must be made by workflow()');
    }
    let versions = this.#registry.get(wf.name);
    if (!versions) this.#registry.set(wf.name, (versions = new Map<string, AnyWorkflow>()));
    if (versions.has(wf.version) && versions.get(wf.version) !== wf) {
      throw new CairnError(
        'CONFLICT',
        `Workflow "${wf.name}" version ${wf.version} is registered twice`,
      );
    }
    versions.set(wf.version, wf);
    this.#latest.set(wf.name, wf);
    if (wf.concurrency !== undefined && !this.#workflowQueues.has(wf.name)) {
      this.#workflowQueues.set(wf.name, new PQueue({ concurrency: wf.concurrency }));
    }
  }

  #lookup(name: string, version: string): AnyWorkflow | undefined {
    return this.#registry.get(name)?.get(version);
  }

  #versionNotRegistered(run: Run): CairnError {
    const known = [...(this.#registry.get(run.workflow)?.keys() ?? [])];
    return new CairnError(
      'VERSION_NOT_REGISTERED',
      `Run ${run.id} is pinned to ${run.workflow} version ${run.version}, which this engine does not have (it has: ${known.join(', ') || 'none'}). Register that version to continue the run; it is left as it is.`,
      {
        details: { runId: run.id, workflow: run.workflow, version: run.version, registered: known },
      },
    );
  }

  async #open(recover: boolean): Promise<void> {
    await this.#store.open();
    const salvage = this.#store.salvage;
    if (salvage !== null) {
      this.#events.emit('warning', {
        message: `The store's log was damaged and salvaged: ${salvage.runs.length} run(s) may have lost their last checkpoints (store.salvages(), diagnose())`,
        cause: salvage,
      });
    }
    if (recover) await this.#recoverAll();
    await this.#timers.start();
  }

  /** The store this engine writes to (read it for queries). */
  get store(): Store {
    return this.#store;
  }

  /** Runs executing in memory now (paused runs are not). */
  get activeRuns(): number {
    return this.#active.size;
  }

  on<K extends EngineEventName>(name: K, listener: Listener<K>): () => void {
    this.#assertOpen();
    return this.#events.on(name, listener);
  }

  off<K extends EngineEventName>(name: K, listener: Listener<K>): void {
    this.#events.off(name, listener);
  }

  #assertOpen(): void {
    if (this.#closing) throw new CairnError('ENGINE_CLOSED', 'The engine is closed');
  }

  // --- starting and reading runs ------------------------------------------------------------

  /** Validates the input, creates the run (durably) and starts executing it. */
  async start<W extends AnyWorkflow>(
    wf: W | string,
    input: WorkflowInput<W>,
    options: StartOptions = {},
  ): Promise<RunHandle<WorkflowOutput<W>>> {
    this.#assertOpen();
    const def = this.#resolve(wf);
    if (typeof options !== 'object' || options === null)
      throw typeError('options must be an object');
    checkOptionNames('options', options, START_OPTIONS);
    if (options.id !== undefined) checkId('options.id', options.id);
    const namespace = options.namespace ?? this.#namespace;
    checkId('options.namespace', namespace);
    if (options.tags !== undefined) {
      const tags: readonly unknown[] = options.tags;
      if (!Array.isArray(tags) || tags.some((t) => typeof t !== 'string')) {
        throw typeError('options.tags must be an array of strings');
      }
      if (tags.length > 64 || (tags as string[]).some((t) => t.length > 200 || !t.isWellFormed())) {
        throw new CairnError(
          'INVALID_ARGUMENT',
          'options.tags: at most 64 tags of at most 200 characters, without half of a surrogate pair',
        );
      }
    }
    const parsed = def.input.safeParse(input);
    if (!parsed.success) {
      throw new CairnError('INVALID_INPUT', `The input does not match the schema of ${def.name}`, {
        details: { workflow: def.name, issues: parsed.error.issues },
      });
    }
    assertSerializable(parsed.data, 'input');
    const id = options.id ?? uuidv7(this.#clock.now());
    await this.#lock.run(id, async () => {
      if (options.id !== undefined) {
        const existing = await this.#store.getRun(id);
        if (existing) {
          // Compared as stored (the same value, but for an array made in another realm).
          if (
            existing.workflow === def.name &&
            isDeepStrictEqual(existing.input, roundTrip(parsed.data))
          )
            return;
          throw new CairnError(
            'CONFLICT',
            `A run with id "${id}" already exists with ${existing.workflow === def.name ? 'other input' : `workflow ${existing.workflow}`}`,
            { details: { runId: id, workflow: existing.workflow } },
          );
        }
      }
      const now = this.#clock.now();
      const run = newRun({
        id,
        def,
        namespace,
        input: parsed.data,
        now,
        tags: options.tags ?? [],
      });
      // A generated id is new (UUIDv7): no need to read before writing, and nothing to delete.
      if (options.id === undefined)
        await this.#port.write({ runs: [run] }, { durable: true, created: true });
      else await this.#store.createRun(run);
      this.#launch(run, def, [], true);
    });
    return this.handle<WorkflowOutput<W>>(id);
  }

  #resolve(wf: AnyWorkflow | string): AnyWorkflow {
    if (typeof wf === 'string') {
      const def = this.#latest.get(wf);
      if (!def) {
        throw new CairnError('WORKFLOW_NOT_REGISTERED', `No workflow named "${wf}" is registered`, {
          details: { workflow: wf },
        });
      }
      return def;
    }
    if (typeof wf !== 'object' || wf === null || typeof wf.name !== 'string') {
      throw typeError('workflow must be a workflow definition or the name of one');
    }
    const def = this.#lookup(wf.name, wf.version);
    if (!def) {
      throw new CairnError(
        'WORKFLOW_NOT_REGISTERED',
        `Workflow "${wf.name}" version ${wf.version} is not registered with this engine`,
        { details: { workflow: wf.name, version: wf.version } },
      );
    }
    return def;
  }

  /** A handle on an existing run (it is not checked until used). */
  handle<O = unknown>(runId: string): RunHandle<O> {
    this.#assertOpen();
    checkId('runId', runId);
    return {
      id: runId,
      status: async () => (await this.get(runId)).status,
      run: () => this.get(runId),
      result: async () => {
        this.#assertOpen();
        const run = await this.#waitForRun(runId);
        if (run.status === 'completed') return run.output as O;
        if (run.status === 'cancelled') {
          throw new CairnError('CANCELLED', `Run ${runId} was cancelled`, { details: { runId } });
        }
        throw fromErrorInfo(run.error ?? { message: `Run ${runId} failed` }, 'RUN_FAILED');
      },
    };
  }

  /** The run's record; `NOT_FOUND` if there is none. */
  async get(runId: string): Promise<Run> {
    this.#assertOpen();
    checkId('runId', runId);
    const run = await this.#store.getRun(runId);
    if (!run) throw notFound(runId);
    return run;
  }

  /** The run's tasks in order; `NOT_FOUND` if there is no such run. */
  async tasks(runId: string): Promise<Task[]> {
    await this.get(runId);
    return this.#store.listTasks(runId);
  }

  /** Runs newest first, from the store's indexes (filters: status, workflow, namespace, time, tags). */
  async listRuns(query: ListRunsQuery = {}): Promise<Page<Run>> {
    this.#assertOpen();
    return this.#store.listRuns(query);
  }

  /** Everything about one run: tasks, parallel groups, children, waits, logs. `NOT_FOUND` if none. */
  async runDetail(runId: string): Promise<RunDetail> {
    this.#assertOpen();
    checkId('runId', runId);
    return runDetail(this.#store, runId);
  }

  /** Why a run is where it is, judged with this engine's versions and recovery limit. */
  async diagnose(runId: string): Promise<Diagnosis> {
    checkId('runId', runId);
    const run = await this.get(runId);
    const def = this.#lookup(run.workflow, run.version);
    const diagnosis = await diagnose(this.#store, runId, {
      registeredVersions: [...(this.#registry.get(run.workflow)?.keys() ?? [])],
      maxRecoveries: def?.maxRecoveries ?? this.#maxRecoveries,
      now: this.#clock.now(),
    });
    if (!this.#active.has(runId)) return diagnosis;
    return {
      ...diagnosis,
      findings: [...diagnosis.findings, 'this engine is executing it now'],
    };
  }

  /** Usage totals of completed steps (see `Store.usage`). */
  async usage(query: UsageQuery): Promise<UsageRow[]> {
    this.#assertOpen();
    return this.#store.usage(query);
  }

  /** The approvals inbox: tasks waiting for input across runs, oldest run first. */
  async listWaiting(options: ListWaitingOptions = {}): Promise<Page<WaitingTask>> {
    this.#assertOpen();
    if (typeof options !== 'object' || options === null)
      throw typeError('options must be an object');
    if (typeof options.limit === 'number' && options.limit > MAX_LIMIT) {
      throw new CairnError('INVALID_ARGUMENT', `options.limit must be at most ${MAX_LIMIT}`);
    }
    return listWaitingTasks(this.#store, options, 'options');
  }

  // --- operating on runs (operations.ts) ---------------------------------------------------

  /**
   * Delivers input to a waiting task. The payload is validated by the wait's schema
   * (`INVALID_RESUME_INPUT`, nothing changes); a task that is not waiting is `NOT_WAITING`.
   * Input for a wait the run has not reached yet is kept and used when it gets there.
   */
  resumeTask(
    runId: string,
    taskId: string,
    data: unknown,
    options: ResumeTaskOptions = {},
  ): Promise<ResumeTaskResult> {
    return resumeTask(this.#internals, runId, taskId, data, options);
  }

  /**
   * Resumes the whole run: ends an operator pause, and with `data` resumes every waiting
   * task, all or nothing: one payload for all, or an object keyed by task id.
   */
  resume(runId: string, data?: unknown, options: ResumeOptions = {}): Promise<Run> {
    return resumeRun(this.#internals, runId, data, options);
  }

  /**
   * Operator pause: no new task starts, in-flight steps finish and are checkpointed, then
   * the run is `paused` (with `pausedTaskId`) and stays so across restarts until resumed.
   */
  pause(runId: string): Promise<Run> {
    return pauseRun(this.#internals, runId);
  }

  #onPaused(runId: string, fn: () => void): void {
    let set = this.#pauseWatchers.get(runId);
    if (!set) this.#pauseWatchers.set(runId, (set = new Set()));
    set.add(fn);
  }

  #notifyPaused(runId: string): void {
    const set = this.#pauseWatchers.get(runId);
    this.#pauseWatchers.delete(runId);
    for (const fn of set ?? []) fn();
  }

  /** Cancels a run: in-flight steps see their signal aborted, the run ends `cancelled`. */
  async cancel(runId: string): Promise<Run> {
    this.#assertOpen();
    checkId('runId', runId);
    return this.#cancel(runId);
  }

  #cancel(runId: string): Promise<Run> {
    return cancelRun(this.#internals, runId);
  }

  // --- executing ---------------------------------------------------------------------------

  /** Executes a run in memory; `started` when it starts for the first time (not a reload). */
  #launch(
    run: Run,
    def: AnyWorkflow,
    history: readonly Task[],
    started: boolean,
    kept: readonly InboxEntry[] = [],
    onTrial = false,
  ): RunExecution {
    const exec = new RunExecution(this.#host, def, run, history, kept, onTrial);
    this.#forget(run.id);
    this.#active.set(run.id, exec);
    if (started) {
      this.#events.emit('run:started', {
        runId: run.id,
        workflow: run.workflow,
        version: run.version,
        namespace: run.namespace,
        parentRunId: run.parentRunId,
      });
    }
    exec.start();
    return exec;
  }

  async #load(
    run: Run,
    def: AnyWorkflow,
    history?: readonly Task[],
    kept?: readonly InboxEntry[],
    onTrial = false,
  ): Promise<RunExecution> {
    // A run's history and its inbox are read together.
    const [tasks, inbox] = await Promise.all([
      history ?? this.#store.listTasks(run.id),
      kept ?? this.#store.listInbox(run.id),
    ]);
    const exec = this.#launch(run, def, tasks, false, inbox, onTrial);
    this.#timers.release(run.id);
    return exec;
  }

  /** Keeps a run paused waiting for input in memory; the least recently paused leave. */
  #park(exec: RunExecution): void {
    this.#forget(exec.id);
    const stamp = this.#port.changes.watch(exec.id);
    // A store that cannot know of every write to the run (others write its data) keeps none.
    if (stamp === null) {
      exec.unload();
      return;
    }
    this.#parked.set(exec.id, { exec, stamp });
    for (const id of this.#parked.keys()) {
      if (this.#parked.size <= this.#keepPaused) break;
      this.#forget(id);
    }
  }

  /** A parked run leaves memory (something else changes it, or loads it afresh). */
  #forget(runId: string): void {
    const parked = this.#parked.get(runId);
    if (parked === undefined) return;
    this.#parked.delete(runId);
    this.#port.changes.unwatch(runId);
    parked.exec.unload();
  }

  /**
   * The parked execution of a run, made the run's execution in memory again, if nothing wrote
   * the run since it paused (the store follows every write that names the run). Otherwise it
   * is dropped, and the run is loaded from the store as if it had never been kept.
   */
  #unpark(runId: string): RunExecution | undefined {
    const parked = this.#parked.get(runId);
    if (parked === undefined) return undefined;
    if (!this.#port.changes.unchanged(runId, parked.stamp)) {
      this.#forget(runId);
      return undefined;
    }
    this.#parked.delete(runId);
    this.#port.changes.unwatch(runId);
    this.#active.set(runId, parked.exec);
    parked.exec.unpark();
    return parked.exec;
  }

  async #waitForRun(runId: string): Promise<Run> {
    return new Promise<Run>((resolve, reject) => {
      let set = this.#watchers.get(runId);
      if (!set) this.#watchers.set(runId, (set = new Set()));
      const watcher = { resolve, reject };
      set.add(watcher);
      // A run executing here reports its end to the watcher; no read needed.
      if (this.#active.has(runId)) return;
      this.#store.getRun(runId).then(
        (run) => {
          if (!run) {
            set.delete(watcher);
            reject(notFound(runId));
          } else if (TERMINAL_STATUSES.has(run.status)) {
            set.delete(watcher);
            resolve(run);
          }
        },
        (error: unknown) => {
          set.delete(watcher);
          reject(error instanceof Error ? error : new Error(String(error)));
        },
      );
    });
  }

  #notifyFinished(run: Run, error?: unknown): void {
    const set = this.#watchers.get(run.id);
    this.#watchers.delete(run.id);
    for (const w of set ?? []) {
      if (error === undefined) w.resolve(run);
      else w.reject(error);
    }
  }

  #makeHost(): ExecutionHost {
    return {
      store: this.#store,
      port: this.#port,
      clock: this.#clock,
      events: this.#events,
      retry: this.#retry,
      closing: () => this.#closing !== null,
      schedule: <T>(def: AnyWorkflow, fn: () => Promise<T>): Promise<T> => {
        const perWorkflow = this.#workflowQueues.get(def.name);
        const global = (): Promise<T> => this.#queue.add(fn);
        return perWorkflow ? perWorkflow.add(global) : global();
      },
      armTimer: (at) => this.#timers.notify(at),
      registered: (def) => this.#lookup(def.name, def.version) === def,
      // A child created while the engine closes is left to the next engine, which recovers it.
      launch: (run, def) => {
        if (this.#closing === null) this.#launch(run, def, [], true);
      },
      waitForRun: (runId) => this.#waitForRun(runId),
      cancelRun: (runId) => this.#cancel(runId),
      requestEvict: (exec) => {
        this.#lock
          .run(exec.id, async () => {
            if (this.#active.get(exec.id) !== exec) return;
            const outcome = await exec.pauseAndEvict(this.#keepPaused > 0);
            if (outcome === null) return;
            this.#active.delete(exec.id);
            if (outcome === 'parked') this.#park(exec);
            this.#timers.release(exec.id);
            this.#notifyPaused(exec.id);
          })
          .catch((cause: unknown) =>
            this.#events.emit('warning', { message: 'A pause failed', runId: exec.id, cause }),
          );
      },
      finished: (exec, writeError) => {
        if (this.#active.get(exec.id) === exec) this.#active.delete(exec.id);
        this.#timers.release(exec.id);
        this.#notifyPaused(exec.id);
        if (writeError === undefined) {
          this.#notifyFinished(exec.run);
        } else {
          const error = new CairnError(
            'WRITE_FAILED',
            `The end of run ${exec.id} could not be written; the run stops here and is recovered when the engine starts again`,
            { cause: writeError, details: { runId: exec.id } },
          );
          this.#events.emit('problem', { runId: exec.id, error });
          this.#notifyFinished(exec.run, error);
        }
      },
      dropped: (exec) => {
        if (this.#active.get(exec.id) === exec) this.#active.delete(exec.id);
        this.#timers.release(exec.id);
      },
      stepStarted: () => {
        this.#executing++;
      },
      stepEnded: () => {
        this.#executing--;
        if (this.#executing === 0) {
          const idle = this.#idle;
          this.#idle = [];
          for (const fn of idle) fn();
        }
      },
    };
  }

  // --- timers and recovery (recovery.ts) ------------------------------------------------------

  #onTimer(timer: Timer): Promise<TimerVerdict> {
    return dispatchTimer(this.#internals, timer);
  }

  #recoverAll(): Promise<void> {
    return recoverAll(this.#internals);
  }

  // --- closing -------------------------------------------------------------------------------

  /**
   * Stops: nothing new starts, steps in flight get `options.timeout` (default 5 s) to finish
   * and be checkpointed; past it their signals are aborted and nothing more is written for
   * them. Then the store is closed (if the engine opened it). Runs not finished are recovered
   * by the next engine. Every later call is `ENGINE_CLOSED`.
   */
  async close(options: CloseOptions = {}): Promise<void> {
    if (this.#closing) return this.#closing;
    const timeout = closeTimeout(options);
    this.#closing = this.#close(timeout);
    return this.#closing;
  }

  async #close(timeout: number): Promise<void> {
    this.#timers.stop();
    this.#queue.clear();
    for (const q of this.#workflowQueues.values()) q.clear();
    if (this.#executing > 0 && !(await this.#drained(timeout))) {
      this.#stopRuns(
        'The engine closed before the step ended; it runs again when an engine recovers the run',
      );
      // Their attempts end at once (nothing is written for them).
      if (this.#executing > 0) await new Promise<void>((resolve) => this.#idle.push(resolve));
    }
    // Let the checkpoints of the steps that just finished be issued.
    await new Promise<void>((resolve) => setImmediate(resolve));
    // Nothing more is written here for the runs still in memory (retry delays end, held
    // calls stay held): the next engine carries them on.
    this.#stopRuns('The engine closed; an engine that recovers the run carries it on');
    this.#active.clear();
    for (const id of [...this.#parked.keys()]) this.#forget(id);
    for (const runId of [...this.#pauseWatchers.keys()]) this.#notifyPaused(runId);
    const closed = new CairnError('ENGINE_CLOSED', 'The engine closed before the run ended');
    for (const watchers of this.#watchers.values()) for (const w of watchers) w.reject(closed);
    this.#watchers.clear();
    if (this.#ownsStore) await this.#store.close();
  }

  /** Resolves true once no step is in flight, or false after `timeout` ms. */
  #drained(timeout: number): Promise<boolean> {
    return new Promise<boolean>((resolve) => {
      let timer: unknown;
      this.#idle.push(() => {
        if (timer !== undefined) this.#clock.clearTimeout(timer);
        resolve(true);
      });
      if (timeout !== Infinity) timer = this.#clock.setTimeout(() => resolve(false), timeout);
    });
  }

  /** Every run executing here stops: its steps' signals are aborted, nothing more is written. */
  #stopRuns(message: string): void {
    const reason = new CairnError('ENGINE_CLOSED', message);
    for (const exec of this.#active.values()) exec.stop(reason);
  }
}

/** The default of `close({ timeout })`: within the shortest common stop grace period (10 s). */
const CLOSE_TIMEOUT_MS = 5_000;

function closeTimeout(options: CloseOptions): number {
  if (typeof options !== 'object' || options === null) throw typeError('options must be an object');
  checkOptionNames('options', options, CLOSE_OPTIONS);
  if (options.timeout === undefined) return CLOSE_TIMEOUT_MS;
  if (options.timeout === Infinity) return Infinity;
  return toMs(options.timeout, 'options.timeout');
}
