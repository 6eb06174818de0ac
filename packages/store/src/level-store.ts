import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { ClassicLevel } from 'classic-level';
import { MemoryLevel } from 'memory-level';
import { decode, decodeRaw, encode } from './codec.js';
import { decodeRun, decodeTask, encodeRun, encodeTask } from './compact.js';
import { CairnError, withOsReason } from './errors.js';
import { GroupCommitter, type DeferredWrite, type WriteValue } from './group-commit.js';
import { LEGACY_LOG_FILE } from './legacy-log.js';
import { LOG_FILE } from './log-file.js';
import { LoggedWrites } from './logged-writes.js';
import { readSalvages, type LogDamagePolicy, type SalvageReport } from './log-recovery.js';
import { DirectWrites, type WritePath } from './write-path.js';
import type { RunBundle } from './import.js';
import {
  runIndexKeys,
  runStaleKeys,
  runStatusKeys,
  taskIndexKeys,
  taskStaleKeys,
} from './indexes.js';
import {
  DERIVED_PREFIXES,
  PREFIX,
  SEP,
  displayKey,
  inboxKey,
  key,
  lastPart,
  logKey,
  metaKey,
  padTime,
  prefixRange,
  runKey,
  taskKey,
} from './keys.js';
import { migrate, type LevelDb, type Migration, type MigrationProgress } from './migrations.js';
import { resolveStorePath } from './paths.js';
import { IdSchema, LogLineSchema, TERMINAL_STATUSES } from './records.js';
import type { LogInput, LogLine, Run, RunStatus, Task, Timer } from './records.js';
import type { DeleteCounts } from './retention.js';
import { matchesFilter, planRunScan } from './run-listing.js';
import {
  UsageAggregates,
  countsForUsage,
  usageOfStep,
  type UsageDelta,
  type UsageQuery,
  type UsageRow,
} from './usage.js';
import {
  Store,
  type Checkpoint,
  type CorruptRecord,
  type Durability,
  type InboxEntry,
  type IntegrityProblem,
  type IntegrityReport,
  type ListRunsQuery,
  type ListWaitingQuery,
  type Page,
  type StoreSupports,
} from './store.js';
import { z } from 'zod';

