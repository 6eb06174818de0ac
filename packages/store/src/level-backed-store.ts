import { decode, decodeRaw, encode } from './codec.js';
import { decodeRun, decodeTask } from './compact.js';
import { CairnError, withOsReason } from './errors.js';
import type { BackendWriteOptions } from './engine-port.js';
import { GroupCommitter, type DeferredWrite, type WriteValue } from './group-commit.js';
import { LoggedWrites } from './logged-writes.js';
import { readSalvages, type LogDamagePolicy, type SalvageReport } from './log-recovery.js';
import { DirectWrites, type WritePath } from './write-path.js';
import type { RunBundle } from './import.js';
import { runIndexKeys, taskIndexKeys } from './indexes.js';
import { inboxKey, logKey, metaKey, runKey, taskKey } from './keys.js';
import { planDeletion, type Deletion } from './level-delete.js';
import {
  InboxValueSchema,
  readDueTimers,
  readInbox,
  readLogLines,
  readRunsPage,
  readTasks,
  readWaitingPage,
} from './level-reads.js';
import { verifyDb } from './level-verify.js';
import { RecordEntries } from './record-entries.js';
import { migrate, type LevelDb, type Migration, type MigrationProgress } from './migrations.js';
import type { LogInput, LogLine, Run, Task, Timer } from './records.js';
import type { DeleteCounts } from './retention.js';
import { UsageAggregates, type UsageDelta, type UsageQuery, type UsageRow } from './usage.js';
import { Store } from './store.js';
import type {
  Checkpoint,
  Durability,
  InboxEntry,
  IntegrityReport,
  ListRunsQuery,
  ListWaitingQuery,
  Page,
} from './store-types.js';

/** Usage keys whose deferred write is kept for reuse (a new day brings new keys). */
const MAX_USAGE_WRITES = 10_000;
const LOG_SEQ_KEY = metaKey('logSeq');
/** The locations this process has a store open at, to say who holds a locked one. */
const OPEN_HERE = new Set<string>();

export interface LevelBackedStoreOptions {
  /** @default 'strict' */
  readonly durability?: Durability;
  /**
   * The largest encoded record accepted; larger ones are refused with `VALUE_TOO_LARGE`.
   * @default 16 MiB
   */
  readonly maxRecordBytes?: number;
  /** Called as a migration advances (long migrations report here). */
  readonly onMigrationProgress?: (progress: MigrationProgress) => void;
  /** Records per migration batch. @default 500 */
  readonly migrationBatchSize?: number;
  /** Replaces the built-in migrations (tests). */
  readonly migrations?: readonly Migration[];
  /** Replaces the format version this code writes (tests). */
  readonly targetSchemaVersion?: number;
  /**
   * What opening does with a damaged log (see log-recovery.ts): `'refuse'` throws
   * `LOG_DAMAGED`; `'salvage'` keeps what can be applied without a gap, marks the runs that
   * may have lost their last checkpoints (`salvages()`, `diagnose`) and opens.
   * @default 'refuse'
   */
  readonly onLogDamage?: LogDamagePolicy;
}

/**
 * The store on any abstract-level database. `LevelStore` (LevelDB on disk) and
 * `MemoryStore` (memory-level) are this class with a different database, so the fast
 * in-memory tests run exactly the code path of production.
 */
export abstract class LevelBackedStore extends Store {
  readonly durability: Durability;
  #db: LevelDb | null = null;
  #committer: GroupCommitter | null = null;
  /** How batches reach the database: through the store's log on disk, straight in memory. */
  #writes: WritePath | null = null;
  /** What the last open salvaged from a damaged log, or null. */
  #salvage: SalvageReport | null = null;
  #schemaVersion = -1;
  #creating = new Set<string>();
  readonly #inboxQueue = new Map<string, Promise<void>>();
  #logSeq = 0;
  readonly #usage = new UsageAggregates();
  readonly #options: LevelBackedStoreOptions;
  /** Records and the entries derived from them (record-entries.ts). */
  readonly #records: RecordEntries;

