import {
  closeSync,
  fdatasync,
  fdatasyncSync,
  fstatSync,
  fsyncSync,
  openSync,
  readFileSync,
  readSync,
  writeSync,
} from 'node:fs';
import { dirname } from 'node:path';
import { faults } from './faults.js';
import {
  FILE_HEADER,
  encodeFileHeader,
  encodeRecord,
  readLog,
  type LogBatch,
  type LogContents,
} from './log-format.js';

/**
 * The store's log in front of LevelDB (`CAIRN-WAL`; its bytes are described in
 * log-format.ts). A batch is written to this file before it is acknowledged: in `process`
 * durability with one synchronous write (the operating system has it, so it survives the
 * process), in `strict` durability also synced to the disk (`fdatasync`, so it survives the
 * machine). LevelDB gets a batch only once the log has it synced (logged-writes.ts).
 *
 * Starting the log again rewrites the header with a new base, once LevelDB has every batch
 * synced, and writes the next records over the old ones: a sync then writes into blocks the
 * file already has, which costs the disk far less than one that must also give the file new
 * blocks. The log is also filled with zeros ahead of its records (`fillAhead`), so that even a
 * new log's records are written over blocks it has. An old record left behind the new ones has
 * a sequence number at most the base, and zeros are no record: reading stops there.
 */

/** The file's name in the store's directory. */
export const LOG_FILE = 'CAIRN-WAL';

/**
 * With `fillAhead`, zeros are written ahead of the records once they come within `FILL_MIN`
 * bytes of the zeros' end: as many bytes as the file has filled so far, from `FILL_MIN` to
 * `FILL_MAX` at a time (a log that holds little costs little).
 */
const FILL_MIN = 64 * 1024;
const FILL_MAX = 1024 * 1024;
/** `FILL_MIN` zeros, written as many times as a fill needs. */
let zeros: Buffer | null = null;

export interface StoreLogOptions {
  /**
   * Writes zeros ahead of the records and syncs them on the thread pool, so that the sync of a
   * record finds its blocks on the disk already.
   */
  readonly fillAhead?: boolean;
}

/** The log file, open for writing. */
export class StoreLog {
  readonly #fd: number;
  readonly #fillAhead: boolean;
  /** Where the next record goes. */
  #end = FILE_HEADER;
  /** The bytes of the file written so far (records, zeros): past them the file needs new blocks. */
  #filled: number;
  /** Why a sync of zeros written ahead failed: every later sync fails with it. */
  #fillError: Error | null = null;

  private constructor(fd: number, filled: number, options: StoreLogOptions) {
    this.#fd = fd;
    this.#filled = filled;
    this.#fillAhead = options.fillAhead === true;
  }

  /**
   * Opens the log at `file` (creating it) and starts it again after `base`: whatever it held
   * is no longer read. Call it once LevelDB has every batch the log held, synced.
   */
  static start(file: string, base: number, options: StoreLogOptions = {}): StoreLog {
    let fd: number;
    let created = false;
    try {
      fd = openSync(file, 'r+');
    } catch (error) {
      if ((error as { code?: unknown }).code !== 'ENOENT') throw error;
      fd = openSync(file, 'w+');
      created = true;
    }
    let log: StoreLog;
    try {
      log = new StoreLog(fd, fstatSync(fd).size, options);
      log.#writeHeader(base);
      fdatasyncSync(fd);
      if (created) syncDirectory(dirname(file));
    } catch (error) {
      closeSync(fd);
      throw error;
    }
    return log;
  }

  /**
   * The header and the records that follow it in sequence in the log at `file`, or null if
   * there is no file. Read record by record: the file is usually megabytes of old records and
   * zeros behind a few new ones, which need not all be in memory.
   */
  static read(file: string): LogContents | null {
    let fd: number;
    try {
      fd = openSync(file, 'r');
    } catch (error) {
      if ((error as { code?: unknown }).code === 'ENOENT') return null;
      throw error;
    }
    try {
      const size = fstatSync(fd).size;
      return readLog((at, length) => {
        if (at + length > size) return null;
        const bytes = Buffer.allocUnsafe(length);
        let done = 0;
        while (done < length) {
          const n = readSync(fd, bytes, done, length - done, at + done);
          if (n === 0) return null;
          done += n;
        }
        return bytes;
      });
    } finally {
      closeSync(fd);
    }
  }

