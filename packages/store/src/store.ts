import { assertSerializable } from './codec.js';
import type { SalvageReport } from './log-recovery.js';
import { CairnError } from './errors.js';
import { checkOptionNames, optionNames } from './options.js';
import {
  checkExportOptions,
  exportRuns,
  exportSteps,
  type ExportOptions,
  type ExportResult,
  type LineWriter,
} from './export.js';
import {
  checkImportArgs,
  parseImport,
  type ImportOptions,
  type ImportResult,
  type RunBundle,
} from './import.js';
import {
  checkPruneOptions,
  prune,
  type DeleteCounts,
  type PruneOptions,
  type PruneResult,
} from './retention.js';
import { USAGE_GROUPS, UsageDeltaSchema, isDay, type UsageQuery, type UsageRow } from './usage.js';
import {
  IdSchema,
  LogInputSchema,
  RunSchema,
  RunStatusSchema,
  TaskSchema,
  type LogInput,
  type LogLine,
  type Run,
  type Task,
  type Timer,
} from './records.js';
import { ChangeTracker } from './change-tracker.js';
import { PORT, type BackendWriteOptions, type StorePort } from './engine-port.js';
import type {
  Checkpoint,
  CheckpointOptions,
  Durability,
  InboxEntry,
  InboxRef,
  IntegrityReport,
  ListRunsQuery,
  ListWaitingQuery,
  Page,
  RunFilter,
  StoreStatus,
  StoreSupports,
} from './store-types.js';

const VALIDATE_TRUSTED = process.env.CAIRN_VALIDATE_WRITES === '1';

