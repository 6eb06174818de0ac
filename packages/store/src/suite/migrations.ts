import { expect } from 'vitest';
import { encode } from '../codec.js';
import { CURRENT_SCHEMA_VERSION, type MigrationProgress } from '../migrations.js';
import type { Store } from '../store.js';
import { expectCairnError, itIf, rawDb, type SuiteContext } from './context.js';
import { rawEntries } from './snapshot.js';

const VERSION_KEY = 'meta\u0000schemaVersion';

/** Rewrites an open level store as a format-0 store holding `runs` runs with two tasks each. */
async function writeFormat0(store: Store, runs: number): Promise<string[]> {
  const db = await rawDb(store);
  const ids: string[] = [];
  const batch = db.batch();
  batch.del(VERSION_KEY);
  const json = (value: unknown) => new TextEncoder().encode(JSON.stringify(value));
  for (let i = 0; i < runs; i++) {
    const id = `legacy-${String(i).padStart(3, '0')}`;
    ids.push(id);
    const at = new Date(Date.UTC(2024, 0, 1, 0, 0, i)).toISOString();
    batch.put(
      `run:${id}`,
      json({
        id,
        workflow: 'expense-approval',
        version: 1,
        status: ['pending', 'running', 'paused', 'done', 'failed'][i % 5],
        pausedTask: i % 5 === 2 ? 'approve' : undefined,
        input: { amount: i },
        output: i % 5 === 3 ? { paid: true } : undefined,
        error: i % 5 === 4 ? 'card declined' : undefined,
        createdAt: at,
        updatedAt: at,
        tags: ['legacy'],
      }),
    );
    batch.put(
      `task:${id}:score`,
      json({
        runId: id,
        taskId: 'score',
        kind: 'step',
        seq: 0,
        status: 'done',
        attempt: 1,
        output: 0.5,
        startedAt: at,
        endedAt: at,
        meta: { model: 'm' },
      }),
    );
    batch.put(
      `task:${id}:approve`,
      json({
        runId: id,
        taskId: 'approve',
        kind: 'wait',
        seq: 1,
        status: i % 5 === 2 ? 'waiting' : 'done',
        attempt: 1,
        startedAt: at,
        schema: { type: 'object' },
      }),
    );
  }
  await batch.write();
  return ids;
}

/**
 * Opens the data of the closed `store` again, `batchSize` records a batch, and stops the
 * migration once `stopAt` records are done: the open fails with `MIGRATION_FAILED`.
 */
export async function interruptMigration(
  ctx: SuiteContext,
  store: Store,
  batchSize: number,
  stopAt: number,
): Promise<Store> {
  const interrupted = await ctx.create({
    reuse: store,
    migrationBatchSize: batchSize,
    onMigrationProgress: (p) => {
      if (p.done >= stopAt) throw new Error('power cut');
    },
  });
  await expectCairnError(() => interrupted.open(), 'MIGRATION_FAILED');
  return interrupted;
}

