import { afterAll, afterEach, beforeEach, expect, it } from 'vitest';
import { CairnError, type ErrorCode } from '../errors.js';
import { LevelBackedStore } from '../level-backed-store.js';
import type { LevelDb, MigrationProgress } from '../migrations.js';
import type { Store } from '../store.js';
import type { StoreSupports } from '../store-types.js';

/** What the suite may ask of a backend's factory. */
export interface StoreFactoryOptions {
  /**
   * A closed store whose data the new store must see: the same directory, the same memory
   * database, the same schema. Reopen, migration and locking tests pass it.
   */
  readonly reuse?: Store;
  /** The largest encoded record the store accepts (`VALUE_TOO_LARGE` tests pass a small one). */
  readonly maxRecordBytes?: number;
  /** Records per migration batch (migration tests pass a small one). */
  readonly migrationBatchSize?: number;
  /** Called as a migration advances; may throw to interrupt it. */
  readonly onMigrationProgress?: (progress: MigrationProgress) => void;
}

/**
 * Makes a new, unopened store: over fresh, empty data, or with `reuse` over the data of a
 * closed store. Every option given must be honoured.
 */
export type StoreFactory = (options?: StoreFactoryOptions) => Store | Promise<Store>;

export interface StoreSuiteOptions {
  readonly factory: StoreFactory;
  /** What the backend can do; tests of anything else are skipped, with the reason in their title. */
  readonly supports: StoreSupports;
}

/** What each area of the suite gets. */
export interface SuiteContext {
  readonly supports: StoreSupports;
  /** Whether the backend's stores are `LevelBackedStore`s, whose raw keys tests may read. */
  readonly levelBacked: boolean;
  /** A new, unopened store; closed after the test (or the suite, when made in `beforeAll`). */
  create(options?: StoreFactoryOptions): Promise<Store>;
  /** A new, open store over empty data. */
  open(options?: Omit<StoreFactoryOptions, 'reuse'>): Promise<Store>;
  /** Closes `store` and opens a new one over its data. */
  reopen(store: Store, options?: Omit<StoreFactoryOptions, 'reuse'>): Promise<Store>;
}

export function createContext(
  options: StoreSuiteOptions,
  levelBacked: boolean,
): SuiteContext & { readonly track: () => void } {
  let current: Store[] | null = null;
  const shared: Store[] = [];
  const make = async (factoryOptions?: StoreFactoryOptions): Promise<Store> => {
    const store = await options.factory(factoryOptions);
    (current ?? shared).push(store);
    return store;
  };
  const context = {
    supports: options.supports,
    levelBacked,
    create: make,
    async open(factoryOptions?: Omit<StoreFactoryOptions, 'reuse'>) {
      const store = await make(factoryOptions);
      await store.open();
      return store;
    },
    async reopen(store: Store, factoryOptions?: Omit<StoreFactoryOptions, 'reuse'>) {
      await store.close();
      const next = await make({ ...factoryOptions, reuse: store });
      await next.open();
      return next;
    },
    /** Registers the hooks that close every store a test or a suite made. */
    track() {
      beforeEach(() => {
        current = [];
      });
      afterEach(async () => {
        const stores = current ?? [];
        current = null;
        for (const store of stores) await store.close();
      });
      afterAll(async () => {
        for (const store of shared.splice(0)) await store.close();
      });
    },
  };
  return context;
}

/**
 * `it` when `ok`, otherwise `it.skip` with the reason in the title, so a report shows what a
 * backend does not do and why.
 */
export function itIf(
  ok: boolean,
  reason: string,
): (title: string, fn: () => Promise<void>) => void {
  return (title, fn) => {
    if (ok) it(title, fn);
    else it.skip(`${title} [skipped: ${reason}]`, fn);
  };
}

/**
 * What `fn` fails with. Store methods report every failure through the promise they return,
 * never by throwing synchronously, so that is checked too.
 */
export async function failure(fn: () => unknown): Promise<unknown> {
  let result: unknown;
  try {
    result = fn();
  } catch (error) {
    expect.fail(`threw synchronously instead of rejecting: ${String(error)}`);
  }
  expect(result).toBeInstanceOf(Promise);
  try {
    await result;
  } catch (error) {
    return error;
  }
  return expect.fail('expected the call to fail; it succeeded');
}

/** `fn` rejects with a `TypeError` whose `code` is `INVALID_ARGUMENT`. */
export async function expectTypeError(fn: () => unknown): Promise<void> {
  const error = await failure(fn);
  expect(error).toBeInstanceOf(TypeError);
  expect((error as { code?: unknown }).code).toBe('INVALID_ARGUMENT');
}

/** `fn` rejects with a `CairnError` with `code`. */
export async function expectCairnError(fn: () => unknown, code: ErrorCode): Promise<CairnError> {
  const error = await failure(fn);
  expect(error).toBeInstanceOf(CairnError);
  expect((error as CairnError).code).toBe(code);
  return error as CairnError;
}

/** Every page of a paginated listing, checking the `cursor` contract on the way. */
export async function allPages<T>(
  list: (cursor: string | null) => Promise<{ items: T[]; cursor: string | null }>,
  maxPages = 1000,
): Promise<T[][]> {
  const pages: T[][] = [];
  let cursor: string | null = null;
  do {
    const page: { items: T[]; cursor: string | null } = await list(cursor);
    pages.push(page.items);
    cursor = page.cursor;
    if (cursor !== null) expect(typeof cursor).toBe('string');
  } while (cursor !== null && pages.length < maxPages);
  expect(cursor).toBeNull();
  return pages;
}

/**
 * The raw database of a `LevelBackedStore`, once it holds every acknowledged write: a test
 * that damages or reads raw keys must not race a batch still on its way to LevelDB (which
 * would then write over the damage).
 */
export async function rawDb(store: Store): Promise<LevelDb> {
  if (!(store instanceof LevelBackedStore)) throw new Error('raw keys need a LevelBackedStore');
  await store.settled();
  return store.level;
}
