import type { AbstractLevel } from 'abstract-level';
import { encode, decodeRaw } from './codec.js';
import { CairnError } from './errors.js';
import { faults } from './faults.js';
import { runIndexKeys, taskIndexKeys } from './indexes.js';
import { metaKey, prefixRange, runKey, taskKey } from './keys.js';
import { v1ToV2 } from './migrate-tags-usage.js';
import {
  RunSchema,
  TaskSchema,
  type Run,
  type RunStatus,
  type Task,
  type TaskStatus,
} from './records.js';

export type LevelDb = AbstractLevel<unknown, string, Uint8Array>;

/** The on-disk format this code writes. */
export const CURRENT_SCHEMA_VERSION = 5;

export interface MigrationProgress {
  readonly from: number;
  readonly to: number;
  readonly description: string;
  /** Records migrated so far, including those done before an interruption. */
  readonly done: number;
  /** Records in all, as counted when this open began. */
  readonly total: number;
}

export interface MigrationContext {
  readonly db: LevelDb;
  readonly batchSize: number;
  /** Reports progress; may throw (a test interrupting the migration). */
  progress(done: number, total: number): void;
}

/**
 * A step from one format to the next. It must be resumable: it commits its work in atomic
 * batches that also remove what they replaced, so running it again after an interruption
 * carries on where it stopped, and running it on a finished store does nothing.
 */
export interface Migration {
  readonly from: number;
  readonly to: number;
  readonly description: string;
  run(ctx: MigrationContext): Promise<void>;
}

const EMPTY = new Uint8Array(0);
/** classic-level's sync option (abstract-level's types do not name it). */
const SYNC = { sync: true } as object;
const VERSION_KEY = metaKey('schemaVersion');
const PROGRESS_KEY = metaKey('migration');

/**
 * Format 0 is the pre-release layout: JSON values under `run:<id>` and
 * `task:<runId>:<taskId>`, ISO dates, no indexes. Format 1 is the msgpack keyspace in
 * keys.ts with derived indexes. Format 2 adds the tag index and usage totals
 * (migrate-tags-usage.ts).
 */
const v0ToV1: Migration = {
  from: 0,
  to: 1,
  description: 'JSON records to msgpack records with indexes',
  async run(ctx) {
    // One range per format-0 prefix: a single `run:`..`task;` range would also hold the
    // format-1 `runs\x00<id>` keys this migration writes, and read them back as format 0.
    const ranges = [
      { gte: 'run:', lt: 'run;' },
      { gte: 'task:', lt: 'task;' },
    ];
    let total = 0;
    for (const range of ranges) for await (const _ of ctx.db.keys(range)) total++;
    const previous = (await readProgress(ctx.db))?.done ?? 0;
    let done = previous;
    total += previous;
    ctx.progress(done, total);
    for (const range of ranges) {
      for (;;) {
        const it = ctx.db.iterator({ ...range, valueEncoding: 'utf8' });
        const entries: [string, string][] = [];
        try {
          // nextv may return fewer than asked (classic-level stops at highWaterMarkBytes).
          while (entries.length < ctx.batchSize) {
            const next = await it.nextv(ctx.batchSize - entries.length);
            if (next.length === 0) break;
            entries.push(...(next as unknown as [string, string][]));
          }
        } finally {
          await it.close();
        }
        if (entries.length === 0) break;
        const batch = ctx.db.batch();
        for (const [k, json] of entries) {
          for (const [nk, nv] of convertV0(k, json)) batch.put(nk, nv);
          batch.del(k);
        }
        done += entries.length;
        batch.put(PROGRESS_KEY, encode({ from: 0, to: 1, done }));
        await batch.write({ sync: true });
        faults.hit('migration.batch', { done, total });
        ctx.progress(done, total);
      }
    }
  },
};

/**
 * Format 3 adds the store's log (`CAIRN-LOG`, store-log.ts) in front of LevelDB in `process`
 * durability, and `meta/appliedSeq`. No record changes: the step only stamps the store, so that
 * a version of Cairn that knows nothing of the log refuses it (`STORE_TOO_NEW`) instead of
 * opening it and missing the batches only the log has.
 */
const v2ToV3: Migration = {
  from: 2,
  to: 3,
  description: "the store's log in front of LevelDB (no record changes)",
  async run() {},
};

/**
 * Format 4 writes run and task records in their compact form (compact.ts). Records written
 * before stay maps, and every read takes both forms, so the step rewrites nothing; it stamps the
 * store so that a version of Cairn that reads only maps refuses it (`STORE_TOO_NEW`) instead of
 * reporting every new record as damaged.
 */
const v3ToV4: Migration = {
  from: 3,
  to: 4,
  description: 'compact run and task records (records already stored are read as they are)',
  async run() {},
};

