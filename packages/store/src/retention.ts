import { CairnError } from './errors.js';
import { checkOptionNames, optionNames } from './options.js';
import { orderKey } from './keys.js';
import type { Run } from './records.js';
import { MAX_LIMIT, typeError, type Store } from './store.js';

export const PRUNABLE_STATUSES = ['completed', 'failed', 'cancelled'] as const;
export type PrunableStatus = (typeof PRUNABLE_STATUSES)[number];

export interface PruneProgress {
  /** Runs deleted so far (counted, on a dry run). */
  readonly runs: number;
  /** Runs looked at so far. */
  readonly scanned: number;
  /** The status index being scanned, or `compact` while the freed space is compacted. */
  readonly phase: PrunableStatus | 'compact';
}

export interface PruneOptions {
  /** Runs that ended before this time (epoch ms) are deleted. */
  readonly olderThan: number;
  /** Keep the newest N runs (by creation, among `statuses`) whatever their age. @default 0 */
  readonly keep?: number;
  /** @default ['completed', 'failed', 'cancelled'] */
  readonly statuses?: readonly PrunableStatus[];
  /** Count what would be deleted; delete nothing. @default false */
  readonly dryRun?: boolean;
  readonly onProgress?: (progress: PruneProgress) => void;
  /** Runs deleted per write batch. @default 100 */
  readonly batchSize?: number;
}

/** What a deletion removed (or, on a dry run, would remove). */
export interface DeleteCounts {
  runs: number;
  tasks: number;
  logs: number;
  inbox: number;
  /** Index entries and timers. */
  entries: number;
}

export interface PruneResult extends DeleteCounts {
  /** Runs older than the cutoff kept by `keep`. */
  readonly kept: number;
  /** Runs looked at in the status indexes (those created before the cutoff). */
  readonly scanned: number;
  /** Keys of records that could not be read; they are left alone. */
  readonly corrupt: string[];
  /** Whether the freed space was compacted. */
  readonly compacted: boolean;
  /** Why it was not, when it was not (nothing deleted, a dry run, a backend that cannot). */
  readonly compactionSkipped: string | null;
  readonly dryRun: boolean;
}

export interface PruneHooks {
  deleteRuns(runIds: readonly string[], dryRun: boolean): Promise<DeleteCounts>;
  compact(): Promise<void>;
}

const PRUNE_OPTIONS = optionNames<PruneOptions>()({
  olderThan: true,
  keep: true,
  statuses: true,
  dryRun: true,
  onProgress: true,
  batchSize: true,
});

/** Prune options with their defaults, checked. */
export type CheckedPruneOptions = Required<Omit<PruneOptions, 'onProgress'>> & PruneOptions;

export function checkPruneOptions(options: unknown): CheckedPruneOptions {
  if (typeof options !== 'object' || options === null) throw typeError('options must be an object');
  checkOptionNames('options', options, PRUNE_OPTIONS);
  const o = options as PruneOptions;
  if (typeof o.olderThan !== 'number') throw typeError('options.olderThan must be a number');
  if (!Number.isFinite(o.olderThan)) {
    throw new CairnError('INVALID_ARGUMENT', 'options.olderThan must be a finite time (epoch ms)');
  }
  const whole = (name: string, value: unknown, fallback: number, min: number): number => {
    if (value === undefined) return fallback;
    if (typeof value !== 'number') throw typeError(`options.${name} must be a number`);
    if (!Number.isSafeInteger(value) || value < min) {
      throw new CairnError('INVALID_ARGUMENT', `options.${name} must be a whole number >= ${min}`);
    }
    return value;
  };
  const statuses = o.statuses ?? PRUNABLE_STATUSES;
  if (!Array.isArray(statuses)) throw typeError('options.statuses must be an array');
  for (const status of statuses as unknown[]) {
    if (!(PRUNABLE_STATUSES as readonly unknown[]).includes(status)) {
      throw new CairnError(
        'INVALID_ARGUMENT',
        `options.statuses: "${String(status)}" is not one of ${PRUNABLE_STATUSES.join(', ')}`,
      );
    }
  }
  if (o.dryRun !== undefined && typeof o.dryRun !== 'boolean')
    throw typeError('options.dryRun must be a boolean');
  if (o.onProgress !== undefined && typeof o.onProgress !== 'function')
    throw typeError('options.onProgress must be a function');
  return {
    ...o,
    olderThan: o.olderThan,
    keep: whole('keep', o.keep, 0, 0),
    statuses: [...new Set(statuses)],
    dryRun: o.dryRun ?? false,
    batchSize: whole('batchSize', o.batchSize, 100, 1),
  };
}

