import { existsSync, renameSync, rmSync } from 'node:fs';
import { dirname } from 'node:path';
import { decodeRaw, encode } from './codec.js';
import { CairnError } from './errors.js';
import type { WriteValue } from './group-commit.js';
import { PREFIX, SEP, metaKey, prefixRange } from './keys.js';
import { readLegacyLog } from './legacy-log.js';
import { StoreLog, syncDirectory } from './log-file.js';
import {
  FILE_HEADER,
  keysOfDamaged,
  scanRecords,
  type LogBatch,
  type LogRecord,
} from './log-format.js';
import type { LevelDb } from './migrations.js';

/**
 * Opening a store on disk: what of its log LevelDB lacks, and whether the log can be trusted.
 *
 * LevelDB records, in every batch it gets from the log, the sequence number of the last record
 * in it (`meta/appliedSeq`), so it always says how far into the log it is. LevelDB gets a
 * record only once the log has it synced. Opening replays the log's records from its base,
 * in order, in one batch, provided they reach at least as far as LevelDB: the result is the
 * state as of the log's last record, never older than what LevelDB holds. Replaying the
 * records LevelDB has already changes nothing after a process crash, and after a power cut
 * puts back the ones its own unsynced log lost, which may be earlier than others it kept.
 *
 * `meta/logOpen` is true while a store has its log open, and false once it closed cleanly.
 *
 * The log ends where reading in sequence stops. That is normal at its end, at zeros written
 * ahead, or at a record of an earlier start of the log, and also at a record cut short or
 * damaged when nothing after it proves that it reached the disk: a write the power cut before
 * it was synced (so before it was acknowledged in `strict` durability). Anything else is
 * damage, and the store refuses to open with `LOG_DAMAGED` (or salvages, when asked):
 * - the log stops before LevelDB's position (it lost records LevelDB has);
 * - a record that a later record proves synced (log-format.ts) is damaged or missing;
 * - an intact record does not follow in sequence;
 * - the header is damaged while records newer than LevelDB's position lie behind it;
 * - the header's base is past LevelDB's position;
 * - the log is missing although the store did not close cleanly.
 */

/** What `onLogDamage` does with a damaged log. */
export type LogDamagePolicy = 'refuse' | 'salvage';

/** What a salvage did, kept in `meta/salvage` (one entry per salvage) and shown by `diagnose`. */
export interface SalvageReport {
  /** When (epoch ms). */
  readonly at: number;
  /** The damaged log, kept under this name beside the store. */
  readonly file: string;
  /** Where in it the damage was found, and what it was. */
  readonly offset: number;
  readonly reason: LogDamageReason;
  /** Records of the log applied to LevelDB (those that follow its position without a gap). */
  readonly applied: number;
  /** Intact records that could not be applied, because of a gap before them. */
  readonly dropped: number;
  /**
   * Runs that may have lost their last checkpoints: those named by records that could not
   * be applied (read without their checksum where damaged) and every run not ended.
   */
  readonly runs: string[];
}

export type LogDamageReason =
  'missing' | 'header' | 'base-ahead' | 'behind' | 'record' | 'out-of-sequence';

const SYNC = { sync: true } as object;
export const APPLIED_SEQ_KEY = metaKey('appliedSeq');
export const LOG_OPEN_KEY = metaKey('logOpen');
export const SALVAGE_KEY = metaKey('salvage');
const SCHEMA_KEY = metaKey('schemaVersion');
const NOT_ENDED = ['queued', 'running', 'paused'];

/**
 * Writes logged batches to LevelDB as one batch (a key written twice keeps its last value),
 * with the position `appliedSeq` when given.
 */
export function applyBatches(
  db: LevelDb,
  batches: readonly LogBatch[],
  options: object,
  appliedSeq?: number,
  extra: readonly (readonly [string, WriteValue])[] = [],
): Promise<void> {
  const merged = new Map<string, WriteValue>();
  for (const b of batches) for (const [k, v] of b.entries) merged.set(k, v);
  if (appliedSeq !== undefined) merged.set(APPLIED_SEQ_KEY, encode(appliedSeq));
  for (const [k, v] of extra) merged.set(k, v);
  const batch = db.batch();
  for (const [k, v] of merged) {
    if (v === null) batch.del(k);
    else batch.put(k, v);
  }
  return batch.write(options);
}

export interface RecoverOptions {
  /** The log's file, and the file of the log older formats wrote. */
  readonly file: string;
  readonly legacyFile: string;
  readonly onLogDamage: LogDamagePolicy;
}

export interface Recovered {
  /** The sequence number the log starts again after. */
  readonly base: number;
  /** What a salvage did, or null. */
  readonly salvage: SalvageReport | null;
}

