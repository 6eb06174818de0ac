import { CairnError } from './errors.js';
import { decode } from './codec.js';
import { decodeRun, decodeTask } from './compact.js';
import {
  PREFIX,
  SEP,
  displayKey,
  key,
  lastPart,
  logKey,
  padTime,
  prefixRange,
  runKey,
  taskKey,
} from './keys.js';
import type { LevelDb } from './migrations.js';
import { IdSchema, LogLineSchema } from './records.js';
import type { LogLine, Run, Task, Timer } from './records.js';
import { matchesFilter, planRunScan } from './run-listing.js';
import type {
  CorruptRecord,
  InboxEntry,
  ListRunsQuery,
  ListWaitingQuery,
  Page,
} from './store-types.js';
import { z } from 'zod';

/**
 * The range reads of a level-backed store: listings, timers, inbox, logs. Each reads a
 * database that already has every acknowledged write (the store waits for it first).
 */

export const InboxValueSchema = z.object({ data: z.unknown(), at: z.number() });

/** The tasks of a run, in task id order. */
export async function readTasks(db: LevelDb, runId: string): Promise<Task[]> {
  // all() reads the range in a few round trips; for-await costs one turn per entry.
  const entries = await db.iterator(prefixRange(PREFIX.tasks, runId)).all();
  return entries.map(([k, bytes]) => decodeTask(k, bytes));
}

/** A page of runs, newest first (see run-listing.ts). */
export async function readRunsPage(
  db: LevelDb,
  query: ListRunsQuery & { limit: number; cursor: string | null },
): Promise<Page<Run>> {
  const scan = planRunScan(query);
  const after = query.cursor === null ? null : scan.base + decodeCursor(query.cursor);
  const it = db.keys({
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
      const values = await db.getMany(ids.map(runKey));
      for (let i = 0; i < keys.length; i++) {
        if (items.length === query.limit) {
          more = true;
          break;
        }
        last = keys[i]!.slice(scan.base.length);
        const run = decodeListed(runKey(ids[i]!), values[i], decodeRun, corrupt);
        if (run && (scan.exact || matchesFilter(run, query))) items.push(run);
      }
    }
    if (!more && items.length === query.limit) more = (await it.nextv(1)).length > 0;
  } finally {
    await it.close();
  }
  return { items, cursor: more && last !== null ? encodeCursor(last) : null, corrupt };
}

/** A listed record, or undefined with the reason in `corrupt` (missing or damaged). */
function decodeListed<T>(
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

/** A page of waiting tasks, by run and task id. */
export async function readWaitingPage(
  db: LevelDb,
  query: ListWaitingQuery & { limit: number; cursor: string | null },
): Promise<Page<Task>> {
  const range =
    query.runId === undefined
      ? prefixRange(PREFIX.idxWaiting)
      : prefixRange(PREFIX.idxWaiting, query.runId);
  const base = prefixRange(PREFIX.idxWaiting).gte;
  const after = query.cursor === null ? null : base + decodeCursor(query.cursor);
  const it = db.keys(after === null ? range : { gt: after, lt: range.lt });
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
    const values = await db.getMany(taskKeys);
    for (let i = 0; i < page.length; i++) {
      last = page[i]!.slice(base.length);
      const task = decodeListed(taskKeys[i]!, values[i], decodeTask, corrupt);
      if (task) items.push(task);
    }
  } finally {
    await it.close();
  }
  return { items, cursor: more && last !== null ? encodeCursor(last) : null, corrupt };
}

/** Timers due at `at`, oldest first, at most `limit`. */
export async function readDueTimers(db: LevelDb, at: number, limit: number): Promise<Timer[]> {
  const range = prefixRange(PREFIX.timers);
  // Clamped: `Infinity` would otherwise pad to a key below every real timer.
  const upper = key(
    PREFIX.timers,
    padTime(Math.min(Math.floor(at), Number.MAX_SAFE_INTEGER - 1) + 1),
  );
  const timers: Timer[] = [];
  for await (const k of db.keys({
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

/** The input kept for a run's waits. */
export async function readInbox(db: LevelDb, runId: string): Promise<InboxEntry[]> {
  const entries = await db.iterator(prefixRange(PREFIX.inbox, runId)).all();
  return entries.map(([k, bytes]) => {
    const value = decode(k, bytes, InboxValueSchema);
    return { runId, taskId: lastPart(k), data: value.data, at: value.at };
  });
}

/** A run's log lines after `afterSeq` (all when negative), at most `limit`. */
export async function readLogLines(
  db: LevelDb,
  runId: string,
  afterSeq: number,
  limit: number,
): Promise<LogLine[]> {
  const range = prefixRange(PREFIX.logs, runId);
  const lines: LogLine[] = [];
  const opts =
    afterSeq < 0 ? { ...range, limit } : { gt: logKey(runId, afterSeq), lt: range.lt, limit };
  for await (const [k, bytes] of db.iterator(opts)) lines.push(decode(k, bytes, LogLineSchema));
  return lines;
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