const EMPTY = new Uint8Array(0);
/** At most this many runs have their index state followed (see #runIndexed). */
const MAX_TRACKED_RUNS = 10_000;
/** Usage keys whose deferred write is kept for reuse (a new day brings new keys). */
const MAX_USAGE_WRITES = 10_000;
const LOG_SEQ_KEY = metaKey('logSeq');
/** The locations this process has a store open at, to say who holds a locked one. */
const OPEN_HERE = new Set<string>();
const InboxValueSchema = z.object({ data: z.unknown(), at: z.number() });

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
  readonly #maxRecordBytes: number;

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
    this.#maxRecordBytes = options.maxRecordBytes ?? 16 * 1024 * 1024;
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
    this.#runIndexed.clear();
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

  #encode(k: string, value: unknown): Uint8Array {
    return this.#sized(k, encode(value));
  }

  /** `bytes`, the value to store under `k`, if it is within the record size limit. */
  #sized(k: string, bytes: Uint8Array): Uint8Array {
    if (bytes.byteLength > this.#maxRecordBytes) {
      throw new CairnError(
        'VALUE_TOO_LARGE',
        `The record at "${displayKey(k)}" is ${bytes.byteLength} bytes; the limit is ${this.#maxRecordBytes}`,
        { details: { key: displayKey(k), bytes: bytes.byteLength, limit: this.#maxRecordBytes } },
      );
    }
    return bytes;
  }

  /**
   * For runs this store wrote through the engine's path and that have not ended: the status
   * their index entries have on disk (`null` when unknown: a write failed), and how many
   * writes of the run are in flight. With the status known and nothing in flight, a run's
   * next write puts and deletes only the two entries that depend on its status, instead of
   * every entry of every status (16 entries become 5). Bounded: a run not tracked is written
   * in full, which is always correct.
   */
  readonly #runIndexed = new Map<string, { status: RunStatus | null; writing: number }>();

  /**
   * A run's record and index entries. `tracked`: written through the engine's path (see
   * #runIndexed); `created`: the run is new, so it has no entries of another status.
   */
  #runEntries(run: Run, out: [string, WriteValue][], tracked = false, created = false): void {
    const k = runKey(run.id);
    out.push([k, this.#sized(k, encodeRun(run))]);
    // A run written any other way is no longer followed: its next write is a full one.
    if (!tracked) this.#runIndexed.delete(run.id);
    if (created) {
      for (const ik of runIndexKeys(run)) out.push([ik, EMPTY]);
      return;
    }
    const known = tracked ? this.#runIndexed.get(run.id) : undefined;
    if (known !== undefined && known.writing === 0 && known.status !== null) {
      for (const ik of runStatusKeys(run, run.status)) out.push([ik, EMPTY]);
      if (known.status !== run.status) {
        for (const sk of runStatusKeys(run, known.status)) out.push([sk, null]);
      }
      return;
    }
    for (const ik of runIndexKeys(run)) out.push([ik, EMPTY]);
    for (const sk of runStaleKeys(run)) out.push([sk, null]);
  }

  /** Follows the runs of a checkpoint written through the engine's path (see #runIndexed). */
  #trackRuns(runs: readonly Run[], written: Promise<void>): void {
    type Known = { status: RunStatus | null; writing: number };
    const tracked: { id: string; known: Known; status: RunStatus }[] = [];
    for (const run of runs) {
      let known = this.#runIndexed.get(run.id);
      if (known === undefined) {
        if (this.#runIndexed.size >= MAX_TRACKED_RUNS) continue;
        known = { status: null, writing: 0 };
        this.#runIndexed.set(run.id, known);
      }
      known.writing++;
      tracked.push({ id: run.id, known, status: run.status });
    }
    if (tracked.length === 0) return;
    const settle = (ok: boolean): void => {
      for (const { id, known, status } of tracked) {
        // The entry this write counted in: another write may have dropped it meanwhile (a
        // public checkpoint, a delete), and a later engine write started a new one.
        known.writing--;
        if (this.#runIndexed.get(id) !== known) continue;
        // Batches land in the order they were made, so the last one to land is the newest.
        known.status = ok ? status : null;
        if (known.writing === 0 && (known.status === null || TERMINAL_STATUSES.has(status))) {
          this.#runIndexed.delete(id);
        }
      }
    };
    written.then(
      () => settle(true),
      () => settle(false),
    );
  }

  #taskEntries(task: Task, out: [string, WriteValue][]): void {
    const k = taskKey(task.runId, task.taskId);
    out.push([k, this.#sized(k, encodeTask(task))]);
    for (const ik of taskIndexKeys(task)) out.push([ik, EMPTY]);
    for (const sk of taskStaleKeys(task)) out.push([sk, null]);
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
          this.#runEntries(run, entries, false, true);
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

  protected _checkpoint(
    checkpoint: Checkpoint,
    durable: boolean,
    trusted = false,
    created = false,
  ): Promise<void> {
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
        this.#runEntries(run, entries, tracked, tracked && created);
      }
      for (const task of checkpoint.tasks ?? []) this.#taskEntries(task, entries);
      for (const ref of checkpoint.inboxTaken ?? []) {
        entries.push([inboxKey(ref.runId, ref.taskId), null]);
      }
      return entries;
    };
    const usage = checkpoint.usage ?? [];
    const first = checkpoint.runs?.[0] ?? checkpoint.tasks?.[0];
    // A soft write is made at flush time; one that carries usage is written as it comes.
    if (trusted && !durable && first !== undefined && usage.length === 0) {
      if (!this.#committer) throw new CairnError('STORE_CLOSED', 'The store is not open');
      const slot = 'id' in first ? runKey(first.id) : taskKey(first.runId, first.taskId);
      return this.#committer.writeDeferred(slot, () => entriesOf());
    }
    // Encoding happens here, synchronously: a refused record throws before anything is queued.
    const runs = trusted ? (checkpoint.runs ?? []) : [];
    const entries = entriesOf(runs.length > 0);
    if (entries.length === 0 && usage.length === 0) return Promise.resolve();
    const written =
      usage.length > 0
        ? this.#writeWithUsage(entries, usage, durable)
        : this.#write(entries, durable);
    if (runs.length > 0) this.#trackRuns(runs, written);
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
    // all() reads the range in a few round trips; for-await costs one turn per entry.
    const entries = await this.level.iterator(prefixRange(PREFIX.tasks, runId)).all();
    return entries.map(([k, bytes]) => decodeTask(k, bytes));
  }

  protected async _listRuns(
    query: ListRunsQuery & { limit: number; cursor: string | null },
  ): Promise<Page<Run>> {
    await this.#settled();
    const scan = planRunScan(query);
    const after = query.cursor === null ? null : scan.base + decodeCursor(query.cursor);
    const it = this.level.keys({
      gte: scan.gte,
      lt: after === null || scan.lt < after ? scan.lt : after,
      reverse: true,
    });
    const items: Run[] = [];
    const corrupt: CorruptRecord[] = [];
    let last: string | null = null;
    let more = false;
    try {
      while (items.length < query.limit) {
        const keys = await it.nextv(Math.min(256, query.limit - items.length + 1));
        if (keys.length === 0) break;
        const ids = keys.map(lastPart);
        const values = await this.level.getMany(ids.map(runKey));
        for (let i = 0; i < keys.length; i++) {
          if (items.length === query.limit) {
            more = true;
            break;
          }
          last = keys[i]!.slice(scan.base.length);
          const run = this.#decodeListed(runKey(ids[i]!), values[i], decodeRun, corrupt);
          if (run && (scan.exact || matchesFilter(run, query))) items.push(run);
        }
      }
      if (!more && items.length === query.limit) more = (await it.nextv(1)).length > 0;
    } finally {
      await it.close();
    }
    return { items, cursor: more && last !== null ? encodeCursor(last) : null, corrupt };
  }

  #decodeListed<T>(
    k: string,
    bytes: Uint8Array | undefined,
    decodeRecord: (k: string, bytes: Uint8Array) => T,
    corrupt: CorruptRecord[],
  ): T | undefined {
    if (bytes === undefined) {
      corrupt.push({
        key: displayKey(k),
        error: new CairnError(
          'CORRUPT_RECORD',
          `An index entry points at "${displayKey(k)}", which is missing`,
          {
            details: { key: displayKey(k) },
          },
        ),
      });
      return undefined;
    }
    try {
      return decodeRecord(k, bytes);
    } catch (error) {
      if (error instanceof CairnError) corrupt.push({ key: displayKey(k), error });
      else throw error;
      return undefined;
    }
  }

  protected async _listWaiting(
    query: ListWaitingQuery & { limit: number; cursor: string | null },
  ): Promise<Page<Task>> {
    await this.#settled();
    const range =
      query.runId === undefined
        ? prefixRange(PREFIX.idxWaiting)
        : prefixRange(PREFIX.idxWaiting, query.runId);
    const base = prefixRange(PREFIX.idxWaiting).gte;
    const after = query.cursor === null ? null : base + decodeCursor(query.cursor);
    const it = this.level.keys(after === null ? range : { gt: after, lt: range.lt });
    const items: Task[] = [];
    const corrupt: CorruptRecord[] = [];
    let last: string | null = null;
    let more = false;
    try {
      // nextv() may return fewer keys than asked (classic-level caps each call by size):
      // read until the page is full or the range is done.
      const keys: string[] = [];
      while (keys.length <= query.limit) {
        const next = await it.nextv(query.limit + 1 - keys.length);
        if (next.length === 0) break;
        keys.push(...next);
      }
      more = keys.length > query.limit;
      const page = keys.slice(0, query.limit);
      const taskKeys = page.map((k) => {
        const [, runId, taskId] = k.split(SEP);
        return taskKey(runId!, taskId!);
      });
      const values = await this.level.getMany(taskKeys);
      for (let i = 0; i < page.length; i++) {
        last = page[i]!.slice(base.length);
        const task = this.#decodeListed(taskKeys[i]!, values[i], decodeTask, corrupt);
        if (task) items.push(task);
      }
    } finally {
      await it.close();
    }
    return { items, cursor: more && last !== null ? encodeCursor(last) : null, corrupt };
  }

  protected async _dueTimers(at: number, limit: number): Promise<Timer[]> {
    await this.#settled();
    const range = prefixRange(PREFIX.timers);
    // Clamped: `Infinity` would otherwise pad to a key below every real timer.
    const upper = key(
      PREFIX.timers,
      padTime(Math.min(Math.floor(at), Number.MAX_SAFE_INTEGER - 1) + 1),
    );
    const timers: Timer[] = [];
    for await (const k of this.level.keys({
      gte: range.gte,
      lt: upper < range.lt ? upper : range.lt,
    })) {
      const timer = parseTimerKey(k);
      // A damaged key names no task and can never fire: skipped here, reported by verify().
      if (timer === undefined) continue;
      timers.push(timer);
      if (timers.length === limit) break;
    }
    return timers;
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
        const bytes = this.#encode(k, { data: entry.data, at: entry.at });
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

  protected async _listInbox(runId: string): Promise<InboxEntry[]> {
    await this.#settled();
    const entries = await this.level.iterator(prefixRange(PREFIX.inbox, runId)).all();
    return entries.map(([k, bytes]) => {
      const value = decode(k, bytes, InboxValueSchema);
      return { runId, taskId: lastPart(k), data: value.data, at: value.at };
    });
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
          entries.push([k, this.#encode(k, full)]);
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

  protected async _readLogs(runId: string, afterSeq: number, limit: number): Promise<LogLine[]> {
    await this.#settled();
    const range = prefixRange(PREFIX.logs, runId);
    const lines: LogLine[] = [];
    const opts =
      afterSeq < 0 ? { ...range, limit } : { gt: logKey(runId, afterSeq), lt: range.lt, limit };
    for await (const [k, bytes] of this.level.iterator(opts))
      lines.push(decode(k, bytes, LogLineSchema));
    return lines;
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

  /** Every key of a run (its record, tasks, index entries, timers, inbox, logs), or null. */
  async #deletion(
    runId: string,
  ): Promise<{ entries: [string, WriteValue][]; counts: Omit<DeleteCounts, 'runs'> } | null> {
    const db = this.level;
    const rk = runKey(runId);
    this.#runIndexed.delete(runId);
    const bytes = await db.get(rk);
    if (bytes === undefined) return null;
    const entries: [string, WriteValue][] = [[rk, null]];
    const derived = new Set<string>();
    let tasks = 0;
    let run: Run | undefined;
    try {
      run = decodeRun(rk, bytes);
    } catch {
      run = undefined;
    }
    if (run) {
      for (const ik of runIndexKeys(run)) {
        entries.push([ik, null]);
        derived.add(ik);
      }
      for (const sk of runStaleKeys(run)) entries.push([sk, null]);
    } else {
      // The record is damaged: find its index entries by scanning the run indexes.
      for (const p of DERIVED_PREFIXES) {
        if (p === PREFIX.idxWaiting || p === PREFIX.timers) continue;
        for await (const k of db.keys(prefixRange(p))) {
          if (lastPart(k) === runId) {
            entries.push([k, null]);
            derived.add(k);
          }
        }
      }
    }
    for await (const [k, tb] of db.iterator(prefixRange(PREFIX.tasks, runId))) {
      entries.push([k, null]);
      tasks++;
      try {
        const task = decodeTask(k, tb);
        for (const ik of taskIndexKeys(task)) {
          entries.push([ik, null]);
          derived.add(ik);
        }
        for (const sk of taskStaleKeys(task)) entries.push([sk, null]);
      } catch {
        // A damaged task: its waiting entry is found by prefix below, its timer by scan.
        for await (const tk of db.keys(prefixRange(PREFIX.timers))) {
          if (tk.split(SEP)[2] === runId) {
            entries.push([tk, null]);
            derived.add(tk);
          }
        }
      }
    }
    const found = { [PREFIX.idxWaiting]: 0, [PREFIX.inbox]: 0, [PREFIX.logs]: 0 };
    for (const p of [PREFIX.idxWaiting, PREFIX.inbox, PREFIX.logs] as const) {
      for await (const k of db.keys(prefixRange(p, runId))) {
        entries.push([k, null]);
        if (p === PREFIX.idxWaiting) derived.add(k);
        else found[p]++;
      }
    }
    // Counted as they are on disk: entries a record implies but the index lacks are not.
    const present = await db.getMany([...derived]);
    return {
      entries,
      counts: {
        tasks,
        logs: found[PREFIX.logs],
        inbox: found[PREFIX.inbox],
        entries: present.filter((v) => v !== undefined).length,
      },
    };
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
    this.#bundleEntries(bundle, []);
  }

  /** A run's records as an import writes them; returns the usage its steps add. */
  #bundleEntries(bundle: RunBundle, entries: [string, WriteValue][]): UsageDelta[] {
    this.#runEntries(bundle.run, entries);
    const usage: UsageDelta[] = [];
    for (const task of bundle.tasks) {
      this.#taskEntries(task, entries);
      if (countsForUsage(task)) usage.push(usageOfStep(bundle.run, task));
    }
    for (const line of bundle.logs) {
      const k = logKey(line.runId, line.seq);
      entries.push([k, this.#encode(k, line)]);
    }
    for (const entry of bundle.inbox) {
      const k = inboxKey(entry.runId, entry.taskId);
      entries.push([k, this.#encode(k, { data: entry.data, at: entry.at })]);
    }
    return usage;
  }

  protected _importRuns(bundles: readonly RunBundle[]): Promise<void> {
    return this.#tracked(
      (async () => {
        const writes: Promise<void>[] = [];
        let seq = this.#logSeq;
        for (const bundle of bundles) {
          const entries: [string, WriteValue][] = [];
          // The records were checked (and encoded) when the import was read: this does not throw.
          const usage = this.#bundleEntries(bundle, entries);
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
        await this.#write([[k, this.#encode(k, value)]]);
      })(),
    );
  }

  protected async _verify(): Promise<IntegrityReport> {
    const db = this.level;
    // Everything written so far, logged and then in LevelDB.
    await this.#committer?.flush();
    await this.#settled();
    const problems: IntegrityProblem[] = [];
    const expected = new Set<string>();
    const runIds = new Set<string>();
    let runs = 0;
    let tasks = 0;
    for await (const [k, bytes] of db.iterator(prefixRange(PREFIX.runs))) {
      runIds.add(lastPart(k));
      try {
        const run = decodeRun(k, bytes);
        runs++;
        if (run.id !== lastPart(k)) {
          problems.push({ kind: 'corrupt', key: displayKey(k), message: `holds run "${run.id}"` });
        }
        for (const ik of runIndexKeys(run)) expected.add(ik);
      } catch (error) {
        problems.push({ kind: 'corrupt', key: displayKey(k), message: (error as Error).message });
        // Its index entries cannot be derived; accept whatever points at it.
        for (const p of DERIVED_PREFIXES) {
          if (p === PREFIX.idxWaiting || p === PREFIX.timers) continue;
          for await (const ik of db.keys(prefixRange(p)))
            if (lastPart(ik) === lastPart(k)) expected.add(ik);
        }
      }
    }
    for await (const [k, bytes] of db.iterator(prefixRange(PREFIX.tasks))) {
      const [, runId] = k.split(SEP);
      if (!runIds.has(runId!)) {
        problems.push({
          kind: 'orphan-task',
          key: displayKey(k),
          message: 'its run does not exist',
        });
      }
      try {
        const task = decodeTask(k, bytes);
        tasks++;
        for (const ik of taskIndexKeys(task)) expected.add(ik);
      } catch (error) {
        problems.push({ kind: 'corrupt', key: displayKey(k), message: (error as Error).message });
      }
    }
    let entries = 0;
    for (const p of DERIVED_PREFIXES) {
      for await (const k of db.keys(prefixRange(p))) {
        entries++;
        if (expected.has(k)) expected.delete(k);
        else
          problems.push({
            kind: 'orphan-entry',
            key: displayKey(k),
            message: 'no record has this entry',
          });
      }
    }
    for (const k of expected) {
      problems.push({
        kind: 'missing-entry',
        key: displayKey(k),
        message: 'a record has this entry, the index does not',
      });
    }
    return { ok: problems.length === 0, runs, tasks, entries, problems };
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

/** The timer a `timers/<at>/<runId>/<taskId>` key names, or undefined if the key is damaged. */
function parseTimerKey(k: string): Timer | undefined {
  const parts = k.split(SEP);
  if (parts.length !== 4) return undefined;
  const [, when, runId, taskId] = parts as [string, string, string, string];
  if (!/^\d{1,16}$/.test(when)) return undefined;
  if (!IdSchema.safeParse(runId).success || !IdSchema.safeParse(taskId).success) return undefined;
  return { at: Number(when), runId, taskId };
}

function encodeCursor(position: string): string {
  return Buffer.from(position, 'utf8').toString('base64url');
}

function decodeCursor(cursor: string): string {
  const position = Buffer.from(cursor, 'base64url').toString('utf8');
  if (position.length === 0 || encodeCursor(position) !== cursor) {
    throw new CairnError('INVALID_ARGUMENT', 'cursor is not a cursor this store returned');
  }
  return position;
}

export interface LevelStoreOptions extends LevelBackedStoreOptions {
  /**
   * The directory of the LevelDB database; created if missing.
   * @default process.env.CAIRN_STORE_DIR, else `.cairn` under the working directory
   */
  readonly path?: string;
}

/** The embedded default: LevelDB (classic-level) in a directory on disk. */
export class LevelStore extends LevelBackedStore {
  readonly supports: StoreSupports = {
    persistence: true,
    locking: true,
    migrations: true,
    compaction: true,
  };
  readonly location: string;

  constructor(options: LevelStoreOptions = {}) {
    super(options);
    if (options.path !== undefined && typeof options.path !== 'string') {
      throw Object.assign(new TypeError('options.path must be a string'), {
        code: 'INVALID_ARGUMENT',
      });
    }
    this.location = resolveStorePath(options.path);
  }

  protected override _logFiles(): { file: string; legacyFile: string } | null {
    return {
      file: join(this.location, LOG_FILE),
      legacyFile: join(this.location, LEGACY_LOG_FILE),
    };
  }

  protected _createDb(): LevelDb {
    mkdirSync(this.location, { recursive: true });
    return new ClassicLevel<string, Uint8Array>(this.location, {
      keyEncoding: 'utf8',
      valueEncoding: 'view',
    }) as unknown as LevelDb;
  }
}

export interface MemoryStoreOptions extends LevelBackedStoreOptions {
  /** A memory-level database to use, e.g. the `level` of a closed MemoryStore, to "reopen" it. */
  readonly db?: MemoryLevel<string, Uint8Array>;
}

/** The same store on memory-level: for tests and short-lived programs. */
export class MemoryStore extends LevelBackedStore {
  readonly supports: StoreSupports = {
    persistence: true,
    locking: false,
    migrations: true,
    compaction: false,
  };
  readonly location = null;
  readonly #memory: MemoryLevel<string, Uint8Array>;

  constructor(options: MemoryStoreOptions = {}) {
    super(options);
    this.#memory =
      options.db ??
      new MemoryLevel<string, Uint8Array>({ keyEncoding: 'utf8', valueEncoding: 'view' });
  }

  /** The memory database, to hand to a new MemoryStore after this one is closed. */
  get memory(): MemoryLevel<string, Uint8Array> {
    return this.#memory;
  }

  protected _createDb(): LevelDb {
    return this.#memory as unknown as LevelDb;
  }
}