/** Replays what the log holds and LevelDB lacks (see above); the log is then started again. */
export async function recoverLog(db: LevelDb, options: RecoverOptions): Promise<Recovered> {
  const applied = await readPosition(db);
  const open = await readFlag(db);
  const { file } = options;
  const contents = StoreLog.read(file);
  if (contents === null) {
    if (open === true) return damaged(db, options, applied, applied, 'missing', 0, [], []);
    if (open === undefined) return recoverLegacy(db, options, applied);
    return { base: applied, salvage: null };
  }
  // After a clean close the log holds no record past its base; otherwise every intact record
  // in the file is looked at, to tell a torn end from damage.
  const { base, records, stop } = contents;
  const quiet = stop.reason === 'end' || stop.reason === 'zeros' || stop.reason === 'stale';
  const bytes = open !== false || records.length > 0 || !quiet ? StoreLog.readAll(file) : null;
  const found = bytes === null ? [] : scanRecords(bytes, FILE_HEADER);
  const highest = highestSeq(found, applied);
  if (base === undefined) {
    // A header torn while the log started again leaves only records LevelDB has.
    if (found.some((r) => r.seq > applied)) {
      return damaged(db, options, applied, applied, 'header', 0, found, [], bytes);
    }
    return { base: highest, salvage: null };
  }
  const last = base + records.length;
  if (base > applied) {
    return damaged(db, options, applied, last, 'base-ahead', 0, found, [], bytes);
  }
  const proven = found.some((r) => r.seq > last && r.synced > last);
  let reason: LogDamageReason | null = null;
  if (last < applied) reason = 'behind';
  else if (stop.reason === 'out-of-sequence') reason = 'out-of-sequence';
  else if (proven) reason = 'record';
  if (reason !== null) {
    return damaged(db, options, applied, last, reason, stop.offset, found, records, bytes);
  }
  if (records.length > 0) await applyBatches(db, records, SYNC, last);
  return { base: Math.max(last, highest), salvage: null };
}

/**
 * A store that has not used `CAIRN-WAL` yet: the log of formats 3 and 4 is applied as those
 * formats did, then removed once the new log has started (see `retireLegacyLog`).
 */
async function recoverLegacy(
  db: LevelDb,
  options: RecoverOptions,
  applied: number,
): Promise<Recovered> {
  const legacy = readLegacyLog(options.legacyFile);
  if (legacy === null) return { base: applied, salvage: null };
  let last = applied;
  let todo: LogBatch[] = legacy.batches;
  if (legacy.base === undefined) {
    // Format 3: the batches after `appliedSeq`, up to the first missing one.
    todo = [];
    for (const batch of legacy.batches) {
      if (batch.seq <= last) continue;
      if (batch.seq !== last + 1) break;
      todo.push(batch);
      last = batch.seq;
    }
  }
  last = Math.max(last, legacy.base ?? 0, todo.length > 0 ? todo[todo.length - 1]!.seq : 0);
  if (todo.length > 0 || last !== applied) await applyBatches(db, todo, SYNC, last);
  return { base: last, salvage: null };
}

/** Removes the log of formats 3 and 4, if any, once LevelDB has all of it and `CAIRN-WAL` started. */
export function retireLegacyLog(legacyFile: string): void {
  if (!existsSync(legacyFile)) return;
  rmSync(legacyFile, { force: true });
  syncDirectory(dirname(legacyFile));
}

/**
 * Refuses the log (`LOG_DAMAGED`), or salvages it. `applied` is LevelDB's position, `logged` how
 * far the log reads in sequence, `found` every intact record in the file, `inSequence` those
 * read in sequence from the header.
 */
async function damaged(
  db: LevelDb,
  options: RecoverOptions,
  applied: number,
  logged: number,
  reason: LogDamageReason,
  offset: number,
  found: readonly LogRecord[],
  inSequence: readonly LogRecord[],
  bytes: Buffer | null = null,
): Promise<Recovered> {
  const { file } = options;
  // What can be applied without a gap: the records read in sequence when they reach LevelDB's
  // position, else the intact records that follow it one by one.
  let chain: LogRecord[];
  if (reason === 'record' || reason === 'out-of-sequence') chain = [...inSequence];
  else if (reason === 'base-ahead') chain = [];
  else chain = followers(found, applied);
  const last = chain.length > 0 ? chain[chain.length - 1]!.seq : applied;
  const dropped = found.filter((r) => r.seq > last);
  const named = new Set<string>();
  for (const r of dropped) for (const [k] of r.entries) addRun(named, k);
  if (bytes !== null && offset >= FILE_HEADER) {
    for (const k of keysOfDamaged(bytes, offset)) addRun(named, k);
  }
  const details = {
    file,
    offset,
    reason,
    applied,
    logged,
    droppedRecords: dropped.length,
    runs: [...named].sort(),
    salvage: "open the store with onLogDamage: 'salvage' (cairn salvage --store <dir>)",
  };
  if (options.onLogDamage !== 'salvage') {
    throw new CairnError('LOG_DAMAGED', describe(file, reason, offset, applied, logged), {
      details,
    });
  }
  for (const runId of await runsNotEnded(db)) named.add(runId);
  const at = Date.now();
  const kept = `${file}.damaged-${at}`;
  const report: SalvageReport = {
    at,
    file: kept,
    offset,
    reason,
    applied: chain.filter((r) => r.seq > applied).length,
    dropped: dropped.length,
    runs: [...named].sort(),
  };
  const history = await readSalvages(db);
  await applyBatches(db, chain, SYNC, Math.max(last, applied), [
    [SALVAGE_KEY, encode([...history, report])],
  ]);
  // The damaged log is kept as evidence; the store starts a new one.
  try {
    renameSync(file, kept);
  } catch (error) {
    if ((error as { code?: unknown }).code !== 'ENOENT') throw error;
  }
  syncDirectory(dirname(file));
  return { base: highestSeq(found, Math.max(applied, last)), salvage: report };
}

