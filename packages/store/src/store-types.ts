import type { CairnError } from './errors.js';
import type { Run, RunStatus, Task } from './records.js';
import type { UsageDelta } from './usage.js';

/** The types of the store contract (store.ts): its options, its records' envelopes, its answers. */

/**
 * `strict` syncs every batch to disk before its promise resolves (survives power loss).
 * `process` hands the batch to the OS without syncing (survives a crash of the process).
 */
export type Durability = 'strict' | 'process';

/** What a backend can do; the conformance suite skips, with a reason, what it cannot. */
export interface StoreSupports {
  /** Data outlives `close()` and a new store at the same location sees it. */
  readonly persistence: boolean;
  /** A second process opening the same location is refused with `STORE_LOCKED`. */
  readonly locking: boolean;
  /** Older on-disk layouts are migrated forward on open. */
  readonly migrations: boolean;
  /** `prune()` can compact the space it freed (LevelDB `compactRange`). */
  readonly compaction: boolean;
}

export interface InboxRef {
  readonly runId: string;
  readonly taskId: string;
}

/**
 * One atomic state change: every record here, every index entry and timer derived from
 * them, and every inbox entry consumed, are written in one batch or not at all.
 */
export interface Checkpoint {
  /** Run records to write (whole records: they replace what is stored). */
  readonly runs?: readonly Run[];
  /** Task records to write (whole records). */
  readonly tasks?: readonly Task[];
  /** Inbox entries consumed by this change, deleted in the same batch. */
  readonly inboxTaken?: readonly InboxRef[];
  /** Usage of the steps this change completes, added to the usage totals in the same batch. */
  readonly usage?: readonly UsageDelta[];
}

export interface CheckpointOptions {
  /**
   * `false` marks a write whose loss is harmless (a step's "started" marker): it is not
   * synced on its own, and a later write of the same key in the same batch replaces it.
   * @default true
   */
  readonly durable?: boolean;
}

/** Which runs a listing, an export or a prune looks at. Every filter given must hold. */
export interface RunFilter {
  readonly status?: RunStatus;
  readonly workflow?: string;
  readonly namespace?: string;
  /** Runs created at or after this time (epoch ms). */
  readonly since?: number;
  /** Runs created before this time (epoch ms). */
  readonly until?: number;
  /** Runs that have every one of these tags. */
  readonly tags?: readonly string[];
}

export interface ListRunsQuery extends RunFilter {
  /** @default 100 */
  readonly limit?: number;
  /** The `cursor` of the previous page. */
  readonly cursor?: string | null;
}

export interface ListWaitingQuery {
  readonly runId?: string;
  /** @default 100 */
  readonly limit?: number;
  readonly cursor?: string | null;
}

/** A record that could not be read, reported instead of failing the whole listing. */
export interface CorruptRecord {
  readonly key: string;
  readonly error: CairnError;
}

export interface Page<T> {
  readonly items: T[];
  /** Pass as `cursor` to get the next page; `null` when there is none. */
  readonly cursor: string | null;
  readonly corrupt: CorruptRecord[];
}

export interface InboxEntry {
  readonly runId: string;
  readonly taskId: string;
  readonly data: unknown;
  readonly at: number;
}

export interface IntegrityProblem {
  readonly kind: 'corrupt' | 'missing-entry' | 'orphan-entry' | 'orphan-task';
  readonly key: string;
  readonly message: string;
}

export interface IntegrityReport {
  readonly ok: boolean;
  readonly runs: number;
  readonly tasks: number;
  readonly entries: number;
  readonly problems: IntegrityProblem[];
}

export type StoreStatus = 'opening' | 'open' | 'closing' | 'closed';
