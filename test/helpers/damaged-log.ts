/** Stores left with a log as a crash leaves it, to damage (log-recovery tests, the CLI's salvage). */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LevelStore, type Run, type Task } from '@cairn/store';
import { withRawDb } from './raw.js';

// The store's own modules, for the bytes of its log (not part of its public API).
import { encode } from '../../packages/store/src/codec.js';
import { metaKey, taskKey } from '../../packages/store/src/keys.js';
import { LOG_FILE, StoreLog } from '../../packages/store/src/log-file.js';
import {
  FILE_HEADER,
  encodeFileHeader,
  encodeRecord,
  type LogBatch,
} from '../../packages/store/src/log-format.js';
import { makeRun, makeTask } from '../../packages/store/src/suite/fixtures.js';

const made: string[] = [];

/** Removes every store `crashed` made. */
export function removeCrashed(): void {
  for (const dir of made.splice(0)) rmSync(dir, { recursive: true, force: true });
}

export const logFile = (path: string): string => join(path, LOG_FILE);

/** A step of one run, at `n` (its output says which). */
export const stepTask = (run: Run, n: number): Task =>
  makeTask(run, { taskId: 'step', status: 'completed', attempt: 1, output: n });

/**
 * A store holding one run, closed, then left as a process that died leaves it: the log starts
 * after `base` and holds `count` batches, batch `base + n` writing the run's `step` task at
 * `n`; LevelDB holds the first `applied` of them with its position, and the log is marked open.
 */
export async function crashed(
  count: number,
  applied: number,
  synced: (n: number) => number = (n) => n - 1,
): Promise<{ path: string; run: Run; base: number; records: Buffer[] }> {
  const path = mkdtempSync(join(tmpdir(), 'cairn-damaged-log-'));
  made.push(path);
  const store = new LevelStore({ path });
  await store.open();
  const run = makeRun();
  await store.createRun(run);
  await store.close();
  const base = StoreLog.read(logFile(path))!.base!;
  const batches: LogBatch[] = Array.from({ length: count }, (_, i) => ({
    seq: base + i + 1,
    entries: [[taskKey(run.id, 'step'), encode(stepTask(run, i + 1))]],
  }));
  const records = batches.map((b, i) => encodeRecord(b, base + synced(i + 1)));
  writeFileSync(logFile(path), Buffer.concat([encodeFileHeader(base), ...records]));
  await withRawDb(path, async (db) => {
    if (applied > 0) await db.put(taskKey(run.id, 'step'), encode(stepTask(run, applied)));
    await db.put(metaKey('appliedSeq'), encode(base + applied));
    await db.put(metaKey('logOpen'), encode(true));
  });
  return { path, run, base, records };
}

/** Flips a byte of record `n` (1-based) of the log at `path`, inside its value. */
export function damageRecord(path: string, records: readonly Buffer[], n: number): number {
  const bytes = readFileSync(logFile(path));
  const offset = FILE_HEADER + records.slice(0, n - 1).reduce((sum, r) => sum + r.length, 0);
  const at = offset + records[n - 1]!.length - 3;
  bytes[at] = bytes[at]! ^ 0xff;
  writeFileSync(logFile(path), bytes);
  return offset;
}
