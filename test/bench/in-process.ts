import { storePort } from '@cairn/store/engine';
import { createEngine } from '@cairn/core';
import { LevelStore, MemoryStore, usageOfStep, type Run } from '@cairn/store';
import {
  NO_SYNC,
  PAYLOAD,
  RawGroupCommit,
  SYNC,
  encodeRecord,
  openRaw,
  percentile,
  removeDir,
  tempDir,
  type Durability,
} from './harness.js';
import { approval, benchWorkflows, seq10 } from './workflows.js';

export interface Sizes {
  readonly workflows: number;
  readonly inFlight: number;
  readonly approvals: number;
}

const STEPS = 10;

/**
 * Cairn's store without its log: each batch straight to LevelDB, synced by LevelDB itself in
 * `strict` durability (the comparison the log must keep winning, docs/performance.md).
 */
class LevelDbOnlyStore extends LevelStore {
  protected override _logFiles(): null {
    return null;
  }
}

/** Which of Cairn's write paths a workload runs on. */
export type WritePathName = 'log' | 'leveldb';

function makeStore(dir: string, durability: Durability, path: WritePathName): LevelStore {
  return path === 'log'
    ? new LevelStore({ path: dir, durability })
    : new LevelDbOnlyStore({ path: dir, durability });
}

/** Raw W1: one put of a ~1 KB record per step, one after another. */
export async function rawSequential(sizes: Sizes, durability: Durability): Promise<number> {
  const dir = tempDir('raw');
  const db = await openRaw(dir);
  const options = durability === 'strict' ? SYNC : NO_SYNC;
  const start = performance.now();
  for (let w = 0; w < sizes.workflows; w++) {
    for (let s = 0; s < STEPS; s++)
      await db.put(`tasks\x00${w}\x00${s}`, encodeRecord({ ...PAYLOAD, w, s }), options);
  }
  const seconds = (performance.now() - start) / 1000;
  await db.close();
  removeDir(dir);
  return (sizes.workflows * STEPS) / seconds;
}

/** Raw W2: `inFlight` writers doing one put per step, coalesced by group commit. */
export async function rawConcurrent(sizes: Sizes, durability: Durability): Promise<number> {
  const dir = tempDir('raw');
  const db = await openRaw(dir);
  const commit = new RawGroupCommit(db, durability === 'strict' ? SYNC : NO_SYNC);
  let next = 0;
  const start = performance.now();
  await Promise.all(
    Array.from({ length: sizes.inFlight }, async () => {
      for (let w = next++; w < sizes.workflows; w = next++) {
        for (let s = 0; s < STEPS; s++)
          await commit.put(`tasks\x00${w}\x00${s}`, encodeRecord({ ...PAYLOAD, w, s }));
      }
    }),
  );
  const seconds = (performance.now() - start) / 1000;
  await db.close();
  removeDir(dir);
  return (sizes.workflows * STEPS) / seconds;
}

/**
 * W1 without the engine: the writes Cairn makes for a run (its creation, ten step results with
 * their usage, its end), made one after another by Cairn's store alone. The records are those
 * the engine wrote for one run of the same workflow; only the run id changes.
 */
export async function storeSequential(sizes: Sizes, durability: Durability): Promise<number> {
  const sample = new MemoryStore();
  const engine = await createEngine({ store: sample, workflows: benchWorkflows });
  const handle = await engine.start(seq10, { i: 0 });
  const created = (await sample.getRun(handle.id))!;
  await handle.result();
  const ended = (await sample.getRun(handle.id))!;
  const tasks = await sample.listTasks(handle.id);
  await engine.close();
  await sample.close();
  const dir = tempDir('store');
  const store = new LevelStore({ path: dir, durability });
  await store.open();
  const start = performance.now();
  for (let w = 0; w < sizes.workflows; w++) {
    const id = `${created.id.slice(0, 24)}${String(w).padStart(12, '0')}`;
    const run: Run = { ...created, id };
    await storePort(store).write({ runs: [run] }, { durable: true, created: true });
    for (const t of tasks) {
      const task = { ...t, runId: id };
      await storePort(store).write(
        { tasks: [task], usage: [usageOfStep(run, task)] },
        { durable: true },
      );
    }
    await storePort(store).write({ runs: [{ ...ended, id }] }, { durable: true });
  }
  const seconds = (performance.now() - start) / 1000;
  await store.close();
  removeDir(dir);
  return (sizes.workflows * tasks.length) / seconds;
}

/** Cairn W1 (inFlight 1) and W2: workflows of ten steps, `inFlight` at a time. */
export async function cairnSteps(
  sizes: Sizes,
  durability: Durability,
  inFlight: number,
  writePath: WritePathName = 'log',
): Promise<number> {
  const dir = tempDir('cairn');
  const store = makeStore(dir, durability, writePath);
  const engine = await createEngine({ store, workflows: benchWorkflows });
  let next = 0;
  const start = performance.now();
  await Promise.all(
    Array.from({ length: inFlight }, async () => {
      for (let w = next++; w < sizes.workflows; w = next++)
        await (await engine.start(seq10, { i: w })).result();
    }),
  );
  const seconds = (performance.now() - start) / 1000;
  await engine.close();
  await store.close();
  removeDir(dir);
  return (sizes.workflows * STEPS) / seconds;
}

/** The latency of one synced (or not) raw batch of a ~1 KB record, p50 in ms. */
export async function rawBatchLatency(count: number, durability: Durability): Promise<number> {
  const dir = tempDir('raw');
  const db = await openRaw(dir);
  const options = durability === 'strict' ? SYNC : NO_SYNC;
  const times: number[] = [];
  for (let i = 0; i < count; i++) {
    const t = performance.now();
    await db.batch(
      [{ type: 'put', key: `tasks\x00${i}\x00wait`, value: encodeRecord({ ...PAYLOAD, i }) }],
      options,
    );
    times.push(performance.now() - t);
  }
  await db.close();
  removeDir(dir);
  return percentile(times, 50);
}

export interface ResumeFigures {
  readonly p50: number;
  readonly p95: number;
  readonly perSecond: number;
}

/**
 * W3: runs paused at a wait (not in memory) are resumed one by one: the latency of each
 * resume, and resumes per second with each run carried on to its end.
 */
export async function cairnResume(
  sizes: Sizes,
  durability: Durability,
  writePath: WritePathName = 'log',
): Promise<ResumeFigures> {
  const dir = tempDir('cairn');
  const store = makeStore(dir, durability, writePath);
  const engine = await createEngine({ store, workflows: benchWorkflows });
  const ids: string[] = [];
  let paused = 0;
  const allPaused = new Promise<void>((resolve) =>
    engine.on('run:paused', () => {
      if (++paused === sizes.approvals) resolve();
    }),
  );
  for (let i = 0; i < sizes.approvals; i++) ids.push((await engine.start(approval, { i })).id);
  await allPaused;
  await new Promise((resolve) => setTimeout(resolve, 50));
  // Each resume is issued on an otherwise idle engine (the previous run has finished), so its
  // latency is the resume's own: load and replay the paused run, validate, checkpoint.
  const times: number[] = [];
  const start = performance.now();
  for (const id of ids) {
    const t = performance.now();
    await engine.resumeTask(id, 'approve', { ok: true, by: 'bench' });
    times.push(performance.now() - t);
    await engine.handle(id).result();
  }
  const seconds = (performance.now() - start) / 1000;
  await engine.close();
  await store.close();
  removeDir(dir);
  return {
    p50: percentile(times, 50),
    p95: percentile(times, 95),
    perSecond: sizes.approvals / seconds,
  };
}