export function migrationTests(ctx: SuiteContext): void {
  const ok = ctx.supports.migrations && ctx.supports.persistence && ctx.levelBacked;
  const reason = !ctx.supports.migrations
    ? 'the backend does not migrate (supports.migrations)'
    : !ctx.supports.persistence
      ? 'the backend does not keep data across close (supports.persistence)'
      : 'format-0 fixtures are raw LevelDB keys; the backend is not a LevelBackedStore';
  const level = itIf(ok, reason);

  level('a new store is stamped with the current format', async () => {
    const store = await ctx.open();
    expect(store.schemaVersion).toBe(CURRENT_SCHEMA_VERSION);
    expect(await store.getMeta('schemaVersion')).toBe(CURRENT_SCHEMA_VERSION);
  });

  level('a store newer than the code is refused with STORE_TOO_NEW, every time', async () => {
    const store = await ctx.open();
    await (await rawDb(store)).put(VERSION_KEY, encode(CURRENT_SCHEMA_VERSION + 1));
    await store.close();
    const newer = await ctx.create({ reuse: store });
    const error = await expectCairnError(() => newer.open(), 'STORE_TOO_NEW');
    expect(error.details).toMatchObject({
      version: CURRENT_SCHEMA_VERSION + 1,
      supported: CURRENT_SCHEMA_VERSION,
    });
    expect(newer.status).toBe('closed');
    await expectCairnError(() => newer.getRun('x'), 'STORE_CLOSED');
    // The refusal neither changed the version nor left the location locked.
    const again = await ctx.create({ reuse: newer });
    await expectCairnError(() => again.open(), 'STORE_TOO_NEW');
  });

  level('a format-0 store is migrated on open: every record, with its indexes', async () => {
    let store = await ctx.open();
    const ids = await writeFormat0(store, 10);
    const progress: MigrationProgress[] = [];
    store = await ctx.reopen(store, {
      migrationBatchSize: 4,
      onMigrationProgress: (p) => progress.push(p),
    });
    expect(store.schemaVersion).toBe(CURRENT_SCHEMA_VERSION);
    expect(await store.getMeta('schemaVersion')).toBe(CURRENT_SCHEMA_VERSION);
    expect(await store.getMeta('migration')).toBeUndefined();
    expect(await store.verify()).toMatchObject({ ok: true, runs: 10, tasks: 20 });
    const all = await store.listRuns({ limit: 1000 });
    expect(all.items.map((r) => r.id).sort()).toEqual(ids);
    expect((await store.listRuns({ status: 'queued' })).items).toHaveLength(2);
    expect((await store.listRuns({ status: 'completed' })).items).toHaveLength(2);
    const paused = (await store.listRuns({ status: 'paused' })).items;
    expect(paused.map((r) => [r.isPaused, r.pausedTaskId])).toEqual([
      [true, 'approve'],
      [true, 'approve'],
    ]);
    expect((await store.listWaiting()).items.map((t) => t.runId).sort()).toEqual(
      paused.map((r) => r.id).sort(),
    );
    const failed = (await store.listRuns({ status: 'failed' })).items[0]!;
    expect(failed.error).toEqual({ message: 'card declined' });
    expect(await store.getTask(ids[0]!, 'score')).toMatchObject({
      status: 'completed',
      output: 0.5,
    });
    const raw = (await rawEntries(store))!;
    expect(raw.filter((line) => line.startsWith('run:') || line.startsWith('task:'))).toEqual([]);
    expect(progress.filter((p) => p.from === 0).at(-1)).toMatchObject({
      to: 1,
      done: 30,
      total: 30,
    });
    // Then format 1 to 2: the tag index and usage totals, over the 10 runs.
    expect(progress.at(-1)).toMatchObject({ from: 1, to: 2, done: 10, total: 10 });
  });

  level('an interrupted migration resumes where it stopped on the next open', async () => {
    let store = await ctx.open();
    const ids = await writeFormat0(store, 12);
    await store.close();
    const interrupted = await interruptMigration(ctx, store, 5, 10);
    expect(interrupted.status).toBe('closed');
    const progress: MigrationProgress[] = [];
    store = await ctx.create({
      reuse: interrupted,
      migrationBatchSize: 5,
      onMigrationProgress: (p) => progress.push(p),
    });
    await store.open();
    expect(progress[0]).toMatchObject({ from: 0, done: 10, total: 36 });
    expect(progress.filter((p) => p.from === 0).at(-1)).toMatchObject({ done: 36, total: 36 });
    expect(await store.verify()).toMatchObject({ ok: true, runs: 12, tasks: 24 });
    expect((await store.listRuns({ limit: 1000 })).items.map((r) => r.id).sort()).toEqual(ids);
    // Opening a migrated store again changes nothing.
    const before = await rawEntries(store);
    store = await ctx.reopen(store);
    expect(await rawEntries(store)).toEqual(before);
  });
}
