import { describe } from 'vitest';
import { LevelBackedStore } from '../level-backed-store.js';
import { atomicTests } from './atomic.js';
import { badInputTests } from './bad-input.js';
import { badValueTests } from './bad-values.js';
import { changeTrackingTests } from './change-tracking.js';
import { createContext, type StoreSuiteOptions } from './context.js';
import { corruptTests } from './corrupt.js';
import { deleteTests } from './delete.js';
import { enginePathTests } from './engine-path.js';
import { exactValueTests } from './exact-values.js';
import { exportImportTests } from './export-import.js';
import { inboxLogTests } from './inbox-logs.js';
import { indexTests } from './indexes.js';
import { listingTests } from './listing.js';
import { lifecycleTests } from './lifecycle.js';
import { metaTests } from './meta.js';
import { migrationV2Tests } from './migration-v2.js';
import { migrationTests } from './migrations.js';
import { reopenTests } from './reopen.js';
import { retentionTests } from './retention.js';
import { runTests } from './runs.js';
import { taskTests } from './tasks.js';
import { usageTests } from './usage.js';

/**
 * The conformance suite every `Store` backend must pass. Call it at the top level of a
 * vitest file; it registers one `describe` per area:
 *
 * ```ts
 * storeSuite({
 *   factory: (options) =>
 *     options?.reuse ? new MemoryStore({ db: (options.reuse as MemoryStore).memory }) : new MemoryStore(),
 *   supports: new MemoryStore().supports,
 * });
 * ```
 *
 * Tests of features the backend does not support (`supports`) are skipped with the reason in
 * their title. Tests that read or damage raw keys run on `LevelBackedStore`s only.
 */
export function storeSuite(options: StoreSuiteOptions): void {
  describe('store conformance', async () => {
    // One unopened probe tells whether raw-key tests can run; it is never opened.
    const levelBacked = (await options.factory()) instanceof LevelBackedStore;
    const ctx = createContext(options, levelBacked);
    ctx.track();
    describe('lifecycle', () => lifecycleTests(ctx));
    describe('runs', () => runTests(ctx));
    describe('tasks', () => taskTests(ctx));
    describe('indexes', () => indexTests(ctx));
    describe('atomic checkpoints', () => atomicTests(ctx));
    describe("the engine's write path", () => enginePathTests(ctx));
    describe('inbox and logs', () => inboxLogTests(ctx));
    describe('deleteRun', () => deleteTests(ctx));
    describe('meta', () => metaTests(ctx));
    describe('reopen', () => reopenTests(ctx));
    describe('migrations', () => migrationTests(ctx));
    describe('migration to format 2', () => migrationV2Tests(ctx));
    describe('listing with filters', () => listingTests(ctx));
    describe('usage', () => usageTests(ctx));
    describe('retention', () => retentionTests(ctx));
    describe('export and import', () => exportImportTests(ctx));
    describe('change tracking', () => changeTrackingTests(ctx));
    describe('corrupt records', () => corruptTests(ctx));
    describe('bad arguments', () => badInputTests(ctx));
    describe('bad values', () => badValueTests(ctx));
    describe('values come back exactly', () => exactValueTests(ctx));
  });
}

export { allPages, expectCairnError, expectTypeError, failure, itIf } from './context.js';
export type {
  StoreFactory,
  StoreFactoryOptions,
  StoreSuiteOptions,
  SuiteContext,
} from './context.js';
export {
  finished,
  makeLog,
  makeRun,
  makeSleep,
  makeTask,
  makeWait,
  nextTime,
  withStatus,
} from './fixtures.js';
export { exactValues, sameValue } from './exact-values.js';
export { rawEntries, snapshot } from './snapshot.js';
export type { RunSnapshot, SnapshotOptions, StoreSnapshot } from './snapshot.js';
