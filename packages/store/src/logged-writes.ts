import { CairnError, withOsReason } from './errors.js';
import type { WriteValue } from './group-commit.js';
import { StoreLog } from './log-file.js';
import type { LogBatch } from './log-format.js';
import { recoverLog, applyBatches, markLog, retireLegacyLog } from './log-recovery.js';
import type { LogDamagePolicy, SalvageReport } from './log-recovery.js';
import type { LevelDb } from './migrations.js';
import type { Durability } from './store-types.js';
import { NO_SYNC, SYNC, pointReader, type WritePath } from './write-path.js';
import { encode } from './codec.js';
import { APPLIED_SEQ_KEY } from './log-recovery.js';

/** Past this size, the store's log starts again before it grows further (every batch applied first). */
const MAX_LOG_BYTES = 16 * 1024 * 1024;
/**
 * In `strict` durability, synced batches reach LevelDB at most this long after their sync (or
 * at once when something reads, or once `APPLY_AT_BATCHES` are waiting). Each write to LevelDB
 * costs the event loop a round trip to the thread pool, so fewer, larger ones leave more of it
 * to the workflows.
 */
const APPLY_AFTER_MS = 10;
export const APPLY_AT_BATCHES = 512;
/** In `strict` durability, a batch of soft writes is synced at most this long after it is logged. */
const SOFT_SYNC_AFTER_MS = 1;
/** A writer acknowledged at once by the log (`process`) lets the event loop turn at least this often. */
const YIELD_EVERY_MS = 1;

interface Waiter {
  readonly seq: number;
  readonly resolve: () => void;
  readonly reject: (error: unknown) => void;
}

/** A value logged and not yet in LevelDB, and the batch it came in. */
interface Pending {
  readonly value: WriteValue;
  readonly seq: number;
}

export interface LoggedWritesOptions {
  readonly file: string;
  readonly legacyFile: string;
  readonly durability: Durability;
  readonly onLogDamage: LogDamagePolicy;
}

/**
 * The write path of a store on disk: every batch goes to the store's log (log-file.ts) and is
 * acknowledged from there, in `process` durability once the operating system has it, in
 * `strict` durability once it is synced. The log is synced in the background in `process`
 * durability too, and LevelDB gets a batch only once the log has it synced, with its position
 * in the log (`meta/appliedSeq`) in the same LevelDB batch: LevelDB never holds anything the
 * log could lose, so opening can always tell what to replay (log-recovery.ts). LevelDB's own
 * writes are not synced (the log is), and they carry many batches at once.
 *
 * Until LevelDB has a batch, a point read finds its values here (`get`); a range read waits
 * for LevelDB (`settled`).
 */
export class LoggedWrites implements WritePath {
  readonly #db: LevelDb;
  readonly #log: StoreLog;
  readonly #strict: boolean;
  readonly #read: (k: string) => Uint8Array | undefined | Promise<Uint8Array | undefined>;
  /** The last batch appended to the log, synced, covered by a sync under way, and applied. */
  #logged: number;
  #synced: number;
  #syncing: number;
  #applied: number;
  /** Logged batches whose sync has not ended, in order. */
  #unsynced: LogBatch[] = [];
  /** Synced batches on their way to LevelDB, in order, and whether a write carries some. */
  #toApply: LogBatch[] = [];
  #applying = false;
  /** Values logged and not yet in LevelDB, by key. */
  readonly #pending = new Map<string, Pending>();
  /** A timer that sends logged batches on to LevelDB (`strict`, see #catchUp). */
  #applyTimer: NodeJS.Timeout | null = null;
  /** Whether that timer is the shorter one, for soft writes no sync covers yet. */
  #applyTimerSoft = false;
  /** Why the log could not be synced or LevelDB refused a batch: nothing more until reopened. */
  #failure: CairnError | null = null;
  #syncWaiters: Waiter[] = [];
  #appliedWaiters: Waiter[] = [];
  /** When the next acknowledgement waits for a turn of the event loop (see `write`). */
  #turnDue = 0;
  /** The log starting again past `MAX_LOG_BYTES`. */
  #restarting: Promise<void> | null = null;

  private constructor(db: LevelDb, log: StoreLog, durability: Durability, base: number) {
    this.#db = db;
    this.#log = log;
    this.#strict = durability === 'strict';
    this.#read = pointReader(db);
    this.#logged = base;
    this.#synced = base;
    this.#syncing = base;
    this.#applied = base;
  }

