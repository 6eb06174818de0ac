import { z } from 'zod';
import { decode, encode } from './codec.js';
import { PREFIX, SEP, prefixRange, usageKey } from './keys.js';
import { IdSchema, type Run, type Task } from './records.js';

/**
 * Usage analytics, kept incrementally: every completed step adds a `UsageDelta` to the totals
 * of its day, namespace, workflow and model. The totals live under
 * `usage/<day>/<namespace>/<workflow>/<model>`, are written in the same batch as the checkpoint
 * that carries the delta, and are held in memory, so a usage query never reads runs or tasks.
 */

const DAY_RE = /^\d{4}-\d{2}-\d{2}$/;
const Count = z.number().nonnegative().finite();

/** What one completed step adds to the totals. */
export const UsageDeltaSchema = z.object({
  /** The UTC day the step completed, `YYYY-MM-DD`. */
  day: z.string().refine(isDay, 'must be a YYYY-MM-DD day'),
  namespace: IdSchema,
  workflow: IdSchema,
  /** The model the step used, `'-'` when none. */
  model: IdSchema,
  steps: Count,
  promptTokens: Count,
  completionTokens: Count,
  totalTokens: Count,
});
export type UsageDelta = z.infer<typeof UsageDeltaSchema>;

/** The totals of one key (a day, namespace, workflow or model, as the query groups them). */
export interface UsageTotals {
  steps: number;
  promptTokens: number;
  completionTokens: number;
  totalTokens: number;
}

export const UsageTotalsSchema = z.object({
  steps: Count,
  promptTokens: Count,
  completionTokens: Count,
  totalTokens: Count,
});

export const USAGE_GROUPS = ['namespace', 'workflow', 'model', 'day'] as const;
export type UsageGroup = (typeof USAGE_GROUPS)[number];

export interface UsageQuery {
  /** First day counted (inclusive): `'YYYY-MM-DD'` or epoch ms (its UTC day). */
  readonly since?: string | number;
  /** Last day counted (inclusive): `'YYYY-MM-DD'` or epoch ms (its UTC day). */
  readonly until?: string | number;
  readonly namespace?: string;
  readonly workflow?: string;
  /** What each row totals. */
  readonly by: UsageGroup;
}

export interface UsageRow extends UsageTotals {
  /** The day, namespace, workflow or model of the row. */
  readonly key: string;
}

const DAY_MS = 86_400_000;
/** The last day formatted: steps that complete on the same day (nearly all) reuse it. */
let lastDay = { n: Number.NaN, text: '' };

/** The UTC day of an epoch-ms time, `YYYY-MM-DD`. */
export function utcDay(ms: number): string {
  const n = Math.floor(ms / DAY_MS);
  if (n !== lastDay.n) lastDay = { n, text: new Date(n * DAY_MS).toISOString().slice(0, 10) };
  return lastDay.text;
}

/** Whether `value` is a real `YYYY-MM-DD` day (not `2025-02-30`). */
export function isDay(value: string): boolean {
  if (!DAY_RE.test(value)) return false;
  const ms = Date.parse(`${value}T00:00:00Z`);
  return !Number.isNaN(ms) && utcDay(ms) === value;
}

const count = (value: unknown): number =>
  typeof value === 'number' && Number.isFinite(value) && value > 0 ? value : 0;

/** A model name usable as a key part: control characters dropped, at most 200 characters. */
function modelName(value: unknown): string {
  if (typeof value !== 'string') return '-';
  const clean = value.replace(/[\x00-\x1f\x7f]/g, '').slice(0, 200);
  return clean.length === 0 ? '-' : clean;
}

/**
 * What a completed step adds to the usage totals, from its `meta` (`model`,
 * `promptTokens`, `completionTokens`, `totalTokens`; numbers only) and its run. A step
 * without tokens counts as a step with zeros; `totalTokens`, when missing, is prompt plus
 * completion. The day is the UTC day the step ended.
 */