  /** The whole file's bytes, to look past where reading in sequence stopped. */
  static readAll(file: string): Buffer {
    return readFileSync(file);
  }

  /** Bytes in use: the header and the records since the log was last started. */
  get size(): number {
    return this.#end;
  }

  /**
   * Writes one batch; returns once the operating system has it (see `sync`). `synced` is the
   * highest sequence number known to be on the disk (see log-format.ts).
   */
  append(batch: LogBatch, synced: number): void {
    faults.hit('log.append', batch);
    const record = encodeRecord(batch, synced);
    const end = this.#end + record.length;
    if (this.#fillAhead && end + FILL_MIN > this.#filled) this.#fill(end);
    // A record cut short by a failure is written over by the next one: `#end` moves only once
    // the whole record is written.
    this.#writeAt(record, record.length, this.#end);
    this.#end = end;
    if (end > this.#filled) this.#filled = end;
  }

  /**
   * Writes zeros past everything the file has (so past every record, old or new) and syncs
   * them on the thread pool at once, off the writers' path: the records written over them
   * later are synced into blocks the disk has. The zeros' sync also syncs records written
   * before it; if it fails, whether they are on the disk is unknown, so every later sync fails.
   */
  #fill(end: number): void {
    const from = Math.max(this.#filled, end);
    const wanted = Math.min(FILL_MAX, Math.max(FILL_MIN, this.#filled));
    const length = Math.ceil(wanted / FILL_MIN) * FILL_MIN;
    zeros ??= Buffer.alloc(FILL_MIN);
    try {
      faults.hit('log.fill', from);
      for (let at = 0; at < length; at += FILL_MIN) this.#writeAt(zeros, FILL_MIN, from + at);
    } catch {
      // Only a speed-up (e.g. a disk too full for the zeros, not for the record): the record is
      // written all the same, and reports its own failure if it has one.
      return;
    }
    this.#filled = from + length;
    fdatasync(this.#fd, (error) => {
      let failure: Error | null = error;
      try {
        faults.hit('log.fill-sync', this.#filled);
      } catch (fault) {
        failure = fault instanceof Error ? fault : new Error('The log could not be synced');
      }
      if (failure) this.#fillError ??= failure;
    });
  }

  #writeAt(bytes: Uint8Array, length: number, at: number): void {
    let written = 0;
    while (written < length) {
      const n = writeSync(this.#fd, bytes, written, length - written, at + written);
      if (n === 0) throw new Error('The log accepted no bytes');
      written += n;
    }
  }

  /** Resolves once what was appended is on the disk. */
  sync(): Promise<void> {
    return new Promise((resolve, reject) => {
      try {
        faults.hit('log.sync', this.#end);
      } catch (error) {
        reject(error instanceof Error ? error : new Error(String(error)));
        return;
      }
      fdatasync(this.#fd, (error) => {
        const failure = error ?? this.#fillError;
        if (failure) reject(failure);
        else resolve();
      });
    });
  }

  /**
   * Starts the log again after `base` (LevelDB must have every batch, synced); resolves once
   * the new header is synced. The sync runs on the thread pool: in `process` durability it
   * also writes out the megabytes of records written since the log last started, which would
   * otherwise hold the event loop for tens of milliseconds.
   */
  async restart(base: number): Promise<void> {
    this.#writeHeader(base);
    await new Promise<void>((resolve, reject) =>
      fdatasync(this.#fd, (error) => (error ? reject(error) : resolve())),
    );
    this.#end = FILE_HEADER;
  }

  #writeHeader(base: number): void {
    const header = encodeFileHeader(base);
    if (writeSync(this.#fd, header, 0, FILE_HEADER, 0) !== FILE_HEADER) {
      throw new Error('The log header could not be written');
    }
    if (this.#filled < FILE_HEADER) this.#filled = FILE_HEADER;
  }

  close(): void {
    closeSync(this.#fd);
  }
}

/** Makes a new file's name durable (its directory entry), where the platform allows it. */
export function syncDirectory(dir: string): void {
  let fd: number;
  try {
    fd = openSync(dir, 'r');
  } catch {
    return;
  }
  try {
    fsyncSync(fd);
  } catch {
    // Not supported here (e.g. on Windows): the file's own syncs are what there is.
  } finally {
    closeSync(fd);
  }
}
