import { PREFIX, key, padTime, prefixRange } from './keys.js';
import type { Run } from './records.js';
import type { RunFilter } from './store-types.js';

/** The largest time `padTime` keeps in order (15 digits). */
const MAX_PADDED = 999_999_999_999_999;

/** The key range a run listing scans, newest first, and what it checks on each record. */
export interface RunScan {
  /** Keys of the index, up to the `<order>` part (which `base` ends before). */
  readonly base: string;
  readonly gte: string;
  readonly lt: string;
  /** The index scanned, for people: `idx-status/completed`. */
  readonly index: string;
  /** Whether the index alone answers the filter (no record needs checking). */
  readonly exact: boolean;
}

/**
 * Chooses the index a listing scans: the most selective one the filter names — namespace
 * and status, status, workflow, tag, namespace — else every run. The time range bounds the
 * scan: every index key ends in `<createdAt, padded>\x00<runId>`, so `since` and `until` are
 * a range on that part.
 */
export function planRunScan(filter: RunFilter): RunScan {
  const { status, workflow, namespace, tags } = filter;
  let prefix: string[];
  let rest: boolean;
  if (namespace !== undefined && status !== undefined) {
    prefix = [PREFIX.idxNamespaceStatus, namespace, status];
    rest = workflow !== undefined || tags !== undefined;
  } else if (status !== undefined) {
    prefix = [PREFIX.idxStatus, status];
    rest = workflow !== undefined || tags !== undefined;
  } else if (workflow !== undefined) {
    prefix = [PREFIX.idxWorkflow, workflow];
    rest = namespace !== undefined || tags !== undefined;
  } else if (tags !== undefined && tags.length > 0) {
    prefix = [PREFIX.idxTag, tags[0]!];
    rest = namespace !== undefined || tags.length > 1;
  } else if (namespace !== undefined) {
    prefix = [PREFIX.idxNamespace, namespace];
    rest = false;
  } else {
    prefix = [PREFIX.idxAll];
    rest = false;
  }
  const range = prefixRange(...prefix);
  // createdAt is whole ms: `createdAt >= since` is `>= ceil(since)`, `< until` is `< ceil(until)`.
  const since = filter.since === undefined ? null : Math.min(Math.ceil(filter.since), MAX_PADDED);
  const until = filter.until === undefined ? null : Math.ceil(filter.until);
  const gte = since === null ? range.gte : key(...prefix, padTime(since));
  const lt = until === null || until > MAX_PADDED ? range.lt : key(...prefix, padTime(until));
  return {
    base: range.gte,
    gte,
    lt: lt < range.lt ? lt : range.lt,
    index: prefix.join('/'),
    exact: !rest,
  };
}

/** Whether `run` passes every filter (the scanned index's included). */
export function matchesFilter(run: Run, filter: RunFilter): boolean {
  if (filter.status !== undefined && run.status !== filter.status) return false;
  if (filter.workflow !== undefined && run.workflow !== filter.workflow) return false;
  if (filter.namespace !== undefined && run.namespace !== filter.namespace) return false;
  if (filter.since !== undefined && run.createdAt < filter.since) return false;
  if (filter.until !== undefined && run.createdAt >= filter.until) return false;
  if (filter.tags !== undefined && !filter.tags.every((tag) => run.tags.includes(tag)))
    return false;
  return true;
}
