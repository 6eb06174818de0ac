import { isDeepStrictEqual } from 'node:util';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, describe, expect, it } from 'vitest';
import { LevelStore, RUN_STATUSES, type Durability, type Run, type Task } from '@cairn/store';
import { Child } from './helpers/child.js';
import { LAST_STAGE, stageState } from './helpers/lifecycle.js';
import { seededRandom, testSeed } from './helpers/random.js';
import { tempDir } from './helpers/temp.js';

/**
 * Crash atomicity with real processes: a child writes checkpoints as fast as it can
 * (durability 'strict', then 'process') and is killed with SIGKILL at a random moment, again and again on
 * the same directory. After every kill the store must be consistent (every index entry and
 * timer has its record and every record its entries), every run must be exactly in one of
 * the states its checkpoints define (run and tasks from the same checkpoint: nothing torn),
 * and every checkpoint the child saw resolve must be there, or a later one.
 */

const CYCLES = 18;
const seed = testSeed();
const random = seededRandom(seed);
const dirs: Array<() => Promise<void>> = [];

afterAll(async () => {
  for (const cleanup of dirs) await cleanup();
});

/** JSON form: optional fields left out and fields set to undefined compare equal. */
const plain = (value: unknown): unknown => JSON.parse(JSON.stringify(value));

/** Which stage of its lifecycle a stored run and its tasks are at, or -1 if none matches. */
function stageOf(run: Run, tasks: Task[]): number {
  const stored = plain({ run, tasks });
  for (let stage = 0; stage <= LAST_STAGE; stage++) {
    if (isDeepStrictEqual(stored, plain(stageState(run.id, run.createdAt, stage)))) return stage;
  }
  return -1;
}

async function allRuns(store: LevelStore, status?: Run['status']): Promise<Run[]> {
  const runs: Run[] = [];
  let cursor: string | null = null;
  do {
    const page = await store.listRuns({ limit: 1000, cursor, ...(status ? { status } : {}) });
    expect(page.corrupt).toEqual([]);
    runs.push(...page.items);
    cursor = page.cursor;
  } while (cursor !== null);
  return runs;
}

/**
 * Kills a child writing with `durability` CYCLES times on one directory, checking the store
 * after every kill.
 */
async function crashCycles(durability: Durability): Promise<void> {
  const { path, cleanup } = await tempDir(`crash-${durability}`);
  dirs.push(cleanup);
  /** The highest stage acknowledged for each run, over all cycles. */
  const acked = new Map<string, number>();
  let ackedTotal = 0;

  for (let cycle = 0; cycle < CYCLES; cycle++) {
    const child = new Child('checkpoint-writer.ts', [path, '8', durability]);
    await child.waitForLine((line) => line === 'ready');
    await sleep(Math.floor(random() * 300));
    const exit = await child.kill();
    expect(exit.signal, child.stderr).toBe('SIGKILL');

    for (const line of child.lines) {
      const [word, runId, , stage] = line.split(' ');
      if (word !== 'ack') continue;
      ackedTotal++;
      acked.set(runId!, Math.max(acked.get(runId!) ?? -1, Number(stage)));
    }

    // Reopened as the application would: with the durability it was written with.
    const store = new LevelStore({ path, durability });
    await store.open();
    try {
      const report = await store.verify();
      expect(report.problems, `cycle ${cycle}`).toEqual([]);
      expect(report.ok).toBe(true);

      const runs = await allRuns(store);
      expect(runs).toHaveLength(report.runs);
      const stages = new Map<string, number>();
      for (const run of runs) {
        const stage = stageOf(run, await store.listTasks(run.id));
        expect(stage, `cycle ${cycle}: run ${run.id} is in no checkpointed state`).not.toBe(-1);
        stages.set(run.id, stage);
      }
      for (const [runId, stage] of acked) {
        const stored = stages.get(runId);
        expect(stored, `cycle ${cycle}: acknowledged run ${runId} is missing`).toBeDefined();
        expect(stored!, `cycle ${cycle}: run ${runId}`).toBeGreaterThanOrEqual(stage);
      }

      // The indexes agree with the records, seen through the public listings.
      const byStage = (wanted: readonly number[]): string[] =>
        [...stages].filter(([, s]) => wanted.includes(s)).map(([id]) => id);
      for (const status of RUN_STATUSES) {
        const ids = (await allRuns(store, status)).map((run) => run.id);
        expect(ids.sort()).toEqual(
          runs
            .filter((run) => run.status === status)
            .map((run) => run.id)
            .sort(),
        );
      }
      const waiting = await store.listWaiting({ limit: 1000 });
      const paused = byStage([2]);
      expect(waiting.items.map((task) => task.runId).sort()).toEqual(paused.sort());
      const timers = await store.dueTimers(Number.MAX_SAFE_INTEGER);
      expect(timers.map((timer) => timer.runId).sort()).toEqual(byStage([2, 3]).sort());
    } finally {
      await store.close();
    }
  }

  // The kills landed while work was going on, and runs made it all the way through.
  expect(ackedTotal).toBeGreaterThan(CYCLES * 10);
  expect([...acked.values()].filter((stage) => stage === LAST_STAGE).length).toBeGreaterThan(0);
}

describe('LevelStore under SIGKILL', () => {
  for (const durability of ['strict', 'process'] as const) {
    it(`keeps every acknowledged checkpoint and never tears one, durability ${durability} (seed ${seed})`, async () => {
      await crashCycles(durability);
    });
  }
});