  constructor(options: LevelBackedStoreOptions = {}) {
    super();
    if (typeof options !== 'object' || options === null) {
      throw Object.assign(new TypeError('options must be an object'), { code: 'INVALID_ARGUMENT' });
    }
    const durability = options.durability ?? 'strict';
    if (durability !== 'strict' && durability !== 'process') {
      throw new CairnError('INVALID_ARGUMENT', `durability must be "strict" or "process"`);
    }
    const damage = options.onLogDamage;
    if (damage !== undefined && damage !== 'refuse' && damage !== 'salvage') {
      throw new CairnError('INVALID_ARGUMENT', `onLogDamage must be "refuse" or "salvage"`);
    }
    this.durability = durability;
    this.#options = options;
    this.#records = new RecordEntries(options.maxRecordBytes ?? 16 * 1024 * 1024);
  }

  /** Creates the underlying database (not yet open). */
  protected abstract _createDb(): LevelDb;

  /**
   * The files of the store's log (log-file.ts) and of the log older formats wrote, or null for
   * a backend without one, which writes straight to its database.
   */
  protected _logFiles(): { file: string; legacyFile: string } | null {
    return null;
  }

  /**
   * Resolves once LevelDB has every write acknowledged so far. On disk a write is acknowledged
   * when the store's log has it and reaches LevelDB a moment later; the store's
   * own reads wait for it, raw reads through `level` do not.
   */
  async settled(): Promise<void> {
    await this.#settled();
  }

  /** Whether writes are acknowledged by the store's log (a store on disk, either durability). */
  get writesThroughLog(): boolean {
    return this.#writes instanceof LoggedWrites;
  }

  /** What the last open salvaged from a damaged log (`onLogDamage: 'salvage'`), or null. */
  override get salvage(): SalvageReport | null {
    return this.#salvage;
  }

  protected override async _salvages(): Promise<SalvageReport[]> {
    await this.#settled();
    return readSalvages(this.level);
  }

  /**
   * The raw database, for tools and tests that inspect or damage bytes (after `settled()`, to
   * see every acknowledged write).
   */
  get level(): LevelDb {
    if (!this.#db) throw new CairnError('STORE_CLOSED', 'The store is not open');
    // Batches waiting for their timer are sent to LevelDB first (or synced, then sent).
    this.#writes?.hurry();
    return this.#db;
  }

  get schemaVersion(): number {
    return this.#schemaVersion;
  }

  /** Batches written so far by group commit. */
  get batchesWritten(): number {
    return this.#committer?.batches ?? 0;
  }

  protected async _open(): Promise<void> {
    const db = this._createDb();
    // Another store may have written this data since this one last had it open.
    this.#records.forgetAll();
    try {
      await db.open();
    } catch (cause) {
      throw this.#openError(cause);
    }
    const files = this._logFiles();
    let writes: WritePath;
    let salvage: SalvageReport | null = null;
    try {
      if (files === null) writes = new DirectWrites(db);
      else {
        ({ writes, salvage } = await LoggedWrites.open(db, {
          ...files,
          durability: this.durability,
          onLogDamage: this.#options.onLogDamage ?? 'refuse',
        }));
      }
    } catch (error) {
      await db.close();
      throw error instanceof CairnError ? error : this.#logError(files!.file, error);
    }
    try {
      this.#schemaVersion = await migrate(db, this.location ?? 'memory', {
        ...(this.#options.migrationBatchSize === undefined
          ? {}
          : { batchSize: this.#options.migrationBatchSize }),
        onProgress: this.#options.onMigrationProgress,
        ...(this.#options.migrations ? { migrations: this.#options.migrations } : {}),
        ...(this.#options.targetSchemaVersion === undefined
          ? {}
          : { target: this.#options.targetSchemaVersion }),
      });
      this.#logSeq = Math.max(this.#logSeq, await readLogSeq(db));
      await this.#usage.load((range) => db.iterator(range));
    } catch (error) {
      // Nothing stays open behind a failed open: the database's lock, the log's descriptor.
      await writes.close(async () => undefined).catch(() => undefined);
      await db.close();
      throw error;
    }
    this.#db = db;
    this.#writes = writes;
    this.#salvage = salvage;
    if (this.location !== null) OPEN_HERE.add(this.location);
    this.#committer = new GroupCommitter(
      { write: (entries, sync) => writes.write(entries, sync) },
      this.durability === 'strict',
    );
  }

  #logError(file: string, cause: unknown): CairnError {
    const reason = withOsReason(
      `The store's log at ${file} could not be read, applied or opened`,
      cause,
    );
    return new CairnError('STORE_OPEN_FAILED', reason.message, {
      cause,
      details: { location: this.location ?? 'memory', file, ...reason.details },
    });
  }

  #openError(cause: unknown): CairnError {
    const where = this.location ?? 'memory';
    let c: unknown = cause;
    while (c instanceof Error) {
      if ((c as { code?: unknown }).code === 'LEVEL_LOCKED') {
        if (OPEN_HERE.has(where)) {
          return new CairnError(
            'STORE_LOCKED',
            `The store at ${where} is already open in this process: another LevelStore (or the engine that opened it) holds it. Close that one first (store.close(), engine.close()), or use it instead of opening a second.`,
            { cause, details: { location: where, holder: 'this process' } },
          );
        }
        return new CairnError(
          'STORE_LOCKED',
          `The store at ${where} is open in another process. LevelDB allows one process at a time: stop that process, or point this one at another directory.`,
          { cause, details: { location: where, holder: 'another process' } },
        );
      }
      c = c.cause;
    }
    const reason = withOsReason(`The store at ${where} could not be opened`, cause);
    return new CairnError('STORE_OPEN_FAILED', reason.message, {
      cause,
      details: { location: where, ...reason.details },
    });
  }

  /** Writes under way through the public calls: `close()` lets them finish first. */
  readonly #writing = new Set<Promise<unknown>>();

  #tracked<T>(operation: Promise<T>): Promise<T> {
    this.#writing.add(operation);
    const done = (): void => {
      this.#writing.delete(operation);
    };
    operation.then(done, done);
    return operation;
  }

