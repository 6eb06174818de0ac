import {
  closeSync,
  fdatasync,
  fdatasyncSync,
  fstatSync,
  fsyncSync,
  openSync,
  readSync,
  writeSync,
} from 'node:fs';
import { dirname } from 'node:path';
import * as zlib from 'node:zlib';
import { decodeRaw, encode } from './codec.js';
import { faults } from './faults.js';
import type { WriteValue } from './group-commit.js';

/**
 * The store's log in front of LevelDB (`CAIRN-LOG`). A batch is written to this file before it
 * is acknowledged: in `process` durability with one synchronous write (the operating system
 * has it, so it survives the process), in `strict` durability also synced to the disk
 * (`fdatasync`, so it survives the machine). LevelDB gets the batch behind it, unsynced.
 * Opening the store applies the logged batches to LevelDB, synced, and starts the log again.
 *
 * The file starts with a header: magic (u32), CRC-32 of the next 8 bytes (u32), and `base`
 * (f64), the sequence number the records follow. A record: magic (u32), payload length (u32),
 * CRC-32 of the payload (u32), then the payload, msgpack of `[seq, [[key, value | null], …]]`.
 * Records run `base + 1`, `base + 2`, … Reading stops at the first record that is incomplete,
 * damaged or out of sequence: it was being written when the process died, so it was never
 * acknowledged, and nothing after it can have been either.
 *
 * Starting the log again rewrites the header with a new base, once LevelDB has every batch
 * synced, and writes the next records over the old ones: a sync then writes into blocks the
 * file already has, which costs the disk far less than one that must also give the file new
 * blocks. In `strict` durability the log is also filled with zeros ahead of its records
 * (`fillAhead`), so that even a new log's records are written over blocks it has. An old
 * record left behind the new ones is out of sequence, and zeros are no record: reading stops
 * there.
 *
 * A log written before the header existed (store format 3) is a bare run of records; it is
 * still read, and the store applies its records after `meta/appliedSeq`.
 */

const MAGIC = 0xca1f_0106;
const HEADER = 12;
const FILE_MAGIC = 0xca1f_0204;
/** Bytes of the file header. */
export const FILE_HEADER = 16;
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
   * record finds its blocks on the disk already (`strict` durability: here 0.16 ms for a 32 KB
   * record instead of 0.27 ms in a new part of the file).
   */
  readonly fillAhead?: boolean;
}

export interface LogBatch {
  readonly seq: number;
  readonly entries: readonly (readonly [string, WriteValue])[];
}

const nativeCrc = (zlib as { crc32?: (data: Uint8Array) => number }).crc32;
/** Whether `crc32` is zlib's own (Node 20.15 and later) rather than the table below. */
export const crcIsNative = typeof nativeCrc === 'function';
let table: Uint32Array | null = null;

/** CRC-32 (IEEE), as zlib computes it; zlib's own where Node has it (20.15 and later). */
export function crc32(data: Uint8Array): number {
  if (nativeCrc) return nativeCrc(data) >>> 0;
  if (table === null) {
    table = new Uint32Array(256);
    for (let n = 0; n < 256; n++) {
      let c = n;
      for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb8_8320 ^ (c >>> 1) : c >>> 1;
      table[n] = c >>> 0;
    }
  }
  let crc = 0xffff_ffff;
  for (let i = 0; i < data.length; i++) crc = table[(crc ^ data[i]!) & 0xff]! ^ (crc >>> 8);
  return (crc ^ 0xffff_ffff) >>> 0;
}

/** One record's bytes. */
export function encodeRecord(batch: LogBatch): Buffer {
  const payload = encode([batch.seq, batch.entries]);
  const record = Buffer.allocUnsafe(HEADER + payload.byteLength);
  record.writeUInt32LE(MAGIC, 0);
  record.writeUInt32LE(payload.byteLength, 4);
  record.writeUInt32LE(crc32(payload), 8);
  record.set(payload, HEADER);
  return record;
}