/** The ids of the newest `keep` runs across `statuses`, in index order (creation, then id). */
async function newest(
  store: Store,
  statuses: readonly string[],
  keep: number,
): Promise<Set<string>> {
  if (keep === 0) return new Set();
  const candidates: Run[] = [];
  for (const status of statuses as PrunableStatus[]) {
    let cursor: string | null = null;
    let taken = 0;
    do {
      const page = await store.listRuns({
        status,
        limit: Math.min(MAX_LIMIT, keep - taken),
        cursor,
      });
      candidates.push(...page.items);
      taken += page.items.length;
      cursor = page.cursor;
    } while (cursor !== null && taken < keep);
  }
  const order = (run: Run) => orderKey(run.createdAt, run.id);
  candidates.sort((a, b) => (order(a) < order(b) ? 1 : order(a) > order(b) ? -1 : 0));
  return new Set(candidates.slice(0, keep).map((run) => run.id));
}

/**
 * Retention: walks the status index of each terminal status, newest first, bounded to runs
 * created before the cutoff (a run ends after it is created, so no later one can qualify),
 * and deletes the runs that ended before it, a batch at a time. Each run is judged on its
 * own: a child run follows the same rules as its parent (see docs/decisions.md).
 */
export async function prune(
  store: Store,
  o: CheckedPruneOptions,
  hooks: PruneHooks,
): Promise<PruneResult> {
  const kept = await newest(store, o.statuses, o.keep);
  const counts: DeleteCounts = { runs: 0, tasks: 0, logs: 0, inbox: 0, entries: 0 };
  const corrupt: string[] = [];
  let scanned = 0;
  let keptOld = 0;
  const add = (c: DeleteCounts) => {
    counts.runs += c.runs;
    counts.tasks += c.tasks;
    counts.logs += c.logs;
    counts.inbox += c.inbox;
    counts.entries += c.entries;
  };
  for (const status of o.statuses) {
    let cursor: string | null = null;
    do {
      const page = await store.listRuns({ status, until: o.olderThan, limit: MAX_LIMIT, cursor });
      corrupt.push(...page.corrupt.map((c) => c.key));
      const doomed: string[] = [];
      for (const run of page.items) {
        scanned++;
        if (run.endedAt === null || run.endedAt >= o.olderThan) continue;
        if (kept.has(run.id)) keptOld++;
        else doomed.push(run.id);
      }
      for (let i = 0; i < doomed.length; i += o.batchSize) {
        add(await hooks.deleteRuns(doomed.slice(i, i + o.batchSize), o.dryRun));
        o.onProgress?.({ runs: counts.runs, scanned, phase: status });
      }
      if (doomed.length === 0) o.onProgress?.({ runs: counts.runs, scanned, phase: status });
      cursor = page.cursor;
    } while (cursor !== null);
  }
  let compacted = false;
  let compactionSkipped: string | null = null;
  if (o.dryRun) compactionSkipped = 'a dry run deletes nothing';
  else if (counts.runs === 0) compactionSkipped = 'nothing was deleted';
  else if (!store.supports.compaction) {
    compactionSkipped = 'the backend does not compact (supports.compaction is false)';
  } else {
    o.onProgress?.({ runs: counts.runs, scanned, phase: 'compact' });
    await hooks.compact();
    compacted = true;
  }
  return {
    ...counts,
    kept: keptOld,
    scanned,
    corrupt,
    compacted,
    compactionSkipped,
    dryRun: o.dryRun,
  };
}