/**
 * Format 5 moves the store's log to `CAIRN-WAL` (log-file.ts), whose records say what their
 * writer knew to be synced, and LevelDB records its position in that log with every batch
 * (log-recovery.ts); opening a format-4 store applies its `CAIRN-LOG` first and removes it. It
 * also writes a value that plain msgpack would not give back exactly (a lone surrogate, a
 * `__proto__` key, -0, ...) in an envelope (lossless.ts). No record changes: records written
 * before read as they always did. The stamp makes a version of Cairn that knows neither refuse
 * the store (`STORE_TOO_NEW`) instead of missing the batches only `CAIRN-WAL` has, or reporting
 * such records as damaged.
 */
const v4ToV5: Migration = {
  from: 4,
  to: 5,
  description:
    "the store's log moves to CAIRN-WAL; values msgpack alone would change go in an envelope (no record changes)",
  async run() {},
};

export const MIGRATIONS: readonly Migration[] = [v0ToV1, v1ToV2, v2ToV3, v3ToV4, v4ToV5];

function convertV0(k: string, json: string): [string, Uint8Array][] {
  let raw: Record<string, unknown>;
  try {
    raw = JSON.parse(json) as Record<string, unknown>;
  } catch (cause) {
    throw new CairnError('CORRUPT_RECORD', `Format-0 record "${k}" is not JSON`, {
      cause,
      details: { key: k },
    });
  }
  const out: [string, Uint8Array][] = [];
  if (k.startsWith('run:')) {
    const run = v0Run(k, raw);
    out.push([runKey(run.id), encode(run)]);
    for (const ik of runIndexKeys(run)) out.push([ik, EMPTY]);
  } else {
    const task = v0Task(k, raw);
    out.push([taskKey(task.runId, task.taskId), encode(task)]);
    for (const ik of taskIndexKeys(task)) out.push([ik, EMPTY]);
  }
  return out;
}

const V0_RUN_STATUS: Record<string, RunStatus> = {
  pending: 'queued',
  running: 'running',
  paused: 'paused',
  done: 'completed',
  failed: 'failed',
  cancelled: 'cancelled',
};

const V0_TASK_STATUS: Record<string, TaskStatus> = {
  running: 'running',
  waiting: 'waiting',
  sleeping: 'sleeping',
  done: 'completed',
  failed: 'failed',
};

const ms = (iso: unknown): number | null => (typeof iso === 'string' ? Date.parse(iso) : null);
const v0Error = (e: unknown) => (typeof e === 'string' ? { message: e } : null);

function v0Run(k: string, raw: Record<string, unknown>): Run {
  const status = V0_RUN_STATUS[String(raw.status)] ?? 'failed';
  const createdAt = ms(raw.createdAt) ?? 0;
  const updatedAt = ms(raw.updatedAt) ?? createdAt;
  const terminal = status === 'completed' || status === 'failed' || status === 'cancelled';
  const parsed = RunSchema.safeParse({
    id: raw.id,
    workflow: raw.workflow,
    version:
      typeof raw.version === 'string' || typeof raw.version === 'number'
        ? String(raw.version)
        : '1',
    namespace: 'default',
    status,
    isPaused: status === 'paused',
    pausedTaskId: status === 'paused' ? (raw.pausedTask ?? null) : null,
    pauseRequested: false,
    input: raw.input,
    ...(raw.output === undefined ? {} : { output: raw.output }),
    error: v0Error(raw.error),
    createdAt,
    startedAt: createdAt,
    updatedAt,
    endedAt: terminal ? updatedAt : null,
    parentRunId: raw.parentId ?? null,
    parentTaskId: null,
    depth: raw.parentId ? 1 : 0,
    recoveries: 0,
    tags: Array.isArray(raw.tags) ? raw.tags : [],
  });
  if (!parsed.success) {
    throw new CairnError('CORRUPT_RECORD', `Format-0 run "${k}" cannot be migrated`, {
      cause: parsed.error,
      details: { key: k },
    });
  }
  return parsed.data;
}

function v0Task(k: string, raw: Record<string, unknown>): Task {
  const startedAt = ms(raw.startedAt) ?? 0;
  const endedAt = ms(raw.endedAt);
  const parsed = TaskSchema.safeParse({
    runId: raw.runId,
    taskId: raw.taskId,
    kind: raw.kind,
    seq: raw.seq,
    status: V0_TASK_STATUS[String(raw.status)] ?? 'failed',
    attempt: raw.attempt ?? 1,
    attempts: [],
    ...(raw.output === undefined ? {} : { output: raw.output }),
    error: v0Error(raw.error),
    startedAt,
    endedAt,
    durationMs: endedAt === null ? null : Math.max(0, endedAt - startedAt),
    group: null,
    parentTaskId: null,
    meta: typeof raw.meta === 'object' && raw.meta !== null ? raw.meta : {},
    ...(raw.kind === 'wait' ? { schema: raw.schema ?? {}, timeoutAt: null } : {}),
  });
  if (!parsed.success) {
    throw new CairnError('CORRUPT_RECORD', `Format-0 task "${k}" cannot be migrated`, {
      cause: parsed.error,
      details: { key: k },
    });
  }
  return parsed.data;
}

