import { cpSync, existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { LevelStore, MigrationProgress } from '@cairn/store';
import { CliError, EXIT } from './errors.js';
import type { Output } from './output.js';
import { progress } from './progress.js';

export interface OpenOptions {
  /** `--store`; else CAIRN_STORE_DIR, else ./.cairn. */
  readonly path: string | undefined;
  /** Refuse a directory that holds no store (every command but `import`). @default true */
  readonly mustExist?: boolean;
  /**
   * The command only reads: on a disk too full to open the store (LevelDB and the store's log
   * write as they open), it reads a copy of the store made in the temporary directory.
   */
  readonly readOnly?: boolean;
  /** Open a store whose log is damaged, salvaging it (`cairn salvage`). */
  readonly salvage?: boolean;
}

/** Errors of the operating system that mean the disk has no room for the store's writes. */
const FULL = new Set(['ENOSPC', 'EDQUOT', 'EFBIG']);

/**
 * Opens the store the way the engine does (migrating an older one, with a progress bar),
 * and turns a lock held by another process, or a damaged log, into a message that says what
 * to do.
 */
export async function openStore(out: Output, options: OpenOptions): Promise<LevelStore> {
  // Loaded here, not at start-up: help and bad arguments never pay for it.
  const { isCairnError, osErrorOf, resolveStorePath } = await import('@cairn/store');
  const location = resolveStorePath(options.path);
  if ((options.mustExist ?? true) && !existsSync(join(location, 'CURRENT'))) {
    throw new CliError(
      EXIT.notFound,
      `no Cairn store at ${location} (give its directory with --store or CAIRN_STORE_DIR)`,
      'NOT_FOUND',
      { location },
    );
  }
  try {
    return await open(out, location, options.salvage === true);
  } catch (error) {
    if (isCairnError(error, 'STORE_LOCKED')) throw lockedError(location);
    if (isCairnError(error, 'LOG_DAMAGED')) throw damagedError(location, error);
    const os = osErrorOf(error);
    if (options.readOnly === true && os !== null && FULL.has(os.code)) {
      return openCopy(out, location, os.code);
    }
    throw error;
  }
}

async function open(out: Output, location: string, salvage: boolean): Promise<LevelStore> {
  const { LevelStore } = await import('@cairn/store');
  const bar = progress(out.stderr, 'Migrating the store');
  const store = new LevelStore({
    path: location,
    ...(salvage ? { onLogDamage: 'salvage' as const } : {}),
    onMigrationProgress: (p: MigrationProgress) =>
      bar.bar(p.done, p.total, `Migrating the store to format ${p.to} (${p.description})`),
  });
  try {
    await store.open();
  } finally {
    bar.done();
  }
  return store;
}

/** Copies of stores opened on a full disk, removed when their store closes (see `withStore`). */
const copies = new WeakMap<LevelStore, string>();

/**
 * A disk too full to open the store: a copy of it in the temporary directory (in memory where
 * there is one, /dev/shm), opened there, so that a command that only reads still works.
 */
async function openCopy(out: Output, location: string, code: string): Promise<LevelStore> {
  const base = existsSync('/dev/shm') ? '/dev/shm' : tmpdir();
  const copy = mkdtempSync(join(base, 'cairn-read-'));
  try {
    cpSync(location, copy, { recursive: true, filter: (src) => !src.endsWith('LOCK') });
    const store = await open(out, copy, false);
    copies.set(store, copy);
    out.note(
      out.c.yellow(
        `the disk of ${location} is full (${code}): showing a copy of the store taken now; free some space before the engine writes again`,
      ),
    );
    return store;
  } catch (error) {
    rmSync(copy, { recursive: true, force: true });
    throw error;
  }
}

/** Exit 4: names the path, says who holds it and what to do. */
export function lockedError(location: string): CliError {
  return new CliError(
    EXIT.locked,
    `the store at ${location} is locked: another process (a running Cairn engine) has it open`,
    'STORE_LOCKED',
    { location },
    [
      'LevelDB allows one process at a time. Stop that process and run the command again,',
      'or do the same from inside the application (engine.listRuns(), engine.resumeTask(), engine.pause(), ...).',
    ],
  );
}

/** Exit 5: the log is damaged; says where, and how to open the store anyway. */
function damagedError(location: string, error: Error & { details?: unknown }): CliError {
  const details = (error.details ?? {}) as Record<string, unknown>;
  return new CliError(EXIT.damaged, error.message, 'LOG_DAMAGED', details, [
    `Nothing was changed. To open the store anyway, keeping all that can be kept and marking`,
    `the runs that may have lost their last checkpoints: cairn salvage --store ${location}`,
  ]);
}

/** Runs `fn` with the open store, and closes it (waiting for its writes) whatever happens. */
export async function withStore<T>(
  out: Output,
  options: OpenOptions,
  fn: (store: LevelStore) => Promise<T>,
): Promise<T> {
  const store = await openStore(out, options);
  try {
    return await fn(store);
  } finally {
    await store.close();
    const copy = copies.get(store);
    if (copy !== undefined) rmSync(copy, { recursive: true, force: true });
  }
}