/** The bytes of a file header with `base`. */
export function encodeFileHeader(base: number): Buffer {
  const header = Buffer.alloc(FILE_HEADER);
  header.writeUInt32LE(FILE_MAGIC, 0);
  header.writeDoubleLE(base, 8);
  header.writeUInt32LE(crc32(header.subarray(8)), 4);
  return header;
}

/** What a log file holds: `base` is undefined for a log without a header (format 3). */
export interface LogContents {
  readonly base: number | undefined;
  readonly batches: LogBatch[];
}

/** `length` bytes of a log at offset `at`, or null if it ends before them. */
type ReadAt = (at: number, length: number) => Buffer | null;

function bufferReader(bytes: Uint8Array): ReadAt {
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  return (at, length) => (at + length <= buf.length ? buf.subarray(at, at + length) : null);
}

/** The batches of a whole log file's bytes (see the layout above). */
export function decodeLog(bytes: Uint8Array): LogContents {
  return readLog(bufferReader(bytes));
}

function readLog(read: ReadAt): LogContents {
  const header = read(0, FILE_HEADER);
  if (header === null || header.readUInt32LE(0) !== FILE_MAGIC) {
    return { base: undefined, batches: readRecords(read, 0) };
  }
  const base = header.readDoubleLE(8);
  if (crc32(header.subarray(8)) !== header.readUInt32LE(4) || !Number.isSafeInteger(base)) {
    // A header torn while the log was started again: LevelDB had every batch by then.
    return { base: undefined, batches: [] };
  }
  return { base, batches: readRecords(read, FILE_HEADER, base) };
}

/**
 * The complete, undamaged records at the start of `bytes`, in order; after `base`, only those
 * that follow it in sequence.
 */
export function decodeRecords(bytes: Uint8Array, base?: number): LogBatch[] {
  return readRecords(bufferReader(bytes), 0, base);
}

function readRecords(read: ReadAt, start: number, base?: number): LogBatch[] {
  const batches: LogBatch[] = [];
  let at = start;
  for (;;) {
    const header = read(at, HEADER);
    if (header === null || header.readUInt32LE(0) !== MAGIC) break;
    const length = header.readUInt32LE(4);
    const payload = read(at + HEADER, length);
    if (payload === null || crc32(payload) !== header.readUInt32LE(8)) break;
    const batch = toBatch(payload);
    if (batch === null) break;
    if (base !== undefined && batch.seq !== base + batches.length + 1) break;
    batches.push(batch);
    at += HEADER + length;
  }
  return batches;
}

function toBatch(payload: Uint8Array): LogBatch | null {
  let value: unknown;
  try {
    value = decodeRaw('log', payload);
  } catch {
    return null;
  }
  if (!Array.isArray(value) || value.length !== 2) return null;
  const [seq, entries] = value as [unknown, unknown];
  if (typeof seq !== 'number' || !Number.isSafeInteger(seq) || seq < 1) return null;
  if (!Array.isArray(entries)) return null;
  for (const entry of entries) {
    if (!Array.isArray(entry) || entry.length !== 2 || typeof entry[0] !== 'string') return null;
    if (entry[1] !== null && !(entry[1] instanceof Uint8Array)) return null;
  }
  return { seq, entries: entries as [string, WriteValue][] };
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

  /** The batches in the log at `file` (none if there is no file). */
  static read(file: string): LogContents {
    let fd: number;
    try {
      fd = openSync(file, 'r');
    } catch (error) {
      if ((error as { code?: unknown }).code === 'ENOENT') return { base: undefined, batches: [] };
      throw error;
    }
    // Record by record: the file is usually megabytes of old records and zeros behind a few
    // new ones, which need not all be in memory.
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

  /** Bytes in use: the header and the records since the log was last started. */
  get size(): number {
    return this.#end;
  }

  /** Writes one batch; returns once the operating system has it (see `sync`). */
  append(batch: LogBatch): void {
    faults.hit('log.append', batch);
    const record = encodeRecord(batch);
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
function syncDirectory(dir: string): void {
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
