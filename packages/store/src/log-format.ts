import * as zlib from 'node:zlib';
import type { WriteValue } from './group-commit.js';

/**
 * The bytes of the store's log (`CAIRN-WAL`, see log-file.ts): a header, then records.
 *
 * Header (16 bytes): magic (u32), CRC-32 of the next 8 bytes (u32), `base` (f64): the
 * sequence number the records follow.
 *
 * Record: magic (u32), body length (u32), CRC-32 of everything after it (u32), `seq` (f64),
 * `synced` (f64), then the body: the number of entries (u32) and, for each, the key's length
 * (u32), the key (UTF-8), the value's length (i32, -1 for a deletion) and the value. `synced`
 * is the highest sequence number the writer knew to be on the disk when it wrote the record:
 * a record that fails its checksum, followed by one whose `synced` covers it, was on the disk
 * and was damaged since, where without that proof it may be a write the power cut before it
 * reached the disk (log-recovery.ts).
 *
 * Records run `base + 1`, `base + 2`, … from offset 16. Past the last one the file holds zeros
 * written ahead, or records of an earlier start of the log, whose sequence numbers are at most
 * `base`.
 */

const FILE_MAGIC = 0xca1f_0501;
const RECORD_MAGIC = 0xca1f_0502;
/** Bytes of the file header. */
export const FILE_HEADER = 16;
/** Bytes of a record before its body. */
export const RECORD_HEADER = 28;
/** A record's magic as it appears in the file, to find records by scanning. */
const RECORD_MAGIC_BYTES = Buffer.from([0x02, 0x05, 0x1f, 0xca]);

export interface LogBatch {
  readonly seq: number;
  readonly entries: readonly (readonly [string, WriteValue])[];
}

