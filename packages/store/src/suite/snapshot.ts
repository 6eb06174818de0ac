import { displayKey } from '../keys.js';
import { LevelBackedStore } from '../level-backed-store.js';
import type { LogLine, Run, Task, Timer } from '../records.js';
import { MAX_LIMIT, type Store } from '../store.js';
import type { InboxEntry } from '../store-types.js';

export interface RunSnapshot {
  readonly run: Run;
  readonly tasks: Task[];
  readonly inbox: InboxEntry[];
  readonly logs: LogLine[];
}

/** Everything a store holds, as its public API shows it (and, for level stores, raw). */
export interface StoreSnapshot {
  readonly runs: RunSnapshot[];
  readonly corrupt: string[];
  readonly waiting: Task[];
  readonly timers: Timer[];
  readonly integrity: { ok: boolean; runs: number; tasks: number; entries: number };
  /** Inbox entries and logs of `extra.runIds` (ids that may have no run record). */
  readonly extra: Record<string, { inbox: InboxEntry[]; logs: LogLine[] }>;
  readonly meta: Record<string, unknown>;
  /** Every key and value, for a `LevelBackedStore`; null for other backends. */
  readonly raw: string[] | null;
}

export interface SnapshotOptions {
  /** Run ids to read inbox entries and logs of even if they have no run. */
  readonly runIds?: readonly string[];
  /** Meta names to read. */
  readonly metaNames?: readonly string[];
}

/**
 * Reads the whole store, to compare before and after a call that must change nothing.
 * Small stores only: it lists every run.
 */
export async function snapshot(
  store: Store,
  options: SnapshotOptions = {},
): Promise<StoreSnapshot> {
  const runs: RunSnapshot[] = [];
  const corrupt: string[] = [];
  let cursor: string | null = null;
  do {
    const page = await store.listRuns({ limit: MAX_LIMIT, cursor });
    for (const run of page.items) {
      runs.push({
        run,
        tasks: await store.listTasks(run.id),
        inbox: await store.listInbox(run.id),
        logs: await store.readLogs(run.id),
      });
    }
    corrupt.push(...page.corrupt.map((c) => c.key));
    cursor = page.cursor;
  } while (cursor !== null);
  const waiting: Task[] = [];
  cursor = null;
  do {
    const page = await store.listWaiting({ limit: MAX_LIMIT, cursor });
    waiting.push(...page.items);
    cursor = page.cursor;
  } while (cursor !== null);
  const extra: StoreSnapshot['extra'] = {};
  for (const runId of options.runIds ?? []) {
    extra[runId] = { inbox: await store.listInbox(runId), logs: await store.readLogs(runId) };
  }
  const meta: Record<string, unknown> = {};
  for (const name of options.metaNames ?? []) meta[name] = await store.getMeta(name);
  const report = await store.verify();
  return {
    runs,
    corrupt,
    waiting,
    timers: await store.dueTimers(Number.MAX_SAFE_INTEGER),
    integrity: {
      ok: report.ok,
      runs: report.runs,
      tasks: report.tasks,
      entries: report.entries,
    },
    extra,
    meta,
    raw: await rawEntries(store),
  };
}

/**
 * Every key and value of a `LevelBackedStore`, as `key=hex` lines; null for other backends.
 * Every acknowledged write is in (see `settled()`); the store's log's bookkeeping is left out
 * (`meta/appliedSeq` counts the log's batches, a write that changes nothing included).
 */
export async function rawEntries(store: Store): Promise<string[] | null> {
  if (!(store instanceof LevelBackedStore)) return null;
  await store.settled();
  const lines: string[] = [];
  for await (const [k, v] of store.level.iterator()) {
    const shown = displayKey(k);
    if (shown === 'meta/appliedSeq') continue;
    lines.push(`${shown}=${Buffer.from(v).toString('hex')}`);
  }
  return lines;
}
