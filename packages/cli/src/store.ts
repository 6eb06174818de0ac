import { existsSync } from 'node:fs';
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
}

/**
 * Opens the store the way the engine does (migrating an older one, with a progress bar),
 * and turns a lock held by another process into a message that says what to do.
 */
export async function openStore(out: Output, options: OpenOptions): Promise<LevelStore> {
  // Loaded here, not at start-up: help and bad arguments never pay for it.
  const { LevelStore, isCairnError, resolveStorePath } = await import('@cairn/store');
  const location = resolveStorePath(options.path);
  if ((options.mustExist ?? true) && !existsSync(join(location, 'CURRENT'))) {
    throw new CliError(
      EXIT.notFound,
      `no Cairn store at ${location} (give its directory with --store or CAIRN_STORE_DIR)`,
      'NOT_FOUND',
      { location },
    );
  }
  const bar = progress(out.stderr, 'Migrating the store');
  const store = new LevelStore({
    path: location,
    onMigrationProgress: (p: MigrationProgress) =>
      bar.bar(p.done, p.total, `Migrating the store to format ${p.to} (${p.description})`),
  });
  try {
    await store.open();
  } catch (error) {
    if (isCairnError(error, 'STORE_LOCKED')) throw lockedError(location);
    throw error;
  } finally {
    bar.done();
  }
  return store;
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
  }
}