/** A record read back: its batch, where it is, and what its writer knew to be synced. */
export interface LogRecord extends LogBatch {
  readonly offset: number;
  readonly length: number;
  readonly synced: number;
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

/** The bytes of a file header with `base`. */
export function encodeFileHeader(base: number): Buffer {
  const header = Buffer.alloc(FILE_HEADER);
  header.writeUInt32LE(FILE_MAGIC, 0);
  header.writeDoubleLE(base, 8);
  header.writeUInt32LE(crc32(header.subarray(8)), 4);
  return header;
}

/** The base of a file header, or undefined if the bytes are not an intact header. */
export function decodeFileHeader(bytes: Uint8Array | null): number | undefined {
  if (bytes === null || bytes.length < FILE_HEADER) return undefined;
  const header = Buffer.from(bytes.buffer, bytes.byteOffset, FILE_HEADER);
  if (header.readUInt32LE(0) !== FILE_MAGIC) return undefined;
  if (crc32(header.subarray(8)) !== header.readUInt32LE(4)) return undefined;
  const base = header.readDoubleLE(8);
  return Number.isSafeInteger(base) && base >= 0 ? base : undefined;
}

/** One record's bytes. */
export function encodeRecord(batch: LogBatch, synced: number): Buffer {
  const keys: Buffer[] = [];
  let length = 4;
  for (const [k, v] of batch.entries) {
    const kb = Buffer.from(k, 'utf8');
    keys.push(kb);
    length += 8 + kb.length + (v === null ? 0 : v.byteLength);
  }
  const record = Buffer.allocUnsafe(RECORD_HEADER + length);
  record.writeUInt32LE(RECORD_MAGIC, 0);
  record.writeUInt32LE(length, 4);
  record.writeDoubleLE(batch.seq, 12);
  record.writeDoubleLE(synced, 20);
  let at = RECORD_HEADER;
  record.writeUInt32LE(batch.entries.length, at);
  at += 4;
  for (let i = 0; i < batch.entries.length; i++) {
    const kb = keys[i]!;
    const v = batch.entries[i]![1];
    record.writeUInt32LE(kb.length, at);
    kb.copy(record, at + 4);
    at += 4 + kb.length;
    record.writeInt32LE(v === null ? -1 : v.byteLength, at);
    at += 4;
    if (v !== null) {
      record.set(v, at);
      at += v.byteLength;
    }
  }
  record.writeUInt32LE(crc32(record.subarray(12)), 8);
  return record;
}

/** `length` bytes of a log at offset `at`, or null if it ends before them. */
export type ReadAt = (at: number, length: number) => Buffer | null;

export function bufferReader(bytes: Uint8Array): ReadAt {
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  return (at, length) => (at + length <= buf.length ? buf.subarray(at, at + length) : null);
}

/** Why reading records in sequence stopped where it did. */
export type StopReason =
  /** The file ends there. */
  | 'end'
  /** Zeros written ahead of the records. */
  | 'zeros'
  /** A record from before the log last started (its sequence number is at most the base). */
  | 'stale'
  /** A record whose length runs past the end of the file. */
  | 'incomplete'
  /** Bytes that are not an intact record: a wrong magic, checksum or body. */
  | 'damaged'
  /** An intact record whose sequence number is not the next one. */
  | 'out-of-sequence';

/** What is at `at`: an intact record, or why there is none. */
export function readRecordAt(
  read: ReadAt,
  at: number,
): { record: LogRecord } | { stop: Exclude<StopReason, 'stale' | 'out-of-sequence'> } {
  const header = read(at, RECORD_HEADER);
  if (header === null) {
    // Fewer bytes than a header: the end, or the start of a record cut short.
    const rest = read(at, 1);
    return { stop: rest === null ? 'end' : 'incomplete' };
  }
  const magic = header.readUInt32LE(0);
  if (magic !== RECORD_MAGIC) {
    return { stop: magic === 0 && header.readUInt32LE(4) === 0 ? 'zeros' : 'damaged' };
  }
  const length = header.readUInt32LE(4);
  const body = read(at + RECORD_HEADER, length);
  if (body === null) return { stop: 'incomplete' };
  const checked = crc32(header.subarray(12)) ^ 0xffff_ffff;
  if (crcOf(checked, body) !== header.readUInt32LE(8)) return { stop: 'damaged' };
  const seq = header.readDoubleLE(12);
  const synced = header.readDoubleLE(20);
  if (!Number.isSafeInteger(seq) || seq < 1 || !Number.isSafeInteger(synced) || synced < 0) {
    return { stop: 'damaged' };
  }
  const entries = decodeBody(body);
  if (entries === null) return { stop: 'damaged' };
  return { record: { seq, synced, entries, offset: at, length: RECORD_HEADER + length } };
}

/** The CRC-32 of `header` (seq and synced) followed by `body`, without copying them together. */
function crcOf(headerState: number, body: Buffer): number {
  if (nativeCrc) {
    const crc = (zlib as unknown as { crc32: (data: Uint8Array, value: number) => number }).crc32;
    return crc(body, (headerState ^ 0xffff_ffff) >>> 0) >>> 0;
  }
  // Without zlib's crc32 (Node before 20.15): continue the table computation by hand.
  let crc = headerState >>> 0;
  const t = table!;
  for (let i = 0; i < body.length; i++) crc = t[(crc ^ body[i]!) & 0xff]! ^ (crc >>> 8);
  return (crc ^ 0xffff_ffff) >>> 0;
}

function decodeBody(body: Buffer): [string, WriteValue][] | null {
  if (body.length < 4) return null;
  const count = body.readUInt32LE(0);
  const entries: [string, WriteValue][] = [];
  let at = 4;
  for (let i = 0; i < count; i++) {
    if (at + 4 > body.length) return null;
    const kl = body.readUInt32LE(at);
    at += 4;
    if (at + kl + 4 > body.length) return null;
    const k = body.toString('utf8', at, at + kl);
    at += kl;
    const vl = body.readInt32LE(at);
    at += 4;
    if (vl === -1) {
      entries.push([k, null]);
      continue;
    }
    if (vl < 0 || at + vl > body.length) return null;
    entries.push([k, body.subarray(at, at + vl)]);
    at += vl;
  }
  return at === body.length ? entries : null;
}

/** A log read in sequence from its header (see `readLog`). */
export interface LogContents {
  /** The header's base, or undefined when the header is missing or damaged. */
  readonly base: number | undefined;
  /** The records after the header that follow the base in sequence, in order. */
  readonly records: LogRecord[];
  /** Where reading in sequence stopped, and why. */
  readonly stop: { readonly offset: number; readonly reason: StopReason };
}

/** The header and the records that follow it in sequence. */
export function readLog(read: ReadAt): LogContents {
  const base = decodeFileHeader(read(0, FILE_HEADER));
  if (base === undefined) {
    const empty = read(0, 1) === null;
    return { base, records: [], stop: { offset: 0, reason: empty ? 'end' : 'damaged' } };
  }
  const records: LogRecord[] = [];
  let at = FILE_HEADER;
  for (;;) {
    const found = readRecordAt(read, at);
    if ('stop' in found) return { base, records, stop: { offset: at, reason: found.stop } };
    const expected = base + records.length + 1;
    if (found.record.seq !== expected) {
      const reason = found.record.seq <= base ? 'stale' : 'out-of-sequence';
      return { base, records, stop: { offset: at, reason } };
    }
    records.push(found.record);
    at += found.record.length;
  }
}

/**
 * Every intact record anywhere in `bytes` from `from` on, found by its magic, in file order:
 * the records past a damaged one, and those of earlier starts of the log. A record's magic
 * inside another's body is found too, and kept only if it is itself intact.
 */
export function scanRecords(bytes: Uint8Array, from: number): LogRecord[] {
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const read = bufferReader(buf);
  const found: LogRecord[] = [];
  let at = buf.indexOf(RECORD_MAGIC_BYTES, from);
  while (at !== -1) {
    const result = readRecordAt(read, at);
    if ('record' in result) {
      found.push(result.record);
      at = buf.indexOf(RECORD_MAGIC_BYTES, at + result.record.length);
    } else {
      at = buf.indexOf(RECORD_MAGIC_BYTES, at + 1);
    }
  }
  return found;
}

/**
 * Best effort, for a report: the keys of a damaged record at `at` in `bytes`, read without its
 * checksum (whatever can be read before the damage).
 */
export function keysOfDamaged(bytes: Buffer, at: number): string[] {
  if (at + RECORD_HEADER > bytes.length || bytes.readUInt32LE(at) !== RECORD_MAGIC) return [];
  const end = Math.min(bytes.length, at + RECORD_HEADER + bytes.readUInt32LE(at + 4));
  const keys: string[] = [];
  let p = at + RECORD_HEADER;
  if (p + 4 > end) return keys;
  const count = bytes.readUInt32LE(p);
  p += 4;
  for (let i = 0; i < count && p + 4 <= end; i++) {
    const kl = bytes.readUInt32LE(p);
    p += 4;
    if (p + kl + 4 > end) break;
    keys.push(bytes.toString('utf8', p, p + kl));
    p += kl;
    p += 4 + Math.max(0, bytes.readInt32LE(p));
  }
  return keys;
}