async function readProgress(db: LevelDb): Promise<{ done: number } | undefined> {
  const bytes = await db.get(PROGRESS_KEY);
  if (bytes === undefined) return undefined;
  const value = decodeRaw(PROGRESS_KEY, bytes) as { done?: unknown };
  return { done: typeof value.done === 'number' ? value.done : 0 };
}

export async function readSchemaVersion(db: LevelDb): Promise<number> {
  const bytes = await db.get(VERSION_KEY);
  if (bytes !== undefined) {
    const version = decodeRaw(VERSION_KEY, bytes);
    if (typeof version !== 'number' || !Number.isInteger(version) || version < 0) {
      throw new CairnError('CORRUPT_RECORD', 'meta/schemaVersion is not a version number', {
        details: { key: 'meta/schemaVersion' },
      });
    }
    return version;
  }
  // No stamp. The progress of an interrupted migration names the format it started from (a
  // store is stamped at the end of each migration); format-0 records mean format 0.
  const hasKeys = async (range: { gte?: string; lt?: string }): Promise<boolean> => {
    for await (const _ of db.keys({ ...range, limit: 1 })) return true;
    return false;
  };
  if (!(await hasKeys({}))) return -1;
  const progress = await db.get(PROGRESS_KEY);
  if (progress !== undefined) {
    const from = (decodeRaw(PROGRESS_KEY, progress) as { from?: unknown } | null)?.from;
    return typeof from === 'number' && Number.isInteger(from) && from >= 0 ? from : 0;
  }
  if (
    (await hasKeys({ gte: 'run:', lt: 'run;' })) ||
    (await hasKeys({ gte: 'task:', lt: 'task;' }))
  ) {
    return 0;
  }
  // Records of a later format whose stamp was lost. Read as format 0, they would be migrated
  // again (format 2's usage totals counted twice): the newest format whose keys are there.
  let version = 1;
  for (const [format, prefixes] of FORMAT_KEYS) {
    for (const prefix of prefixes) {
      if (format > version && (await hasKeys(prefixRange(prefix)))) version = format;
    }
  }
  return version;
}

/**
 * Key families each format brought in (format 1 is every key family not listed here). Names,
 * not `PREFIX` entries: a format's keys keep their names even if the code moves on.
 */
const FORMAT_KEYS: readonly (readonly [number, readonly string[]])[] = [[2, ['idx-tag', 'usage']]];

export interface MigrateOptions {
  readonly migrations?: readonly Migration[];
  readonly target?: number;
  readonly batchSize?: number;
  readonly onProgress?: ((progress: MigrationProgress) => void) | undefined;
}

/**
 * Brings the store at `db` to `target`: a new (empty) store is stamped, an older one is
 * migrated step by step, a newer one is refused with `STORE_TOO_NEW`. Returns the version.
 */
export async function migrate(
  db: LevelDb,
  location: string,
  options: MigrateOptions = {},
): Promise<number> {
  const migrations = options.migrations ?? MIGRATIONS;
  const target = options.target ?? CURRENT_SCHEMA_VERSION;
  let version = await readSchemaVersion(db);
  if (version > 0 && version <= target && (await db.get(VERSION_KEY)) === undefined) {
    // A lost stamp (see readSchemaVersion): written back before anything else happens.
    await db.batch([{ type: 'put', key: VERSION_KEY, value: encode(version) }], SYNC);
  }
  if (version === -1) {
    await db.batch([{ type: 'put', key: VERSION_KEY, value: encode(target) }], SYNC);
    return target;
  }
  if (version > target) {
    throw new CairnError(
      'STORE_TOO_NEW',
      `The store at ${location} has format ${version}; this version of Cairn reads up to ${target}. Upgrade Cairn to open it.`,
      { details: { location, version, supported: target } },
    );
  }
  while (version < target) {
    const step = migrations.find((m) => m.from === version);
    if (!step) {
      throw new CairnError('MIGRATION_FAILED', `No migration from format ${version}`, {
        details: { from: version, to: target },
      });
    }
    try {
      await step.run({
        db,
        batchSize: options.batchSize ?? 500,
        progress: (done, total) =>
          options.onProgress?.({
            from: step.from,
            to: step.to,
            description: step.description,
            done,
            total,
          }),
      });
    } catch (cause) {
      if (cause instanceof CairnError && cause.code === 'CORRUPT_RECORD') throw cause;
      throw new CairnError(
        'MIGRATION_FAILED',
        `Migrating ${location} from format ${step.from} to ${step.to} stopped; opening it again resumes`,
        { cause, details: { from: step.from, to: step.to } },
      );
    }
    await db.batch(
      [
        { type: 'put', key: VERSION_KEY, value: encode(step.to) },
        { type: 'del', key: PROGRESS_KEY },
      ],
      SYNC,
    );
    version = step.to;
  }
  return version;
}
