import {
  closeSync,
  fstatSync,
  ftruncateSync,
  openSync,
  readFileSync,
  truncateSync,
  writeSync,
} from 'node:fs';
import * as zlib from 'node:zlib';
import { decodeRaw, encode } from './codec.js';
import { faults } from './faults.js';
import type { WriteValue } from './group-commit.js';

/**
 * The log in front of LevelDB in `process` durability. A batch is appended to this file with a
 * synchronous write before it is acknowledged: once the write returns, the batch is in the
 * operating system's hands and survives the process (not the machine, as `process` promises).
 * LevelDB gets the batch behind it; the store records in LevelDB, in the same batch, the
 * sequence number of the last log batch applied (`meta/appliedSeq`). Opening the store applies
 * the log batches that LevelDB does not have yet, in order, then empties the log.
 *
 * A record: magic (u32), payload length (u32), CRC-32 of the payload (u32), then the payload,
 * msgpack of `[seq, [[key, value | null], …]]`. Reading stops at the first record that is
 * incomplete or damaged: it was being written when the process died, so it was never
 * acknowledged, and nothing after it can have been either.
 */

const MAGIC = 0xca1f_0106;
const HEADER = 12;

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

/** The complete, undamaged records at the start of `bytes`, in order. */
export function decodeRecords(bytes: Uint8Array): LogBatch[] {
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const batches: LogBatch[] = [];
  let at = 0;
  while (at + HEADER <= buf.length) {
    if (buf.readUInt32LE(at) !== MAGIC) break;
    const length = buf.readUInt32LE(at + 4);
    const end = at + HEADER + length;
    if (end > buf.length) break;
    const payload = buf.subarray(at + HEADER, end);
    if (crc32(payload) !== buf.readUInt32LE(at + 8)) break;
    const batch = toBatch(payload);
    if (batch === null) break;
    batches.push(batch);
    at = end;
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

/** The log file, open for appending. */
export class ProcessLog {
  readonly #fd: number;
  #size: number;
  /** An append failed and its bytes could not be taken back: nothing more may follow them. */
  #broken: unknown = null;

  private constructor(fd: number, size: number) {
    this.#fd = fd;
    this.#size = size;
  }

  /** Opens (creating it if missing) the log at `file` for appending. */
  static open(file: string): ProcessLog {
    const fd = openSync(file, 'a');
    return new ProcessLog(fd, fstatSync(fd).size);
  }

  /** The batches in the log at `file` (none if there is no file). */
  static read(file: string): LogBatch[] {
    let bytes: Buffer;
    try {
      bytes = readFileSync(file);
    } catch (error) {
      if ((error as { code?: unknown }).code === 'ENOENT') return [];
      throw error;
    }
    return decodeRecords(bytes);
  }

  /** Empties the log at `file`, if there is one. */
  static empty(file: string): void {
    try {
      truncateSync(file, 0);
    } catch (error) {
      if ((error as { code?: unknown }).code !== 'ENOENT') throw error;
    }
  }

  /** Bytes in the log. */
  get size(): number {
    return this.#size;
  }

  /** Appends one batch; returns once the operating system has it. */
  append(batch: LogBatch): void {
    if (this.#broken !== null) throw this.#broken;
    faults.hit('log.append', batch);
    const record = encodeRecord(batch);
    let written = 0;
    try {
      while (written < record.length) {
        const n = writeSync(this.#fd, record, written, record.length - written);
        if (n === 0) throw new Error('The process log accepted no bytes');
        written += n;
      }
    } catch (error) {
      // A part of the record must not stay in front of the next one: reading stops there.
      if (written > 0) {
        try {
          ftruncateSync(this.#fd, this.#size);
        } catch {
          this.#broken = error;
        }
      }
      throw error;
    }
    this.#size += record.length;
  }

  /** Empties the log (every batch in it is in LevelDB). */
  truncate(): void {
    ftruncateSync(this.#fd, 0);
    this.#size = 0;
  }

  close(): void {
    closeSync(this.#fd);
  }
}