export const MAX_LIMIT = 1000;
const DEFAULT_LIMIT = 100;
const RESERVED_META = new Set([
  'schemaVersion',
  'migration',
  'logSeq',
  'appliedSeq',
  'logOpen',
  'salvage',
]);
/** The largest time a `Date` holds, so every bound can be shown as a date. */
const MAX_TIME = 8.64e15;

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
  /** Which followed runs were written since (for the engine's paused runs: change-tracker.ts). */
  readonly #changes = new ChangeTracker(
    () => this.soleWriter,
    () => this.#status === 'open',
  );

  /**
   * Whether every write to the data goes through this object, so that it knows of every
   * change (a store whose data other processes write answers false, and change tracking
   * always reports a change).
   */
  protected get soleWriter(): boolean {
    return false;
  }

  get status(): StoreStatus {
    return this.#status;
  }

  /** Opens the store, creating, migrating or refusing it as needed. Safe to call twice. */
  async open(): Promise<void> {
    if (this.#status === 'open') return;
    if (this.#opening) return this.#opening;
    this.#status = 'opening';
    // Whatever was followed may have changed while the store was closed.
    this.#changes.forgetAll();
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
    this.#changes.touch(checked.id);
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
    checkOptionNames('options', options, CHECKPOINT_OPTIONS);
    if (options.durable !== undefined && typeof options.durable !== 'boolean') {
      throw typeError('options.durable must be a boolean');
    }
    this.#assertOpen();
    this.#changes.touchCheckpoint(checked);
    await this._checkpoint(checked, { durable: options.durable ?? true, trusted: false });
  }

  /**
   * The engine's door into this store (engine-port.ts): its writes, which skip checks the
   * engine's own records do not need, and the change tracker. Reached through `storePort()`
   * from `@cairn/store/engine`; the symbol is not part of the main entry.
   */
  [PORT](): StorePort {
    return {
      write: (checkpoint, options) => {
        this.#assertOpen();
        // The test suite sets CAIRN_VALIDATE_WRITES so every record the engine writes is checked.
        if (VALIDATE_TRUSTED) checkCheckpoint(checkpoint);
        this.#changes.touchCheckpoint(checkpoint);
        return this._checkpoint(checkpoint, {
          durable: options.durable,
          trusted: true,
          created: options.created === true,
        });
      },
      changes: this.#changes,
    };
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
   * Runs newest first, from one index, bounded by the time range (`since`, `until` on
   * `createdAt`): the most selective of namespace and status, status, workflow, tag,
   * namespace, or all runs; the other filters are checked on each record. Never a scan of
   * all runs when a filter is given.
   */
  async listRuns(query: ListRunsQuery = {}): Promise<Page<Run>> {
    const filter = checkFilter(query, 'query', LIST_RUNS_QUERY);
    const limit = checkLimit(query.limit);
    const cursor = checkCursor(query.cursor);
    this.#assertOpen();
    return this._listRuns({ ...filter, limit, cursor });
  }

  /**
   * Usage totals of completed steps, grouped `by` namespace, workflow, model or day, from the
   * aggregates the store keeps as steps complete (no run or task is read).
   */
  async usage(query: UsageQuery): Promise<UsageRow[]> {
    if (typeof query !== 'object' || query === null) throw typeError('query must be an object');
    checkOptionNames('query', query, USAGE_QUERY);
    if (typeof query.by !== 'string') throw typeError('query.by must be a string');
    if (!(USAGE_GROUPS as readonly string[]).includes(query.by)) {
      throw invalid(`query.by must be one of ${USAGE_GROUPS.join(', ')}`);
    }
    for (const name of ['since', 'until'] as const) {
      const value = query[name];
      if (value === undefined) continue;
      if (typeof value === 'number') checkTime(`query.${name}`, value);
      else if (typeof value !== 'string') throw typeError(`query.${name} must be a day or a time`);
      else if (!isDay(value)) throw invalid(`query.${name} must be a YYYY-MM-DD day`);
    }
    if (query.namespace !== undefined) checkId('query.namespace', query.namespace);
    if (query.workflow !== undefined) checkId('query.workflow', query.workflow);
    this.#assertOpen();
    return this._usage(query);
  }

  /**
   * Deletes terminal runs that ended before `olderThan`, with their tasks, logs, inbox, index
   * entries and timers (each run in one atomic batch), found through the status index; then
   * compacts the freed space where the backend can. Usage totals are kept.
   */
  async prune(options: PruneOptions): Promise<PruneResult> {
    const checked = checkPruneOptions(options);
    this.#assertOpen();
    return prune(this, checked, {
      deleteRuns: (runIds, dryRun) => {
        if (!dryRun) for (const id of runIds) this.#changes.touch(id);
        return this._deleteRuns(runIds, dryRun);
      },
      compact: () => this._compact(),
    });
  }

  /**
   * Writes the runs `options.filter` selects as NDJSON lines, newest first: a header, then one
   * line per run with its tasks, logs and inbox. `write` gets each line without its line break.
   */
  async exportRuns(write: LineWriter, options: ExportOptions = {}): Promise<ExportResult> {
    if (typeof write !== 'function') throw typeError('write must be a function');
    const filter = checkExportOptions(options, checkFilter);
    this.#assertOpen();
    return exportRuns(this, write, filter, options.onProgress);
  }

  /**
   * Reads an export (NDJSON lines) and writes its runs. Every line is checked before anything
   * is written: bad lines are `INVALID_IMPORT` with `details.lines` (`{ line, message }`), and
   * runs that exist already are `ALREADY_EXISTS` unless `conflict: 'skip'`. Each run is then
   * written in one atomic batch with its derived indexes.
   */
  async importRuns(
    lines: AsyncIterable<string> | Iterable<string>,
    options: ImportOptions = {},
  ): Promise<ImportResult> {
    checkImportArgs(lines, options);
    this.#assertOpen();
    return parseImport(lines, options, {
      existing: (runIds) => this._existingRuns(runIds),
      write: (bundles) => {
        for (const bundle of bundles) this.#changes.touch(bundle.run.id);
        return this._importRuns(bundles);
      },
      // The records were parsed with their schemas already.
      check: (bundle) => {
        checkRunValues(bundle.run);
        for (const task of bundle.tasks) checkTaskValues(task);
        for (const line of bundle.logs) assertSerializable(line.data, 'log.data');
        for (const entry of bundle.inbox) assertSerializable(entry.data, 'inbox.data');
        this._checkImported(bundle);
      },
    });
  }

  /** Writes one CSV row per task (recorded values left out) of the runs `filter` selects. */
  async exportSteps(write: LineWriter, filter: RunFilter = {}): Promise<ExportResult> {
    if (typeof write !== 'function') throw typeError('write must be a function');
    const checked = checkFilter(filter, 'filter');
    this.#assertOpen();
    return exportSteps(this, write, checked);
  }

  /** Tasks waiting for input, across runs (or in one run), oldest run first. */
  async listWaiting(query: ListWaitingQuery = {}): Promise<Page<Task>> {
    if (typeof query !== 'object' || query === null) throw typeError('query must be an object');
    checkOptionNames('query', query, LIST_WAITING_QUERY);
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
    this.#changes.touch(runId);
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
    this.#changes.touch(runId);
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
    checkOptionNames('options', options, READ_LOGS_OPTIONS);
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
    this.#changes.touch(runId);
    return this._deleteRun(runId);
  }

  async getMeta(name: string): Promise<unknown> {
    checkId('name', name);
    this.#assertOpen();
    return this._getMeta(name);
  }

  /**
   * Every salvage of a damaged log this store has had, oldest first: when, where the damage
   * was, and the runs that may have lost their last checkpoints (log-recovery.ts). Empty for a
   * backend without a log of its own.
   */
  async salvages(): Promise<SalvageReport[]> {
    this.#assertOpen();
    return this._salvages();
  }

  protected async _salvages(): Promise<SalvageReport[]> {
    return [];
  }

  /** What the last `open()` salvaged from a damaged log, or null (see `salvages()`). */
  get salvage(): SalvageReport | null {
    return null;
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
  /**
   * Writes one checkpoint (see `WriteOptions` in engine-port.ts for `durable` and `created`).
   * `trusted`: the engine built the records (its port), so a soft write may be made when its
   * batch is, and the records replaced need not be read. A backend should refuse (throw)
   * synchronously when it will write nothing (a record too large, the store closed), so that
   * the engine knows at once that nothing was written.
   */
  protected abstract _checkpoint(
    checkpoint: Checkpoint,
    options: BackendWriteOptions,
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
  protected abstract _usage(query: UsageQuery): Promise<UsageRow[]>;
  /** Deletes each run with all it has (or, `dryRun`, only counts it). Absent ids are skipped. */
  protected abstract _deleteRuns(runIds: readonly string[], dryRun: boolean): Promise<DeleteCounts>;
  /** Compacts the storage (only called when `supports.compaction`). */
  protected abstract _compact(): Promise<void>;
  /** The ids among `runIds` that have a run record. */
  protected abstract _existingRuns(runIds: readonly string[]): Promise<Set<string>>;
  /** Writes checked runs with their tasks, logs and inbox; each run in one atomic batch. */
  protected abstract _importRuns(bundles: readonly RunBundle[]): Promise<void>;
  /**
   * Throws what writing `bundle` would refuse (a record too large for the backend), so that
   * the import refuses its line before anything is written.
   */
  protected abstract _checkImported(bundle: RunBundle): void;
}

// --- argument checks, shared by every backend -------------------------------------------

export function typeError(message: string): TypeError {
  return Object.assign(new TypeError(message), { code: 'INVALID_ARGUMENT' as const });
}

export function invalid(message: string, cause?: { issues?: unknown }): CairnError {
  return new CairnError('INVALID_ARGUMENT', message, {
    cause,
    details: cause?.issues === undefined ? {} : { issues: cause.issues },
  });
}

export function checkId(name: string, value: unknown): asserts value is string {
  if (typeof value !== 'string') throw typeError(`${name} must be a string`);
  if (!IdSchema.safeParse(value).success) {
    throw invalid(
      `${name} must be 1-200 characters without control characters or half of a surrogate pair`,
    );
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

function checkTime(name: string, value: unknown): asserts value is number {
  if (typeof value !== 'number') throw typeError(`${name} must be a number (epoch ms)`);
  if (!Number.isFinite(value) || Math.abs(value) > MAX_TIME) {
    throw invalid(`${name} must be a finite time in epoch ms`);
  }
}

/** Checks a run filter; returns only its filter fields. */
const RUN_FILTER = optionNames<RunFilter>()({
  status: true,
  workflow: true,
  namespace: true,
  since: true,
  until: true,
  tags: true,
});
const LIST_RUNS_QUERY: ReadonlySet<string> = new Set([...RUN_FILTER, 'limit', 'cursor']);
const LIST_WAITING_QUERY = optionNames<ListWaitingQuery>()({
  runId: true,
  limit: true,
  cursor: true,
});
const USAGE_QUERY = optionNames<UsageQuery>()({
  by: true,
  since: true,
  until: true,
  namespace: true,
  workflow: true,
});
const CHECKPOINT_OPTIONS = optionNames<CheckpointOptions>()({ durable: true });
const READ_LOGS_OPTIONS = new Set(['afterSeq', 'limit']);

export function checkFilter(
  filter: unknown,
  name: string,
  known: ReadonlySet<string> = RUN_FILTER,
): RunFilter {
  if (typeof filter !== 'object' || filter === null) throw typeError(`${name} must be an object`);
  checkOptionNames(name, filter, known);
  const f = filter as RunFilter;
  if (f.status !== undefined) {
    if (typeof f.status !== 'string') throw typeError(`${name}.status must be a string`);
    if (!RunStatusSchema.safeParse(f.status).success) {
      throw invalid(`${name}.status "${f.status}" is not a run status`);
    }
  }
  if (f.workflow !== undefined) checkId(`${name}.workflow`, f.workflow);
  if (f.namespace !== undefined) checkId(`${name}.namespace`, f.namespace);
  if (f.since !== undefined) checkTime(`${name}.since`, f.since);
  if (f.until !== undefined) checkTime(`${name}.until`, f.until);
  const tags: unknown = f.tags;
  if (tags !== undefined) {
    if (!Array.isArray(tags)) throw typeError(`${name}.tags must be an array of strings`);
    if (tags.length > 64) throw invalid(`${name}.tags: at most 64 tags`);
    tags.forEach((tag: unknown, i) => checkId(`${name}.tags[${i}]`, tag));
  }
  return {
    ...(f.status === undefined ? {} : { status: f.status }),
    ...(f.workflow === undefined ? {} : { workflow: f.workflow }),
    ...(f.namespace === undefined ? {} : { namespace: f.namespace }),
    ...(f.since === undefined ? {} : { since: f.since }),
    ...(f.until === undefined ? {} : { until: f.until }),
    ...(f.tags === undefined || f.tags.length === 0 ? {} : { tags: [...f.tags] }),
  };
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
  return checkRunValues(parsed.data);
}

/** The checks of a run record beyond its schema (its values, `isPaused`). */
export function checkRunValues(checked: Run): Run {
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
  return checkTaskValues(parsed.data);
}

/** The checks of a task record beyond its schema (its values). */
export function checkTaskValues(checked: Task): Task {
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
  for (const name of ['runs', 'tasks', 'inboxTaken', 'usage'] as const) {
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
  const usage = Array.from(cp.usage ?? [], (delta: unknown, i) => {
    if (typeof delta !== 'object' || delta === null)
      throw typeError(`checkpoint.usage[${i}] must be an object`);
    const parsed = UsageDeltaSchema.safeParse(delta);
    if (!parsed.success) throw invalid(`checkpoint.usage[${i}] is not a usage delta`, parsed.error);
    return parsed.data;
  });
  const seen = new Set<string>();
  for (const run of runs) {
    if (seen.has(run.id)) throw invalid(`checkpoint.runs has run "${run.id}" twice`);
    seen.add(run.id);
  }
  return usage.length === 0 ? { runs, tasks, inboxTaken } : { runs, tasks, inboxTaken, usage };
}
