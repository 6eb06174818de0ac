import { ClassicLevel } from 'classic-level';
import { expect } from 'vitest';
import { encode } from '../codec.js';
import { PREFIX, SEP, metaKey } from '../keys.js';
import { LevelStore, MemoryStore } from '../level-store.js';
import { CURRENT_SCHEMA_VERSION, type MigrationProgress } from '../migrations.js';
import type { Run, Task } from '../records.js';
import type { Store } from '../store.js';
import type { UsageRow } from '../usage.js';
import { itIf, rawDb, type SuiteContext } from './context.js';
import { makeRun, makeTask, makeWait } from './fixtures.js';
import { interruptMigration } from './migrations.js';
import { rawEntries } from './snapshot.js';

const DAY = 86_400_000;
const JAN1 = Date.UTC(2025, 0, 1);
const RUNS = 30;

/** Steps of run `i`: two that count, a recorded value, a failed step and a wait that do not. */
function tasksOf(run: Run, i: number): Task[] {
  const startedAt = JAN1 + (i % 4) * DAY + 1000;
  return [
    makeTask(run, {
      taskId: 'draft',
      seq: 0,
      startedAt,
      endedAt: startedAt + 5,
      meta: { model: 'gpt-x', promptTokens: 10 + i, completionTokens: 5, totalTokens: 15 + i },
    }),
    makeTask(run, { taskId: 'plain', seq: 1, startedAt, endedAt: startedAt + 5, meta: {} }),
    makeTask(run, { taskId: '$now', seq: 2, startedAt, meta: { recorded: 'now' } }),
    makeTask(run, {
      taskId: 'flaky',
      seq: 3,
      status: 'failed',
      error: { message: 'boom' },
      startedAt,
      meta: { model: 'gpt-x', totalTokens: 1000 },
    }),
    makeWait(run, { taskId: 'approve', seq: 4, status: 'completed', startedAt }),
  ];
}

/** Fills a store with runs and makes it a format-1 store: no tag entries, no usage totals. */
async function writeFormat1(store: Store): Promise<Run[]> {
  const runs: Run[] = [];
  for (let i = 0; i < RUNS; i++) {
    const run = makeRun({
      id: `v1-${String(i).padStart(3, '0')}`,
      namespace: `ns-${i % 2}`,
      workflow: `wf-${i % 3}`,
      status: 'completed',
      tags: i % 3 === 0 ? ['vip', 'eu'] : ['eu'],
    });
    runs.push(run);
    await store.checkpoint({ runs: [run], tasks: tasksOf(run, i) });
  }
  const db = await rawDb(store);
  const batch = db.batch();
  for await (const k of db.keys()) {
    if (k.startsWith(PREFIX.idxTag + SEP) || k.startsWith(PREFIX.usage + SEP)) batch.del(k);
  }
  batch.put(metaKey('schemaVersion'), encode(1));
  await batch.write();
  return runs;
}

/** The totals a correct migration of `writeFormat1` gives. */
function expectedByModel(): UsageRow[] {
  let prompt = 0;
  for (let i = 0; i < RUNS; i++) prompt += 10 + i;
  return [
    { key: '-', steps: RUNS, promptTokens: 0, completionTokens: 0, totalTokens: 0 },
    {
      key: 'gpt-x',
      steps: RUNS,
      promptTokens: prompt,
      completionTokens: 5 * RUNS,
      totalTokens: prompt + 5 * RUNS,
    },
  ];
}

async function expectMigrated(store: Store, runs: readonly Run[]): Promise<void> {
  expect(store.schemaVersion).toBe(CURRENT_SCHEMA_VERSION);
  expect(await store.getMeta('migration')).toBeUndefined();
  expect(await store.verify()).toMatchObject({ ok: true, runs: RUNS, tasks: RUNS * 5 });
  expect(await store.usage({ by: 'model' })).toEqual(expectedByModel());
  const byDay = await store.usage({ by: 'day' });
  expect(byDay.map((r) => [r.key, r.steps])).toEqual([
    ['2025-01-01', 16],
    ['2025-01-02', 16],
    ['2025-01-03', 14],
    ['2025-01-04', 14],
  ]);
  expect((await store.usage({ by: 'namespace' })).map((r) => [r.key, r.steps])).toEqual([
    ['ns-0', RUNS],
    ['ns-1', RUNS],
  ]);
  const vip = (await store.listRuns({ tags: ['vip'], limit: 1000 })).items.map((r) => r.id);
  expect(vip.sort()).toEqual(runs.filter((_, i) => i % 3 === 0).map((r) => r.id));
  expect((await store.listRuns({ tags: ['eu'], limit: 1000 })).items).toHaveLength(RUNS);
}

