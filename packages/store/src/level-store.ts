import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { ClassicLevel } from 'classic-level';
import { MemoryLevel } from 'memory-level';
import { LEGACY_LOG_FILE } from './legacy-log.js';
import { LevelBackedStore, type LevelBackedStoreOptions } from './level-backed-store.js';
import { LOG_FILE } from './log-file.js';
import type { LevelDb } from './migrations.js';
import { resolveStorePath } from './paths.js';
import { checkOptionNames, optionNames } from './options.js';
import type { StoreSupports } from './store-types.js';

/** The two backends of `LevelBackedStore`: LevelDB on disk, and memory-level. */

export interface LevelStoreOptions extends LevelBackedStoreOptions {
  /**
   * The directory of the LevelDB database; created if missing.
   * @default process.env.CAIRN_STORE_DIR, else `.cairn` under the working directory
   */
  readonly path?: string;
}

const BACKED_OPTIONS = {
  durability: true,
  maxRecordBytes: true,
  onMigrationProgress: true,
  migrationBatchSize: true,
  migrations: true,
  targetSchemaVersion: true,
  onLogDamage: true,
} as const;
const LEVEL_STORE_OPTIONS = optionNames<LevelStoreOptions>()({ ...BACKED_OPTIONS, path: true });
const MEMORY_STORE_OPTIONS = optionNames<MemoryStoreOptions>()({ ...BACKED_OPTIONS, db: true });

/** The embedded default: LevelDB (classic-level) in a directory on disk. */
export class LevelStore extends LevelBackedStore {
  readonly supports: StoreSupports = {
    persistence: true,
    locking: true,
    migrations: true,
    compaction: true,
  };
  readonly location: string;

  constructor(options: LevelStoreOptions = {}) {
    super(options);
    checkOptionNames('new LevelStore()', options, LEVEL_STORE_OPTIONS);
    if (options.path !== undefined && typeof options.path !== 'string') {
      throw Object.assign(new TypeError('options.path must be a string'), {
        code: 'INVALID_ARGUMENT',
      });
    }
    this.location = resolveStorePath(options.path);
  }

  protected override _logFiles(): { file: string; legacyFile: string } | null {
    return {
      file: join(this.location, LOG_FILE),
      legacyFile: join(this.location, LEGACY_LOG_FILE),
    };
  }

  protected _createDb(): LevelDb {
    mkdirSync(this.location, { recursive: true });
    return new ClassicLevel<string, Uint8Array>(this.location, {
      keyEncoding: 'utf8',
      valueEncoding: 'view',
    }) as unknown as LevelDb;
  }
}

export interface MemoryStoreOptions extends LevelBackedStoreOptions {
  /** A memory-level database to use, e.g. the `level` of a closed MemoryStore, to "reopen" it. */
  readonly db?: MemoryLevel<string, Uint8Array>;
}

/** The same store on memory-level: for tests and short-lived programs. */
export class MemoryStore extends LevelBackedStore {
  readonly supports: StoreSupports = {
    persistence: true,
    locking: false,
    migrations: true,
    compaction: false,
  };
  readonly location = null;
  readonly #memory: MemoryLevel<string, Uint8Array>;

  constructor(options: MemoryStoreOptions = {}) {
    super(options);
    checkOptionNames('new MemoryStore()', options, MEMORY_STORE_OPTIONS);
    this.#memory =
      options.db ??
      new MemoryLevel<string, Uint8Array>({ keyEncoding: 'utf8', valueEncoding: 'view' });
  }

  /** The memory database, to hand to a new MemoryStore after this one is closed. */
  get memory(): MemoryLevel<string, Uint8Array> {
    return this.#memory;
  }

  protected _createDb(): LevelDb {
    return this.#memory as unknown as LevelDb;
  }
}