/** The highest of `floor` and the sequence numbers of `records` (a log holds many). */
function highestSeq(records: readonly LogRecord[], floor: number): number {
  let highest = floor;
  for (const r of records) if (r.seq > highest) highest = r.seq;
  return highest;
}

/** The intact records that follow `after` one by one (the first of each sequence number). */
function followers(found: readonly LogRecord[], after: number): LogRecord[] {
  const bySeq = new Map<number, LogRecord>();
  for (const r of found) if (r.seq > after && !bySeq.has(r.seq)) bySeq.set(r.seq, r);
  const chain: LogRecord[] = [];
  for (let seq = after + 1; bySeq.has(seq); seq++) chain.push(bySeq.get(seq)!);
  return chain;
}

function describe(
  file: string,
  reason: LogDamageReason,
  offset: number,
  applied: number,
  last: number,
): string {
  const what: Record<LogDamageReason, string> = {
    missing: 'is missing, although the store was not closed cleanly',
    header: 'has a damaged header, with records LevelDB lacks behind it',
    'base-ahead': `starts after record ${applied}, the last one LevelDB has`,
    behind: `ends at record ${last} (offset ${offset}), before record ${applied}, which LevelDB has`,
    record: `has a damaged record at offset ${offset}, which a later record shows had reached the disk`,
    'out-of-sequence': `has a record out of sequence at offset ${offset}`,
  };
  return (
    `The store's log ${file} ${what[reason]}. Acknowledged writes may be lost. ` +
    `Open the store with onLogDamage: 'salvage' (or run cairn salvage) to keep what can be ` +
    `applied without a gap and mark the runs that may have lost their last checkpoints.`
  );
}

function addRun(runs: Set<string>, k: string): void {
  const parts = k.split(SEP);
  switch (parts[0]) {
    case PREFIX.runs:
    case PREFIX.tasks:
    case PREFIX.inbox:
    case PREFIX.logs:
    case PREFIX.idxWaiting:
      if (parts[1]) runs.add(parts[1]);
      break;
    case PREFIX.timers:
      if (parts[2]) runs.add(parts[2]);
      break;
    default:
  }
}

async function runsNotEnded(db: LevelDb): Promise<string[]> {
  const runs: string[] = [];
  for (const status of NOT_ENDED) {
    for await (const k of db.keys(prefixRange(PREFIX.idxStatus, status))) {
      runs.push(k.slice(k.lastIndexOf(SEP) + 1));
    }
  }
  return runs;
}

/** Every salvage of this store, oldest first (see `SalvageReport`). */
export async function readSalvages(db: LevelDb): Promise<SalvageReport[]> {
  const bytes = await db.get(SALVAGE_KEY);
  if (bytes === undefined) return [];
  const value = decodeRaw(SALVAGE_KEY, bytes);
  return Array.isArray(value) ? (value as SalvageReport[]) : [];
}

async function readPosition(db: LevelDb): Promise<number> {
  const stored = await db.get(APPLIED_SEQ_KEY);
  const value: unknown = stored === undefined ? 0 : decodeRaw(APPLIED_SEQ_KEY, stored);
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0) {
    throw new CairnError('CORRUPT_RECORD', 'meta/appliedSeq is not a sequence number', {
      details: { key: 'meta/appliedSeq' },
    });
  }
  return value;
}

/** `meta/logOpen`: undefined for a store that has not used `CAIRN-WAL` yet. */
async function readFlag(db: LevelDb): Promise<boolean | undefined> {
  const stored = await db.get(LOG_OPEN_KEY);
  if (stored === undefined) {
    // A store this code created writes the flag before its first record; one without a
    // schema version is new.
    return (await db.get(SCHEMA_KEY)) === undefined ? false : undefined;
  }
  return decodeRaw(LOG_OPEN_KEY, stored) === true;
}

/** Marks the log open (`true`, before its first record) or closed cleanly, synced. */
export function markLog(db: LevelDb, open: boolean, appliedSeq?: number): Promise<void> {
  const batch = db.batch().put(LOG_OPEN_KEY, encode(open));
  if (appliedSeq !== undefined) batch.put(APPLIED_SEQ_KEY, encode(appliedSeq));
  return batch.write(SYNC);
}
