import { assertSerializable } from './codec.js';
import { CairnError } from './errors.js';
import {
  IdSchema,
  LogInputSchema,
  RunSchema,
  RunStatusSchema,
  TaskSchema,
  type LogInput,
  type LogLine,
  type Run,
  type RunStatus,
  type Task,
  type Timer,
} from './records.js';

/**
 * `strict` syncs every batch to disk before its promise resolves (survives power loss).
 * `process` hands the batch to the OS without syncing (survives a crash of the process).
 */
export type Durability = 'strict' | 'process';

/** What a backend can do; the conformance suite skips, with a reason, what it cannot. */
export interface StoreSupports {
  /** Data outlives `close()` and a new store at the same location sees it. */
  readonly persistence: boolean;
  /** A second process opening the same location is refused with `STORE_LOCKED`. */
  readonly locking: boolean;
  /** Older on-disk layouts are migrated forward on open. */
  readonly migrations: boolean;
}

export interface InboxRef {
  readonly runId: string;
  readonly taskId: string;
}

/**
 * One atomic state change: every record here, every index entry and timer derived from
 * them, and every inbox entry consumed, are written in one batch or not at all.
 */
export interface Checkpoint {
  /** Run records to write (whole records: they replace what is stored). */
  readonly runs?: readonly Run[];
  /** Task records to write (whole records). */
  readonly tasks?: readonly Task[];
  /** Inbox entries consumed by this change, deleted in the same batch. */
  readonly inboxTaken?: readonly InboxRef[];
}

export interface CheckpointOptions {
  /**
   * `false` marks a write whose loss is harmless (a step's "started" marker): it is not
   * synced on its own, and a later write of the same key in the same batch replaces it.
   * @default true
   */
  readonly durable?: boolean;
}

export interface ListRunsQuery {
  readonly status?: RunStatus;
  readonly workflow?: string;
  readonly namespace?: string;
  /** @default 100 */
  readonly limit?: number;
  /** The `cursor` of the previous page. */
  readonly cursor?: string | null;
}

export interface ListWaitingQuery {
  readonly runId?: string;
  /** @default 100 */
  readonly limit?: number;
  readonly cursor?: string | null;
}

/** A record that could not be read, reported instead of failing the whole listing. */
export interface CorruptRecord {
  readonly key: string;
  readonly error: CairnError;
}

export interface Page<T> {
  readonly items: T[];
  /** Pass as `cursor` to get the next page; `null` when there is none. */
  readonly cursor: string | null;
  readonly corrupt: CorruptRecord[];
}

export interface InboxEntry {
  readonly runId: string;
  readonly taskId: string;
  readonly data: unknown;
  readonly at: number;
}

export interface IntegrityProblem {
  readonly kind: 'corrupt' | 'missing-entry' | 'orphan-entry' | 'orphan-task';
  readonly key: string;
  readonly message: string;
}

export interface IntegrityReport {
  readonly ok: boolean;
  readonly runs: number;
  readonly tasks: number;
  readonly entries: number;
  readonly problems: IntegrityProblem[];
}

export type StoreStatus = 'opening' | 'open' | 'closing' | 'closed';

/** The key of the engine's unchecked write path on every `Store` (see `[TRUSTED_CHECKPOINT]`). */
export const TRUSTED_CHECKPOINT: unique symbol = Symbol.for('cairn.store.trustedCheckpoint');

const VALIDATE_TRUSTED = process.env.CAIRN_VALIDATE_WRITES === '1';

export const MAX_LIMIT = 1000;
const DEFAULT_LIMIT = 100;
const RESERVED_META = new Set(['schemaVersion', 'migration', 'logSeq']);

/**
 * The store contract. Public methods check their arguments and the store's state, then call
 * the protected `_methods` a backend implements, so every backend rejects bad input the same
 * way: a `TypeError` (code `INVALID_ARGUMENT`) for arguments of the wrong type, a
 * `CairnError` for values that are the right type but invalid.
 */
export abstract class Store {
  abstract readonly supports: StoreSupports;
  /** Where the data lives (a directory for LevelDB), or null for memory. */
  abstract readonly location: string | null;
  abstract readonly durability: Durability;

  #status: StoreStatus = 'closed';
  #opening: Promise<void> | null = null;

  get status(): StoreStatus {
    return this.#status;
  }

