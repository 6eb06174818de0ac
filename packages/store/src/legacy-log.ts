import { readFileSync } from 'node:fs';
import { decodeRaw } from './codec.js';
import type { WriteValue } from './group-commit.js';
import { bufferReader, crc32, type LogBatch, type ReadAt } from './log-format.js';

/**
 * The store's log as store formats 3 and 4 wrote it, `CAIRN-LOG`: read once, when a store of
 * those formats is opened, and then replaced by `CAIRN-WAL` (log-file.ts).
 *
 * Format 4 starts the file with a header: magic (u32), CRC-32 of the next 8 bytes (u32), and
 * `base` (f64). Format 3 has no header. A record: magic (u32), payload length (u32), CRC-32 of
 * the payload (u32), then the payload, msgpack of `[seq, [[key, value | null], …]]`. Reading
 * stops at the first record that is incomplete, damaged or out of sequence.
 */

/** The file's name in the store's directory. */
export const LEGACY_LOG_FILE = 'CAIRN-LOG';

const MAGIC = 0xca1f_0106;
const HEADER = 12;
const FILE_MAGIC = 0xca1f_0204;
const FILE_HEADER = 16;

/** What a legacy log holds: `base` is undefined for a log without a header (format 3). */
export interface LegacyLog {
  readonly base: number | undefined;
  readonly batches: LogBatch[];
}

/** The legacy log at `file`, or null if there is none. */
export function readLegacyLog(file: string): LegacyLog | null {
  let bytes: Buffer;
  try {
    bytes = readFileSync(file);
  } catch (error) {
    if ((error as { code?: unknown }).code === 'ENOENT') return null;
    throw error;
  }
  return decodeLegacyLog(bytes);
}

/** The batches of a legacy log's bytes. */
export function decodeLegacyLog(bytes: Uint8Array): LegacyLog {
  const read = bufferReader(bytes);
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
