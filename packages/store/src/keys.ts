/**
 * The keyspace. Every key is a UTF-8 string whose parts are separated by `\x00`, which no
 * id or name may contain, so a prefix always ends at a part boundary and every listing is
 * a range scan.
 *
 *   runs/<runId>                                    the Run record
 *   tasks/<runId>/<taskId>                          Task records
 *   idx-all/<order>                                 every run, by creation
 *   idx-status/<status>/<order>                     runs by status
 *   idx-workflow/<workflow>/<order>                 runs by workflow
 *   idx-ns/<namespace>/<order>                      runs by namespace
 *   idx-ns-status/<namespace>/<status>/<order>      runs by namespace and status
 *   idx-tag/<tag>/<order>                           runs by tag (tags never change)
 *   idx-waiting/<runId>/<taskId>                    tasks waiting for input
 *   timers/<at>/<runId>/<taskId>                    durable timers (sleeps, wait timeouts)
 *   inbox/<runId>/<taskId>                          input that arrived before its wait
 *   logs/<runId>/<seq>                              log lines
 *   usage/<day>/<namespace>/<workflow>/<model>      usage totals of completed steps
 *   meta/<name>                                     schema version and other metadata
 *
 * `<order>` is `<createdAt, 13 digits>\x00<runId>`: listings run newest first by scanning in
 * reverse, whatever the shape of the run id.
 */
export const SEP = '\x00';
const END = '\x01';

export const PREFIX = {
  runs: 'runs',
  tasks: 'tasks',
  idxAll: 'idx-all',
  idxStatus: 'idx-status',
  idxWorkflow: 'idx-workflow',
  idxNamespace: 'idx-ns',
  idxNamespaceStatus: 'idx-ns-status',
  idxTag: 'idx-tag',
  idxWaiting: 'idx-waiting',
  timers: 'timers',
  inbox: 'inbox',
  logs: 'logs',
  usage: 'usage',
  meta: 'meta',
} as const;

/** Key families that hold derived entries (index entries and timers). */
export const DERIVED_PREFIXES = [
  PREFIX.idxAll,
  PREFIX.idxStatus,
  PREFIX.idxWorkflow,
  PREFIX.idxNamespace,
  PREFIX.idxNamespaceStatus,
  PREFIX.idxTag,
  PREFIX.idxWaiting,
  PREFIX.timers,
] as const;

export function key(...parts: readonly (string | number)[]): string {
  return parts.join(SEP);
}

/** All keys that start with `parts` followed by a separator. */
export function prefixRange(...parts: readonly string[]): { gte: string; lt: string } {
  const base = parts.join(SEP);
  return { gte: base + SEP, lt: base + END };
}

export function padTime(ms: number): string {
  return String(Math.max(0, Math.floor(ms))).padStart(15, '0');
}

export function padSeq(seq: number): string {
  return String(seq).padStart(16, '0');
}

export function orderKey(createdAt: number, runId: string): string {
  return padTime(createdAt) + SEP + runId;
}

// The keys written at every step are concatenated directly (the same as `key(...)`, without
// its array).
export const runKey = (runId: string): string => PREFIX.runs + SEP + runId;
export const taskKey = (runId: string, taskId: string): string =>
  PREFIX.tasks + SEP + runId + SEP + taskId;
export const waitingKey = (runId: string, taskId: string): string =>
  PREFIX.idxWaiting + SEP + runId + SEP + taskId;
export const timerKey = (at: number, runId: string, taskId: string): string =>
  PREFIX.timers + SEP + padTime(at) + SEP + runId + SEP + taskId;
export const inboxKey = (runId: string, taskId: string): string =>
  PREFIX.inbox + SEP + runId + SEP + taskId;
export const logKey = (runId: string, seq: number): string => key(PREFIX.logs, runId, padSeq(seq));
export const metaKey = (name: string): string => key(PREFIX.meta, name);
export const usageKey = (day: string, namespace: string, workflow: string, model: string): string =>
  PREFIX.usage + SEP + day + SEP + namespace + SEP + workflow + SEP + model;

/** The last part of a key: a run id for `<order>` keys. */
export function lastPart(k: string): string {
  return k.slice(k.lastIndexOf(SEP) + 1);
}

/** A key as people read it: parts joined by `/`. */
export function displayKey(k: string): string {
  return k.split(SEP).join('/');
}