  /** Opens the store, creating, migrating or refusing it as needed. Safe to call twice. */
  async open(): Promise<void> {
    if (this.#status === 'open') return;
    if (this.#opening) return this.#opening;
    this.#status = 'opening';
    this.#opening = this._open().then(
      () => {
        this.#status = 'open';
        this.#opening = null;
      },
      (error: unknown) => {
        this.#status = 'closed';
        this.#opening = null;
        throw error;
      },
    );
    return this.#opening;
  }

  /** Waits for pending writes, then closes. Safe to call twice. */
  async close(): Promise<void> {
    if (this.#opening) await this.#opening.catch(() => undefined);
    if (this.#status !== 'open') return;
    this.#status = 'closing';
    try {
      await this._close();
    } finally {
      this.#status = 'closed';
    }
  }

  /** Creates a run. `ALREADY_EXISTS` if a run with its id exists. */
  async createRun(run: Run): Promise<void> {
    const checked = checkRun(run);
    this.#assertOpen();
    await this._createRun(checked);
  }

  async getRun(runId: string): Promise<Run | undefined> {
    checkId('runId', runId);
    this.#assertOpen();
    return this._getRun(runId);
  }

  /** Writes one atomic checkpoint (see `Checkpoint`). */
  async checkpoint(checkpoint: Checkpoint, options: CheckpointOptions = {}): Promise<void> {
    const checked = checkCheckpoint(checkpoint);
    if (typeof options !== 'object' || options === null) {
      throw typeError('options must be an object');
    }
    if (options.durable !== undefined && typeof options.durable !== 'boolean') {
      throw typeError('options.durable must be a boolean');
    }
    this.#assertOpen();
    await this._checkpoint(checked, options.durable ?? true);
  }

  /**
   * The engine's write path: a checkpoint of records the engine built itself, written
   * without checking them again (they are checked on every read). A soft write
   * (`durable: false`) is encoded only when its batch is flushed, and not at all when a later
   * write of the same record replaces it first. Application code uses `checkpoint()`.
   */
  [TRUSTED_CHECKPOINT](checkpoint: Checkpoint, durable: boolean): Promise<void> {
    this.#assertOpen();
    // The test suite sets CAIRN_VALIDATE_WRITES so every record the engine writes is checked.
    if (VALIDATE_TRUSTED) checkCheckpoint(checkpoint);
    return this._checkpoint(checkpoint, durable, true);
  }

  async getTask(runId: string, taskId: string): Promise<Task | undefined> {
    checkId('runId', runId);
    checkId('taskId', taskId);
    this.#assertOpen();
    return this._getTask(runId, taskId);
  }

  /** A run's tasks, ordered by `seq`. */
  async listTasks(runId: string): Promise<Task[]> {
    checkId('runId', runId);
    this.#assertOpen();
    const tasks = await this._listTasks(runId);
    return tasks.sort((a, b) => a.seq - b.seq);
  }

  /**
   * Runs newest first, from one index: by status, workflow or namespace (namespace and
   * status together use their own index), or all runs. Combining workflow with another
   * filter scans the workflow index and filters.
   */
  async listRuns(query: ListRunsQuery = {}): Promise<Page<Run>> {
    if (typeof query !== 'object' || query === null) throw typeError('query must be an object');
    if (query.status !== undefined) {
      if (typeof query.status !== 'string') throw typeError('query.status must be a string');
      if (!RunStatusSchema.safeParse(query.status).success) {
        throw invalid(`query.status "${query.status}" is not a run status`);
      }
    }
    if (query.workflow !== undefined) checkId('query.workflow', query.workflow);
    if (query.namespace !== undefined) checkId('query.namespace', query.namespace);
    const limit = checkLimit(query.limit);
    const cursor = checkCursor(query.cursor);
    this.#assertOpen();
    return this._listRuns({ ...query, limit, cursor });
  }

  /** Tasks waiting for input, across runs (or in one run), oldest run first. */
  async listWaiting(query: ListWaitingQuery = {}): Promise<Page<Task>> {
    if (typeof query !== 'object' || query === null) throw typeError('query must be an object');
    if (query.runId !== undefined) checkId('query.runId', query.runId);
    const limit = checkLimit(query.limit);
    const cursor = checkCursor(query.cursor);
    this.#assertOpen();
    return this._listWaiting({ ...query, limit, cursor });
  }

  /** Timers due at or before `at` (epoch ms), earliest first. */
  async dueTimers(at: number, limit: number = MAX_LIMIT): Promise<Timer[]> {
    if (typeof at !== 'number' || Number.isNaN(at)) throw typeError('at must be a number');
    const checkedLimit = checkLimit(limit);
    this.#assertOpen();
    return this._dueTimers(at, checkedLimit);
  }

  /** The earliest pending timer, if any. */
  async nextTimer(): Promise<Timer | undefined> {
    this.#assertOpen();
    const [first] = await this._dueTimers(Number.MAX_SAFE_INTEGER, 1);
    return first;
  }

  /** Keeps input that arrived for a task; replaces earlier input for the same task. */
  async putInbox(runId: string, taskId: string, data: unknown): Promise<void> {
    checkId('runId', runId);
    checkId('taskId', taskId);
    assertSerializable(data, 'data');
    this.#assertOpen();
    await this._putInbox({ runId, taskId, data, at: Date.now() });
  }

  async getInbox(runId: string, taskId: string): Promise<InboxEntry | undefined> {
    checkId('runId', runId);
    checkId('taskId', taskId);
    this.#assertOpen();
    return this._getInbox(runId, taskId);
  }

  /** Removes and returns the input kept for a task. */
  async takeInbox(runId: string, taskId: string): Promise<InboxEntry | undefined> {
    checkId('runId', runId);
    checkId('taskId', taskId);
    this.#assertOpen();
    return this._takeInbox(runId, taskId);
  }

  async listInbox(runId: string): Promise<InboxEntry[]> {
    checkId('runId', runId);
    this.#assertOpen();
    return this._listInbox(runId);
  }

  /** Appends log lines (not synced on their own: logs are telemetry). Returns them with `seq`. */
  async appendLogs(lines: readonly LogInput[]): Promise<LogLine[]> {
    if (!Array.isArray(lines)) throw typeError('lines must be an array');
    // Array.from, not map: a hole in a sparse array is checked (as undefined), not skipped.
    const checked = Array.from(lines, (line, i) => {
      const parsed = LogInputSchema.safeParse(line);
      if (!parsed.success) throw invalid(`lines[${i}] is not a valid log line`, parsed.error);
      assertSerializable(parsed.data.data, `lines[${i}].data`);
      return parsed.data;
    });
    this.#assertOpen();
    if (checked.length === 0) return [];
    return this._appendLogs(checked);
  }

  async readLogs(
    runId: string,
    options: { readonly afterSeq?: number; readonly limit?: number } = {},
  ): Promise<LogLine[]> {
    checkId('runId', runId);
    if (typeof options !== 'object' || options === null)
      throw typeError('options must be an object');
    if (options.afterSeq !== undefined) {
      if (typeof options.afterSeq !== 'number')
        throw typeError('options.afterSeq must be a number');
      // NaN, fractions and infinities would be padded into nonsense keys.
      if (!Number.isSafeInteger(options.afterSeq))
        throw invalid('options.afterSeq must be an integer');
    }
    const limit =
      options.limit === undefined ? Number.MAX_SAFE_INTEGER : checkLimit(options.limit, Infinity);
    this.#assertOpen();
    return this._readLogs(runId, options.afterSeq ?? -1, limit);
  }

  /** Deletes a run with its tasks, index entries, timers, inbox and logs. False if absent. */
  async deleteRun(runId: string): Promise<boolean> {
    checkId('runId', runId);
    this.#assertOpen();
    return this._deleteRun(runId);
  }

  async getMeta(name: string): Promise<unknown> {
    checkId('name', name);
    this.#assertOpen();
    return this._getMeta(name);
  }

  async putMeta(name: string, value: unknown): Promise<void> {
    checkId('name', name);
    if (RESERVED_META.has(name)) throw invalid(`meta "${name}" is managed by the store`);
    assertSerializable(value, 'value');
    this.#assertOpen();
    await this._putMeta(name, value);
  }

  /** The on-disk format version of the open store. */
  abstract readonly schemaVersion: number;

  /**
   * Reads everything and checks that every index entry and timer has its record and every
   * record has its entries. Reports corrupt records too. For tests and `doctor`, not hot paths.
   */
  async verify(): Promise<IntegrityReport> {
    this.#assertOpen();
    return this._verify();
  }

  #assertOpen(): void {
    if (this.#status !== 'open') {
      throw new CairnError('STORE_CLOSED', `The store is ${this.#status}; call open() first`);
    }
  }

  protected abstract _open(): Promise<void>;
  protected abstract _close(): Promise<void>;
  protected abstract _createRun(run: Run): Promise<void>;
  protected abstract _getRun(runId: string): Promise<Run | undefined>;
  /** `trusted`: the records come from `[TRUSTED_CHECKPOINT]` and a soft write may be deferred. */
  protected abstract _checkpoint(
    checkpoint: Checkpoint,
    durable: boolean,
    trusted?: boolean,
  ): Promise<void>;
  protected abstract _getTask(runId: string, taskId: string): Promise<Task | undefined>;
  protected abstract _listTasks(runId: string): Promise<Task[]>;
  protected abstract _listRuns(
    query: ListRunsQuery & { limit: number; cursor: string | null },
  ): Promise<Page<Run>>;
  protected abstract _listWaiting(
    query: ListWaitingQuery & { limit: number; cursor: string | null },
  ): Promise<Page<Task>>;
  protected abstract _dueTimers(at: number, limit: number): Promise<Timer[]>;
  protected abstract _putInbox(entry: InboxEntry): Promise<void>;
  protected abstract _getInbox(runId: string, taskId: string): Promise<InboxEntry | undefined>;
  protected abstract _takeInbox(runId: string, taskId: string): Promise<InboxEntry | undefined>;
  protected abstract _listInbox(runId: string): Promise<InboxEntry[]>;
  protected abstract _appendLogs(lines: readonly LogInput[]): Promise<LogLine[]>;
  protected abstract _readLogs(runId: string, afterSeq: number, limit: number): Promise<LogLine[]>;
  protected abstract _deleteRun(runId: string): Promise<boolean>;
  protected abstract _getMeta(name: string): Promise<unknown>;
  protected abstract _putMeta(name: string, value: unknown): Promise<void>;
  protected abstract _verify(): Promise<IntegrityReport>;
}

// --- argument checks, shared by every backend -------------------------------------------

export function typeError(message: string): TypeError {
  return Object.assign(new TypeError(message), { code: 'INVALID_ARGUMENT' as const });
}

function invalid(message: string, cause?: { issues?: unknown }): CairnError {
  return new CairnError('INVALID_ARGUMENT', message, {
    cause,
    details: cause?.issues === undefined ? {} : { issues: cause.issues },
  });
}

export function checkId(name: string, value: unknown): asserts value is string {
  if (typeof value !== 'string') throw typeError(`${name} must be a string`);
  if (!IdSchema.safeParse(value).success) {
    throw invalid(`${name} must be 1-200 characters without control characters`);
  }
}

function checkLimit(limit: unknown, max: number = MAX_LIMIT): number {
  if (limit === undefined) return DEFAULT_LIMIT;
  if (typeof limit !== 'number') throw typeError('limit must be a number');
  if (!Number.isInteger(limit) || limit < 1 || limit > max) {
    throw invalid(`limit must be an integer from 1 to ${max}`);
  }
  return limit;
}

function checkCursor(cursor: unknown): string | null {
  if (cursor === undefined || cursor === null) return null;
  if (typeof cursor !== 'string') throw typeError('cursor must be a string');
  if (cursor.length === 0 || cursor.length > 1024) throw invalid('cursor is not a valid cursor');
  return cursor;
}

export function checkRun(run: unknown): Run {
  if (typeof run !== 'object' || run === null) throw typeError('run must be an object');
  const parsed = RunSchema.safeParse(run);
  if (!parsed.success) throw invalid('run is not a valid Run record', parsed.error);
  const checked = parsed.data;
  if (checked.isPaused !== (checked.status === 'paused')) {
    throw invalid('run.isPaused must be true exactly when run.status is "paused"');
  }
  assertSerializable(checked.input, 'run.input');
  assertSerializable(checked.output, 'run.output');
  assertSerializable(checked.error, 'run.error');
  return checked;
}

export function checkTask(task: unknown): Task {
  if (typeof task !== 'object' || task === null) throw typeError('task must be an object');
  const parsed = TaskSchema.safeParse(task);
  if (!parsed.success) throw invalid('task is not a valid Task record', parsed.error);
  const checked = parsed.data;
  assertSerializable(checked.output, 'task.output');
  assertSerializable(checked.meta, 'task.meta');
  assertSerializable(checked.schema, 'task.schema');
  assertSerializable(checked.error, 'task.error');
  return checked;
}

function checkCheckpoint(checkpoint: unknown): Checkpoint {
  if (typeof checkpoint !== 'object' || checkpoint === null) {
    throw typeError('checkpoint must be an object');
  }
  const cp = checkpoint as Checkpoint;
  for (const name of ['runs', 'tasks', 'inboxTaken'] as const) {
    if (cp[name] !== undefined && !Array.isArray(cp[name])) {
      throw typeError(`checkpoint.${name} must be an array`);
    }
  }
  // Array.from, not map: a hole in a sparse array is checked (as undefined), not skipped.
  const runs = Array.from(cp.runs ?? [], (run) => checkRun(run));
  const tasks = Array.from(cp.tasks ?? [], (task) => checkTask(task));
  const inboxTaken = Array.from(cp.inboxTaken ?? [], (ref: InboxRef | undefined, i) => {
    if (typeof ref !== 'object' || ref === null)
      throw typeError(`checkpoint.inboxTaken[${i}] must be an object`);
    checkId(`checkpoint.inboxTaken[${i}].runId`, ref.runId);
    checkId(`checkpoint.inboxTaken[${i}].taskId`, ref.taskId);
    return { runId: ref.runId, taskId: ref.taskId };
  });
  const seen = new Set<string>();
  for (const run of runs) {
    if (seen.has(run.id)) throw invalid(`checkpoint.runs has run "${run.id}" twice`);
    seen.add(run.id);
  }
  return { runs, tasks, inboxTaken };
}