/** A format-1 store whose 1 → 2 migration stopped after 14 of its runs (closed). */
async function interruptedAt14(ctx: SuiteContext): Promise<{ runs: Run[]; interrupted: Store }> {
  const store = await ctx.open();
  const runs = await writeFormat1(store);
  await store.close();
  return { runs, interrupted: await interruptMigration(ctx, store, 7, 14) };
}

export function migrationV2Tests(ctx: SuiteContext): void {
  const ok = ctx.supports.migrations && ctx.supports.persistence && ctx.levelBacked;
  const reason = !ctx.supports.migrations
    ? 'the backend does not migrate (supports.migrations)'
    : !ctx.supports.persistence
      ? 'the backend does not keep data across close (supports.persistence)'
      : 'format-1 fixtures are raw LevelDB keys; the backend is not a LevelBackedStore';
  const level = itIf(ok, reason);

  level('a format-1 store gets its tag index and usage totals on open, with progress', async () => {
    let store = await ctx.open();
    const runs = await writeFormat1(store);
    const progress: MigrationProgress[] = [];
    store = await ctx.reopen(store, {
      migrationBatchSize: 7,
      onMigrationProgress: (p) => progress.push(p),
    });
    await expectMigrated(store, runs);
    expect(progress.map((p) => p.done)).toEqual([0, 7, 14, 21, 28, 30]);
    for (const p of progress) expect(p).toMatchObject({ from: 1, to: 2, total: RUNS });
  });

  level('an interrupted 1→2 migration resumes and counts every step once', async () => {
    const { runs, interrupted } = await interruptedAt14(ctx);
    let store: Store;
    const progress: MigrationProgress[] = [];
    store = await ctx.create({
      reuse: interrupted,
      migrationBatchSize: 7,
      onMigrationProgress: (p) => progress.push(p),
    });
    await store.open();
    expect(progress[0]).toMatchObject({ from: 1, done: 14, total: RUNS });
    expect(progress.at(-1)).toMatchObject({ done: RUNS, total: RUNS });
    await expectMigrated(store, runs);
    // Opening a migrated store again changes nothing.
    const before = await rawEntries(store);
    store = await ctx.reopen(store);
    expect(await rawEntries(store)).toEqual(before);
  });

  level('an interrupted 1→2 migration whose format stamp was lost resumes as 1→2', async () => {
    const { runs, interrupted } = await interruptedAt14(ctx);
    // Then the stamp is lost: format-1 records with part of format 2's keys written.
    // The stamp is deleted with the store closed, through its database: the memory one, or
    // classic-level on its directory.
    const raw =
      interrupted instanceof MemoryStore
        ? interrupted.memory
        : new ClassicLevel<string, Uint8Array>(interrupted.location!, {
            keyEncoding: 'utf8',
            valueEncoding: 'view',
          });
    expect(interrupted instanceof MemoryStore || interrupted instanceof LevelStore).toBe(true);
    await raw.open();
    await raw.del(metaKey('schemaVersion'));
    await raw.close();
    const progress: MigrationProgress[] = [];
    const store = await ctx.create({
      reuse: interrupted,
      migrationBatchSize: 7,
      onMigrationProgress: (p) => progress.push(p),
    });
    await store.open();
    expect(progress[0]).toMatchObject({ from: 1, to: 2, done: 14 });
    await expectMigrated(store, runs);
  });

  level('a run or task that cannot be read is skipped by the migration', async () => {
    let store = await ctx.open();
    await writeFormat1(store);
    const db = await rawDb(store);
    await db.put(`${PREFIX.runs}${SEP}v1-000`, new Uint8Array([0xc1]));
    await db.put(`${PREFIX.tasks}${SEP}v1-001${SEP}draft`, new Uint8Array([0xc1]));
    store = await ctx.reopen(store);
    expect(store.schemaVersion).toBe(CURRENT_SCHEMA_VERSION);
    const [dash, gpt] = await store.usage({ by: 'model' });
    expect(dash?.steps).toBe(RUNS - 1);
    expect(gpt?.steps).toBe(RUNS - 2);
  });
}
