import type { WriteValue } from './group-commit.js';
import type { LevelDb } from './migrations.js';

/** classic-level's sync option (abstract-level's types do not name it). */
export const SYNC = { sync: true } as object;
export const NO_SYNC = { sync: false } as object;

/**
 * How a store's batches reach its database, and what its reads must wait for. A store on
 * disk writes through its log (logged-writes.ts); a store in memory writes straight to its
 * database (`DirectWrites`).
 */
export interface WritePath {
  /** Writes one batch atomically; resolves once it is acknowledged (synced when `sync`). */
  write(entries: ReadonlyMap<string, WriteValue>, sync: boolean): Promise<void>;
  /** The value acknowledged last under `k`, written to the database or not yet. */
  get(k: string): Uint8Array | undefined | Promise<Uint8Array | undefined>;
  /** Undefined when the database shows every acknowledged write, else resolves once it does. */
  settled(): Promise<void> | undefined;
  /** Sends batches that wait for a timer on to the database now (before raw access). */
  hurry(): void;
  /**
   * Puts every acknowledged write in the database, synced, calling `drain` until no more
   * arrive (writes queued before the close), and lets go of the files.
   */
  close(drain: () => Promise<void>): Promise<void>;
}

/** A point read: LevelDB's synchronous get where the backend has one. */
export function pointReader(
  db: LevelDb,
): (k: string) => Uint8Array | undefined | Promise<Uint8Array | undefined> {
  // A few microseconds from the memtable or the block cache, where a read through the thread
  // pool costs a round trip; a read that goes to the disk holds the event loop for that read.
  if ((db.supports as { getSync?: boolean }).getSync === true) return (k) => db.getSync(k);
  return (k) => db.get(k);
}

/** Writes one batch to the database. A chained batch, even for one entry (measured faster). */
export function writeToDb(
  db: LevelDb,
  entries: Iterable<readonly [string, WriteValue]>,
  options: object,
): Promise<void> {
  const batch = db.batch();
  for (const [k, v] of entries) {
    if (v === null) batch.del(k);
    else batch.put(k, v);
  }
  return batch.write(options);
}

/** Straight to the database: nothing waits, there is no log. */
export class DirectWrites implements WritePath {
  readonly #db: LevelDb;
  readonly #read: (k: string) => Uint8Array | undefined | Promise<Uint8Array | undefined>;

  constructor(db: LevelDb) {
    this.#db = db;
    this.#read = pointReader(db);
  }

  write(entries: ReadonlyMap<string, WriteValue>, sync: boolean): Promise<void> {
    return writeToDb(this.#db, entries, sync ? SYNC : NO_SYNC);
  }

  get(k: string): Uint8Array | undefined | Promise<Uint8Array | undefined> {
    return this.#read(k);
  }

  settled(): undefined {
    return undefined;
  }

  hurry(): void {}

  async close(drain: () => Promise<void>): Promise<void> {
    await drain();
  }
}
