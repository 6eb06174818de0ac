/**
 * Opens (and so migrates) the store at argv[2] with migration batches of argv[3] records,
 * printing `progress <done> <total>` after each batch and pausing argv[4] ms there, so a
 * parent can kill it partway. Prints `migrated <schemaVersion>` when done.
 */
import { LevelStore } from '@cairn/store';
import { exitWithParent } from './guard.js';

exitWithParent();
const [path, batchArg, delayArg] = process.argv.slice(2);
if (path === undefined) throw new Error('usage: migrate-store <dir> [batchSize] [delayMs]');
const delayMs = Number(delayArg ?? 0);
const pause = new Int32Array(new SharedArrayBuffer(4));

const store = new LevelStore({
  path,
  migrationBatchSize: Number(batchArg ?? 500),
  onMigrationProgress: ({ done, total }) => {
    process.stdout.write(`progress ${done} ${total}\n`);
    // The callback is synchronous: block here, as a slow disk would.
    if (delayMs > 0) Atomics.wait(pause, 0, 0, delayMs);
  },
});
await store.open();
process.stdout.write(`migrated ${store.schemaVersion}\n`);
await store.close();
process.exit(0);