export function usageOfStep(
  run: Pick<Run, 'namespace' | 'workflow'>,
  task: Pick<Task, 'meta' | 'endedAt' | 'startedAt'>,
): UsageDelta {
  const promptTokens = count(task.meta.promptTokens);
  const completionTokens = count(task.meta.completionTokens);
  const total = count(task.meta.totalTokens);
  return {
    day: utcDay(task.endedAt ?? task.startedAt),
    namespace: run.namespace,
    workflow: run.workflow,
    model: modelName(task.meta.model),
    steps: 1,
    promptTokens,
    completionTokens,
    totalTokens: total > 0 ? total : promptTokens + completionTokens,
  };
}

/** Whether a task counts for usage: a completed step the workflow ran (not a recorded value). */
export function countsForUsage(task: Pick<Task, 'kind' | 'status' | 'taskId'>): boolean {
  return task.kind === 'step' && task.status === 'completed' && !task.taskId.startsWith('$');
}

const zero = (): UsageTotals => ({
  steps: 0,
  promptTokens: 0,
  completionTokens: 0,
  totalTokens: 0,
});

function addTo(totals: UsageTotals, delta: UsageTotals, sign: 1 | -1): void {
  totals.steps += sign * delta.steps;
  totals.promptTokens += sign * delta.promptTokens;
  totals.completionTokens += sign * delta.completionTokens;
  totals.totalTokens += sign * delta.totalTokens;
}

/**
 * The usage totals of a store, in memory, keyed by their store key. A single process owns a
 * LevelDB store, so the totals in memory are the totals on disk plus the deltas of batches
 * not yet written.
 */
export class UsageAggregates {
  readonly #totals = new Map<string, UsageTotals>();

  /** Loads the totals stored under `usage/` (one range scan); damaged ones are skipped. */
  async load(
    iterate: (range: { gte: string; lt: string }) => AsyncIterable<[string, Uint8Array]>,
  ): Promise<void> {
    this.#totals.clear();
    for await (const [k, bytes] of iterate(prefixRange(PREFIX.usage))) {
      try {
        this.#totals.set(k, decode(k, bytes, UsageTotalsSchema));
      } catch {
        // Usage is telemetry: a damaged total starts again from zero rather than keep the
        // store from opening (the next step of its key writes it whole).
      }
    }
  }

  /** Adds `deltas` and returns the keys they changed. */
  apply(deltas: readonly UsageDelta[]): string[] {
    const keys: string[] = [];
    for (const d of deltas) {
      const k = usageKey(d.day, d.namespace, d.workflow, d.model);
      let totals = this.#totals.get(k);
      if (!totals) this.#totals.set(k, (totals = zero()));
      addTo(totals, d, 1);
      keys.push(k);
    }
    return keys;
  }

  /** Takes back `deltas` whose batch was not written. */
  revert(deltas: readonly UsageDelta[]): void {
    for (const d of deltas) {
      const totals = this.#totals.get(usageKey(d.day, d.namespace, d.workflow, d.model));
      if (totals) addTo(totals, d, -1);
    }
  }

  /** The stored value of key `k` as it is now. */
  encoded(k: string): Uint8Array {
    return encode(this.#totals.get(k) ?? zero());
  }

  /** Rows grouped by `query.by`, ordered by key. */
  query(query: UsageQuery): UsageRow[] {
    const since = query.since === undefined ? null : dayOf(query.since);
    const until = query.until === undefined ? null : dayOf(query.until);
    const rows = new Map<string, UsageTotals>();
    for (const [k, totals] of this.#totals) {
      const [, day, namespace, workflow, model] = k.split(SEP) as [
        string,
        string,
        string,
        string,
        string,
      ];
      if (since !== null && day < since) continue;
      if (until !== null && day > until) continue;
      if (query.namespace !== undefined && namespace !== query.namespace) continue;
      if (query.workflow !== undefined && workflow !== query.workflow) continue;
      const group = { day, namespace, workflow, model }[query.by];
      let row = rows.get(group);
      if (!row) rows.set(group, (row = zero()));
      addTo(row, totals, 1);
    }
    return [...rows.entries()]
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
      .map(([key, totals]) => ({ key, ...totals }));
  }
}

/** A `since`/`until` bound as a day. */
export function dayOf(value: string | number): string {
  return typeof value === 'number' ? utcDay(value) : value;
}
