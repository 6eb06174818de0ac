import { mkdtempSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { LevelStore, MemoryStore, type Run, type RunFilter, type Store } from '@cairn/store';
import { makeLog, makeTask, makeWait } from '@cairn/store/suite';
import { expected, listAll, variedRuns, writeRuns } from '../src/suite/listing.js';

/**
 * The operations side at scale, on both backends: listings with combined filters paged over
 * thousands of runs, prune, and export → import → export.
 */

const RUNS = 2000;
const HOUR = 3_600_000;
const START = Date.UTC(2025, 2, 1);
const dirs: string[] = [];

afterAll(async () => {
  for (const dir of dirs.splice(0)) await rm(dir, { recursive: true, force: true, maxRetries: 3 });
});

const backends: [string, () => Store][] = [
  ['MemoryStore', () => new MemoryStore()],
  [
    'LevelStore',
    () => {
      const path = mkdtempSync(join(tmpdir(), 'cairn-scale-'));
      dirs.push(path);
      return new LevelStore({ path, durability: 'process' });
    },
  ],
];

/** Thousands of runs, each with two tasks (one a wait when paused) and a log line. */
async function populate(store: Store): Promise<Run[]> {
  const runs = variedRuns(RUNS, START).map((run) =>
    run.endedAt === null ? run : { ...run, endedAt: run.createdAt + HOUR / 2 },
  );
  await writeRuns(store, runs);
  for (let i = 0; i < runs.length; i += 500) {
    const tasks = runs.slice(i, i + 500).flatMap((run) => [
      makeTask(run, {
        taskId: 'draft',
        seq: 0,
        meta: { model: 'gpt-x', promptTokens: 3, completionTokens: 4 },
      }),
      run.status === 'paused'
        ? makeWait(run, { taskId: 'approve', seq: 1 })
        : makeTask(run, { taskId: 'send', seq: 1 }),
    ]);
    await store.checkpoint({ tasks });
    await store.appendLogs(runs.slice(i, i + 500).map((run) => makeLog(run.id)));
  }
  return runs;
}

async function exportAll(store: Store): Promise<string[]> {
  const lines: string[] = [];
  await store.exportRuns((line) => void lines.push(line));
  return lines;
}

describe('prune of a run with very many log lines', () => {
  it('deletes them all (they are not passed as one call’s arguments)', async () => {
    const store = new MemoryStore();
    await store.open();
    try {
      const run = { ...variedRuns(1, START)[0]!, status: 'completed' as const };
      const ended = { ...run, endedAt: run.createdAt + HOUR };
      await writeRuns(store, [ended]);
      const LINES = 200_000;
      for (let i = 0; i < LINES; i += 20_000) {
        await store.appendLogs(Array.from({ length: 20_000 }, () => makeLog(run.id)));
      }
      const result = await store.prune({ olderThan: ended.endedAt + 1 });
      expect(result).toMatchObject({ runs: 1, logs: LINES });
      expect(await store.readLogs(run.id, { limit: 1 })).toEqual([]);
    } finally {
      await store.close();
    }
  }, 120_000);
});

describe.each(backends)('%s at scale', (_name, make) => {
  it(`pages through ${RUNS} runs with combined filters`, async () => {
    const store = make();
    await store.open();
    try {
      const runs = await populate(store);
      const filters: RunFilter[] = [
        {},
        { status: 'completed' },
        { namespace: 'ns-2', status: 'failed', tags: ['vip'] },
        { workflow: 'wf-1', since: START + 200 * HOUR, until: START + 800 * HOUR },
        { tags: ['urgent', 'beta'], namespace: 'ns-1' },
        { namespace: 'ns-3', since: START + 700 * HOUR },
        { status: 'paused', workflow: 'wf-2', tags: ['eu'], until: START + 600 * HOUR },
      ];
      for (const filter of filters) {
        const want = expected(runs, filter);
        expect(want.length).toBeGreaterThan(0);
        expect(await listAll(store, filter, 97)).toEqual(want);
      }
    } finally {
      await store.close();
    }
  });

  it(`prunes ${RUNS} runs by age, keeping the newest, and export → import → export is byte-identical`, async () => {
    const source = make();
    const target = make();
    await source.open();
    await target.open();
    try {
      const runs = await populate(source);
      const lines = await exportAll(source);
      expect(lines).toHaveLength(RUNS + 1);
      expect(await target.importRuns(lines)).toMatchObject({
        runs: RUNS,
        tasks: 2 * RUNS,
        logs: RUNS,
      });
      expect(await exportAll(target)).toEqual(lines);
      // Imported steps count for usage (the source's were written without usage deltas).
      const usage = await target.usage({ by: 'model' });
      expect(usage.map((r) => [r.key, r.steps])).toEqual([
        // Every run has a second step but the paused ones (a wait).
        ['-', runs.filter((r) => r.status !== 'paused').length],
        ['gpt-x', RUNS],
      ]);

      const cutoff = START + 600 * HOUR;
      const terminal = runs.filter((r) => r.endedAt !== null);
      const old = terminal.filter((r) => r.endedAt! < cutoff);
      const result = await target.prune({ olderThan: cutoff, keep: 10 });
      expect(result.runs).toBe(old.length);
      expect(result.tasks).toBe(2 * old.length);
      expect(result.logs).toBe(old.length);
      const left = await listAll(target, {}, 1000);
      expect(left).toHaveLength(RUNS - old.length);
      const oldIds = new Set(old.map((r) => r.id));
      expect(left.some((id) => oldIds.has(id))).toBe(false);
      expect((await target.verify()).ok).toBe(true);
      // Usage is history: pruning keeps it.
      expect(await target.usage({ by: 'model' })).toEqual(usage);
    } finally {
      await source.close();
      await target.close();
    }
  });
});