  /**
   * Replays what the log holds and LevelDB lacks, starts the log again and marks it open.
   * Throws `LOG_DAMAGED` for a damaged log unless `onLogDamage` is `'salvage'`.
   */
  static async open(
    db: LevelDb,
    options: LoggedWritesOptions,
  ): Promise<{ writes: LoggedWrites; salvage: SalvageReport | null }> {
    const { base, salvage } = await recoverLog(db, options);
    const log = StoreLog.start(options.file, base, { fillAhead: true });
    try {
      // Before the first record: from here on, a missing log means records may be lost.
      await markLog(db, true);
      retireLegacyLog(options.legacyFile);
    } catch (error) {
      log.close();
      throw error;
    }
    return { writes: new LoggedWrites(db, log, options.durability, base), salvage };
  }

  write(entries: ReadonlyMap<string, WriteValue>, sync: boolean): Promise<void> {
    if (this.#failure) return Promise.reject(this.#failure);
    if (this.#log.size >= MAX_LOG_BYTES) {
      return this.#restartLog().then(() => this.write(entries, sync));
    }
    const batch: LogBatch = { seq: this.#logged + 1, entries: [...entries] };
    this.#log.append(batch, this.#synced);
    this.#logged = batch.seq;
    for (const [k, value] of batch.entries) this.#pending.set(k, { value, seq: batch.seq });
    this.#unsynced.push(batch);
    if (this.#strict) {
      // A batch of soft writes is acknowledged at once and synced with the next durable
      // batch, or within a millisecond.
      if (sync) return this.#syncThrough(batch.seq);
      this.#catchUpLater();
    } else if (this.#syncing < this.#logged && this.#syncing === this.#synced) {
      // `process`: acknowledged now; synced in the background, one sync after another.
      this.#sync();
    }
    // Acknowledged at once, but at least every millisecond in the event loop's next turn: a
    // writer that waits for each write must still let timers, I/O and LevelDB's own callbacks
    // run.
    const now = performance.now();
    if (now < this.#turnDue) return Promise.resolve();
    this.#turnDue = now + YIELD_EVERY_MS;
    return new Promise((resolve) => setImmediate(resolve));
  }

  get(k: string): Uint8Array | undefined | Promise<Uint8Array | undefined> {
    if (this.#failure) return Promise.reject(this.#failure);
    const pending = this.#pending.get(k);
    if (pending === undefined) return this.#read(k);
    // In `strict` durability a value is read once it is synced (a soft write is synced now).
    if (this.#strict && pending.seq > this.#synced) {
      return this.#syncThrough(pending.seq).then(() => this.get(k));
    }
    return pending.value ?? undefined;
  }

  settled(): Promise<void> | undefined {
    if (this.#applied >= this.#logged && this.#failure === null) return undefined;
    return this.#appliedThrough(this.#logged);
  }

  hurry(): void {
    if (this.#applyTimer !== null || (!this.#strict && this.#toApply.length > 0)) this.#catchUp();
  }

  async close(drain: () => Promise<void>): Promise<void> {
    // Everything logged goes to LevelDB first (and whatever was written meanwhile), synced;
    // the log then starts again and is marked closed. A failure leaves it as it is, for the
    // next open, which applies its batches again (changing nothing).
    let applied = true;
    let logged: number;
    do {
      logged = this.#logged;
      applied = await this.#appliedThrough(logged).then(
        () => true,
        () => false,
      );
      await drain();
    } while (applied && this.#logged !== logged);
    try {
      if (applied) {
        await this.#restarting;
        await markLog(this.#db, false, this.#applied);
        await this.#log.restart(this.#applied);
      }
    } catch {
      // Left as it is (see above).
    } finally {
      if (this.#applyTimer !== null) clearTimeout(this.#applyTimer);
      this.#applyTimer = null;
      this.#log.close();
    }
  }

  /** LevelDB has every logged batch, synced: the log can start again after the last one. */
  #restartLog(): Promise<void> {
    this.#restarting ??= (async () => {
      try {
        await this.#appliedThrough(this.#logged);
        await this.#db.batch(
          [{ type: 'put', key: APPLIED_SEQ_KEY, value: encode(this.#applied) }],
          SYNC,
        );
        await this.#log.restart(this.#applied);
      } finally {
        this.#restarting = null;
      }
    })();
    return this.#restarting;
  }

  /** Resolves once the log has every batch up to `seq` on the disk. */
  #syncThrough(seq: number): Promise<void> {
    if (this.#failure) return Promise.reject(this.#failure);
    if (this.#synced >= seq) return Promise.resolve();
    const done = new Promise<void>((resolve, reject) =>
      this.#syncWaiters.push({ seq, resolve, reject }),
    );
    if (this.#syncing < seq) this.#sync();
    return done;
  }

  /**
   * Syncs the log; the batches it then has on the disk go on to LevelDB. A sync covers every
   * record written before it started, so syncs that end out of order still release the
   * batches in order.
   */
  #sync(): void {
    const upTo = this.#logged;
    this.#syncing = upTo;
    this.#log.sync().then(
      () => {
        if (upTo <= this.#synced) return;
        this.#synced = upTo;
        let n = 0;
        while (n < this.#unsynced.length && this.#unsynced[n]!.seq <= upTo) n++;
        if (n > 0) this.#toApply.push(...this.#unsynced.splice(0, n));
        this.#release(this.#syncWaiters, upTo, (w) => (this.#syncWaiters = w));
        this.#applySoon();
        // `process`: what was logged during this sync gets the next one.
        if (!this.#strict && this.#syncing < this.#logged && this.#syncing === this.#synced) {
          this.#sync();
        }
      },
      (cause: unknown) => {
        // Whether the batch is on the disk is unknown, and so is everything logged after it:
        // the store stops (fail closed) until it is reopened, which applies what the log has.
        const reason = withOsReason("The store's log could not be synced", cause);
        this.#fail(
          new CairnError(
            'WRITE_FAILED',
            `${reason.message}; reopen the store to apply what it holds`,
            { cause, details: reason.details },
          ),
        );
      },
    );
  }

  #release(waiters: Waiter[], seq: number, keep: (rest: Waiter[]) => void): void {
    const rest: Waiter[] = [];
    for (const w of waiters) {
      if (w.seq <= seq) w.resolve();
      else rest.push(w);
    }
    keep(rest);
  }

  #fail(error: CairnError): void {
    this.#failure ??= error;
    const waiting = [...this.#syncWaiters, ...this.#appliedWaiters];
    this.#syncWaiters = [];
    this.#appliedWaiters = [];
    for (const w of waiting) w.reject(this.#failure);
  }

  /**
   * Sends the batches waiting for LevelDB on: in `process` durability at once; in `strict` at
   * once only if something waits to read or many batches wait, else with the others on the timer.
   */
  #applySoon(): void {
    if (
      !this.#strict ||
      this.#appliedWaiters.length > 0 ||
      this.#toApply.length >= APPLY_AT_BATCHES
    ) {
      this.#apply();
    } else this.#catchUpLater();
  }

  /** Sets the timer of #catchUp: the shorter one while soft writes wait for a sync. */
  #catchUpLater(): void {
    const soft = this.#syncing < this.#logged;
    if (this.#applyTimer !== null) {
      if (!soft || this.#applyTimerSoft) return;
      clearTimeout(this.#applyTimer);
    }
    this.#applyTimerSoft = soft;
    this.#applyTimer = setTimeout(
      () => this.#catchUp(),
      soft ? SOFT_SYNC_AFTER_MS : APPLY_AFTER_MS,
    );
  }

  /**
   * What is logged goes on its way to LevelDB now: synced batches are applied, and the log is
   * synced for those no sync covers yet. A failed sync has stopped the store (#sync).
   */
  #catchUp(): void {
    if (this.#applyTimer !== null) {
      clearTimeout(this.#applyTimer);
      this.#applyTimer = null;
    }
    if (this.#syncing < this.#logged) this.#sync();
    this.#apply();
  }

  /** Writes the synced batches to LevelDB, all that have gathered, in one batch with their position. */
  #apply(): void {
    if (this.#applying || this.#toApply.length === 0 || this.#failure) return;
    const batches = this.#toApply;
    this.#toApply = [];
    const seq = batches[batches.length - 1]!.seq;
    this.#applying = true;
    let written: Promise<void>;
    try {
      written = applyBatches(this.#db, batches, NO_SYNC, seq);
    } catch (cause) {
      written = Promise.reject(cause instanceof Error ? cause : new Error(String(cause)));
    }
    written.then(
      () => {
        this.#applying = false;
        this.#applied = seq;
        for (const b of batches) {
          for (const [k] of b.entries) {
            if ((this.#pending.get(k)?.seq ?? Infinity) <= seq) this.#pending.delete(k);
          }
        }
        this.#release(this.#appliedWaiters, seq, (w) => (this.#appliedWaiters = w));
        // What was synced meanwhile.
        if (this.#toApply.length > 0) this.#applySoon();
      },
      (cause: unknown) => {
        this.#applying = false;
        // The batches are in the log, and the next open applies them; until then this store
        // cannot show them, so it stops (fail closed).
        const reason = withOsReason('A batch could not be written to LevelDB', cause);
        this.#fail(
          new CairnError(
            'WRITE_FAILED',
            `${reason.message}; reopen the store to apply what was logged`,
            {
              cause,
              details: reason.details,
            },
          ),
        );
      },
    );
  }

  /** Resolves once LevelDB has every logged batch up to `seq`. */
  #appliedThrough(seq: number): Promise<void> {
    if (this.#failure) return Promise.reject(this.#failure);
    if (this.#applied >= seq) return Promise.resolve();
    const done = new Promise<void>((resolve, reject) =>
      this.#appliedWaiters.push({ seq, resolve, reject }),
    );
    // Batches waiting for their timer or their sync go now.
    this.#catchUp();
    return done;
  }
}