  protected async _close(): Promise<void> {
    // A write under way may still read before it queues its batch (a checkpoint from outside
    // the engine reads the records it replaces): it lands before the store closes.
    while (this.#writing.size > 0) await Promise.allSettled([...this.#writing]);
    await this.#committer?.flush();
    await this.#writes?.close(async () => {
      await this.#committer?.flush();
    });
    this.#writes = null;
    await this.#db?.close();
    if (this.#db !== null && this.location !== null) OPEN_HERE.delete(this.location);
    this.#db = null;
    this.#committer = null;
  }

  /** Before a read: the database has everything acknowledged so far. */
  #settled(): Promise<void> | undefined {
    if (!this.#writes)
      return Promise.reject(new CairnError('STORE_CLOSED', 'The store is not open'));
    return this.#writes.settled();
  }

  #write(
    entries: Iterable<readonly [string, WriteValue | DeferredWrite]>,
    durable = true,
  ): Promise<void> {
    if (!this.#committer) throw new CairnError('STORE_CLOSED', 'The store is not open');
    return this.#committer.write(entries, durable);
  }

  protected _createRun(run: Run): Promise<void> {
    return this.#tracked(
      (async () => {
        const k = runKey(run.id);
        const exists = () =>
          new CairnError('ALREADY_EXISTS', `A run with id "${run.id}" already exists`, {
            details: { runId: run.id },
          });
        // Claimed before the read, so a concurrent create of the same id sees the claim.
        if (this.#creating.has(run.id)) throw exists();
        this.#creating.add(run.id);
        try {
          if ((await this.#getBytes(k)) !== undefined) throw exists();
          const entries: [string, WriteValue][] = [];
          this.#records.runEntries(run, entries, false, true);
          await this.#write(entries);
        } finally {
          this.#creating.delete(run.id);
        }
      })(),
    );
  }

  /**
   * A database that takes a lock (LevelDB: one process, one open handle) is written only
   * through this store. A memory database can be handed to another store while this one is
   * open, so it may not be.
   */
  protected override get soleWriter(): boolean {
    return this.supports.locking;
  }

  /** A point read of what was acknowledged last under `k` (see `WritePath.get`). */
  #getBytes(k: string): Uint8Array | undefined | Promise<Uint8Array | undefined> {
    if (!this.#writes) throw new CairnError('STORE_CLOSED', 'The store is not open');
    return this.#writes.get(k);
  }

  protected async _getRun(runId: string): Promise<Run | undefined> {
    const k = runKey(runId);
    const bytes = await this.#getBytes(k);
    return bytes === undefined ? undefined : decodeRun(k, bytes);
  }

  protected _checkpoint(checkpoint: Checkpoint, options: BackendWriteOptions): Promise<void> {
    const { durable, trusted } = options;
    const created = options.created === true;
    if (!trusted) {
      return this.#tracked(
        this.#replacedEntries(checkpoint).then((replaced) =>
          this.#checkpoint(checkpoint, durable, false, false, replaced),
        ),
      );
    }
    return this.#checkpoint(checkpoint, durable, true, created, []);
  }

  /**
   * For a checkpoint from outside the engine, which may rewrite what the engine never changes
   * (a run's namespace, workflow, tags or creation time, a timer's time): the index entries of
   * the records it replaces that the new records do not have. The engine's own writes never
   * change those, so its path reads nothing (see indexes.ts). A replaced record that cannot be
   * read leaves nothing to delete.
   */
  async #replacedEntries(checkpoint: Checkpoint): Promise<[string, WriteValue][]> {
    const out: [string, WriteValue][] = [];
    const dropAbsent = (before: readonly string[], after: readonly string[]): void => {
      const kept = new Set(after);
      for (const k of before) if (!kept.has(k)) out.push([k, null]);
    };
    for (const run of checkpoint.runs ?? []) {
      const old = await this._getRun(run.id).catch(() => undefined);
      if (old) dropAbsent(runIndexKeys(old), runIndexKeys(run));
    }
    for (const task of checkpoint.tasks ?? []) {
      const old = await this._getTask(task.runId, task.taskId).catch(() => undefined);
      if (old) dropAbsent(taskIndexKeys(old), taskIndexKeys(task));
    }
    return out;
  }

  #checkpoint(
    checkpoint: Checkpoint,
    durable: boolean,
    trusted: boolean,
    created: boolean,
    replaced: readonly [string, WriteValue][],
  ): Promise<void> {
    const entriesOf = (tracked = false): [string, WriteValue][] => {
      const entries: [string, WriteValue][] = [...replaced];
      for (const run of checkpoint.runs ?? []) {
        this.#records.runEntries(run, entries, tracked, tracked && created);
      }
      for (const task of checkpoint.tasks ?? []) this.#records.taskEntries(task, entries);
      for (const ref of checkpoint.inboxTaken ?? []) {
        entries.push([inboxKey(ref.runId, ref.taskId), null]);
      }
      return entries;
    };
    const usage = checkpoint.usage ?? [];
    const first = checkpoint.runs?.[0] ?? checkpoint.tasks?.[0];
    // A soft write from the engine (a step's "started" marker, a recorded value) reaches the
    // store's log at the end of this turn, with the others of the turn, even while a batch is
    // being synced; it resolves once the log has it (the operating system has it, not synced:
    // a power cut may lose it), and the engine waits for that before it calls the step
    // function. Elsewhere it is made when its batch is flushed. One that carries usage is
    // written as it comes.
    if (trusted && !durable && first !== undefined && usage.length === 0) {
      if (!this.#committer) throw new CairnError('STORE_CLOSED', 'The store is not open');
      const slot = 'id' in first ? runKey(first.id) : taskKey(first.runId, first.taskId);
      return this.writesThroughLog
        ? this.#committer.writeSoon(slot, () => entriesOf())
        : this.#committer.writeDeferred(slot, () => entriesOf());
    }
    // Encoding happens here, synchronously: a refused record throws before anything is queued.
    const runs = trusted ? (checkpoint.runs ?? []) : [];
    const entries = entriesOf(runs.length > 0);
    if (entries.length === 0 && usage.length === 0) return Promise.resolve();
    const written =
      usage.length > 0
        ? this.#writeWithUsage(entries, usage, durable)
        : this.#write(entries, durable);
    if (runs.length > 0) this.#records.trackRuns(runs, written);
    return written;
  }

  /**
   * Writes `entries` with the usage totals that `usage` changes, in one batch. The totals are
   * added in memory now and encoded when the batch is flushed, so a batch holds the totals of
   * every checkpoint in it and before it; if the batch fails, its deltas are taken back
   * before the next batch is made.
   */
  #writeWithUsage(
    entries: [string, WriteValue | DeferredWrite][],
    usage: readonly UsageDelta[],
    durable: boolean,
  ): Promise<void> {
    if (!this.#committer) throw new CairnError('STORE_CLOSED', 'The store is not open');
    // A key named twice is one pending entry: the committer keeps the last write of a key.
    for (const k of this.#usage.apply(usage)) entries.push([k, this.#usageWrite(k)]);
    // Taken back by the committer itself when the batch fails, before it makes the next one.
    return this.#committer.write(entries, durable, () => this.#usage.revert(usage));
  }

  /** One deferred write per usage key, made again for each batch: it encodes the totals then. */
  readonly #usageWrites = new Map<string, DeferredWrite>();

  #usageWrite(k: string): DeferredWrite {
    let write = this.#usageWrites.get(k);
    if (write === undefined) {
      if (this.#usageWrites.size >= MAX_USAGE_WRITES) this.#usageWrites.clear();
      write = { expand: () => [[k, this.#usage.encoded(k)]], reject: () => undefined };
      this.#usageWrites.set(k, write);
    }
    return write;
  }

  protected async _usage(query: UsageQuery): Promise<UsageRow[]> {
    return this.#usage.query(query);
  }

  protected async _getTask(runId: string, taskId: string): Promise<Task | undefined> {
    const k = taskKey(runId, taskId);
    const bytes = await this.#getBytes(k);
    return bytes === undefined ? undefined : decodeTask(k, bytes);
  }

  protected async _listTasks(runId: string): Promise<Task[]> {
    await this.#settled();
    return readTasks(this.level, runId);
  }

  protected async _listRuns(
    query: ListRunsQuery & { limit: number; cursor: string | null },
  ): Promise<Page<Run>> {
    await this.#settled();
    return readRunsPage(this.level, query);
  }

  protected async _listWaiting(
    query: ListWaitingQuery & { limit: number; cursor: string | null },
  ): Promise<Page<Task>> {
    await this.#settled();
    return readWaitingPage(this.level, query);
  }

  protected async _dueTimers(at: number, limit: number): Promise<Timer[]> {
    await this.#settled();
    return readDueTimers(this.level, at, limit);
  }

  protected async _listInbox(runId: string): Promise<InboxEntry[]> {
    await this.#settled();
    return readInbox(this.level, runId);
  }

  protected async _readLogs(runId: string, afterSeq: number, limit: number): Promise<LogLine[]> {
    await this.#settled();
    return readLogLines(this.level, runId, afterSeq, limit);
  }

  protected async _verify(): Promise<IntegrityReport> {
    // Everything written so far, logged and then in LevelDB.
    await this.#committer?.flush();
    await this.#settled();
    return verifyDb(this.level);
  }

  /** A run's deletion (see level-delete.ts); the run is no longer followed. */
  #deletion(runId: string): Promise<Deletion | null> {
    this.#records.forget(runId);
    return planDeletion(this.level, runId);
  }

  /**
   * Runs puts and takes of one inbox entry one after another, so two takes cannot both
   * return it and a take cannot delete input put after it read. The first in line runs at
   * once (its write is queued before `close()` can flush).
   */
  #inboxSerial<T>(k: string, fn: () => Promise<T>): Promise<T> {
    const previous = this.#inboxQueue.get(k);
    const current = previous === undefined ? fn() : previous.then(fn);
    const settled = current.then(
      () => undefined,
      () => undefined,
    );
    this.#inboxQueue.set(k, settled);
    void settled.then(() => {
      if (this.#inboxQueue.get(k) === settled) this.#inboxQueue.delete(k);
    });
    return current;
  }

  protected _putInbox(entry: InboxEntry): Promise<void> {
    return this.#tracked(
      (async () => {
        const k = inboxKey(entry.runId, entry.taskId);
        const bytes = this.#records.encode(k, { data: entry.data, at: entry.at });
        await this.#inboxSerial(k, () => this.#write([[k, bytes]]));
      })(),
    );
  }

  protected async _getInbox(runId: string, taskId: string): Promise<InboxEntry | undefined> {
    const k = inboxKey(runId, taskId);
    const bytes = await this.#getBytes(k);
    if (bytes === undefined) return undefined;
    const value = decode(k, bytes, InboxValueSchema);
    return { runId, taskId, data: value.data, at: value.at };
  }

  protected _takeInbox(runId: string, taskId: string): Promise<InboxEntry | undefined> {
    return this.#tracked(
      (async () => {
        const k = inboxKey(runId, taskId);
        return this.#inboxSerial(k, async () => {
          const entry = await this._getInbox(runId, taskId);
          if (entry !== undefined) await this.#write([[k, null]]);
          return entry;
        });
      })(),
    );
  }

  protected _appendLogs(lines: readonly LogInput[]): Promise<LogLine[]> {
    return this.#tracked(
      (async () => {
        const out: LogLine[] = [];
        const entries: [string, WriteValue][] = [];
        let seq = this.#logSeq;
        for (const line of lines) {
          seq = Math.max(seq + 1, Date.now() * 1000);
          const full: LogLine = { ...line, seq };
          const k = logKey(line.runId, full.seq);
          entries.push([k, this.#records.encode(k, full)]);
          out.push(full);
        }
        this.#logSeq = seq;
        // The highest seq given out, so a reopened store continues above it even if the clock
        // has moved back (seq would otherwise repeat, and a line overwrite another).
        entries.push([LOG_SEQ_KEY, encode(seq)]);
        await this.#write(entries, false);
        return out;
      })(),
    );
  }

  protected _deleteRun(runId: string): Promise<boolean> {
    return this.#tracked(
      (async () => {
        await this.#settled();
        const deletion = await this.#deletion(runId);
        if (deletion === null) return false;
        await this.#write(deletion.entries);
        return true;
      })(),
    );
  }

  protected _deleteRuns(runIds: readonly string[], dryRun: boolean): Promise<DeleteCounts> {
    return this.#tracked(
      (async () => {
        await this.#settled();
        const counts: DeleteCounts = { runs: 0, tasks: 0, logs: 0, inbox: 0, entries: 0 };
        const entries: [string, WriteValue][] = [];
        for (const runId of runIds) {
          const deletion = await this.#deletion(runId);
          if (deletion === null) continue;
          counts.runs++;
          counts.tasks += deletion.counts.tasks;
          counts.logs += deletion.counts.logs;
          counts.inbox += deletion.counts.inbox;
          counts.entries += deletion.counts.entries;
          // One by one: a run with very many log lines would overflow a spread's arguments.
          for (const entry of deletion.entries) entries.push(entry);
        }
        // One batch: every run in it is deleted whole or not at all.
        if (!dryRun && entries.length > 0) await this.#write(entries);
        return counts;
      })(),
    );
  }

  protected async _compact(): Promise<void> {
    await this.#committer?.flush();
    await this.#settled();
    const db = this.level as unknown as {
      compactRange?: (start: string, end: string) => Promise<void>;
    };
    // Every key is UTF-8 text of the families in keys.ts: all sort below "\uffff".
    if (typeof db.compactRange === 'function') await db.compactRange('', '\uffff');
  }

  protected async _existingRuns(runIds: readonly string[]): Promise<Set<string>> {
    await this.#settled();
    const found = new Set<string>();
    for (let i = 0; i < runIds.length; i += 1000) {
      const ids = runIds.slice(i, i + 1000);
      const values = await this.level.getMany(ids.map(runKey));
      values.forEach((v, j) => {
        if (v !== undefined) found.add(ids[j]!);
      });
    }
    return found;
  }

  protected _checkImported(bundle: RunBundle): void {
    this.#records.bundleEntries(bundle, []);
  }

  protected _importRuns(bundles: readonly RunBundle[]): Promise<void> {
    return this.#tracked(
      (async () => {
        const writes: Promise<void>[] = [];
        let seq = this.#logSeq;
        for (const bundle of bundles) {
          const entries: [string, WriteValue][] = [];
          // The records were checked (and encoded) when the import was read: this does not throw.
          const usage = this.#records.bundleEntries(bundle, entries);
          for (const line of bundle.logs) seq = Math.max(seq, line.seq);
          if (seq > this.#logSeq) {
            // Lines appended later go above the imported ones.
            this.#logSeq = seq;
            entries.push([LOG_SEQ_KEY, encode(seq)]);
          }
          writes.push(
            usage.length > 0 ? this.#writeWithUsage(entries, usage, true) : this.#write(entries),
          );
        }
        const results = await Promise.allSettled(writes);
        const failed = results.find((r) => r.status === 'rejected');
        if (failed) throw failed.reason;
      })(),
    );
  }

  protected async _getMeta(name: string): Promise<unknown> {
    const k = metaKey(name);
    const bytes = await this.#getBytes(k);
    return bytes === undefined ? undefined : decodeRaw(k, bytes);
  }

  protected _putMeta(name: string, value: unknown): Promise<void> {
    return this.#tracked(
      (async () => {
        const k = metaKey(name);
        await this.#write([[k, this.#records.encode(k, value)]]);
      })(),
    );
  }
}

/** The highest log seq given out, or 0. Logs are telemetry: a damaged value is ignored. */
async function readLogSeq(db: LevelDb): Promise<number> {
  try {
    const bytes = await db.get(LOG_SEQ_KEY);
    const value = bytes === undefined ? 0 : decodeRaw(LOG_SEQ_KEY, bytes);
    return typeof value === 'number' && Number.isSafeInteger(value) ? value : 0;
  } catch {
    return 0;
  }
}
