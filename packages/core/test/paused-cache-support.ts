/**
 * Shared by the tests of paused runs kept in memory (`keepPausedRuns`): workflows that count
 * what their functions and steps did, engines over a LevelStore (a temporary directory) or a
 * MemoryStore, and spies on the store reads that load a run's history.
 */
import { mkdtempSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LevelStore, MemoryStore, type Store } from '@cairn/store';
import { afterAll, afterEach, expect, vi, type MockInstance } from 'vitest';
import { z } from 'zod';
import {
  ManualClock,
  createEngine,
  workflow,
  type Engine,
  type EngineOptions,
} from '../src/index.js';

export const HOUR = 3_600_000;
export const Decision = z.object({ approved: z.boolean(), by: z.string() });

// --- what the workflow functions did, per run (keyed by their input's `key`) ---------------

const calls = new Map<string, Map<string, number>>();

export function bump(key: string, what: string): void {
  let counts = calls.get(key);
  if (!counts) calls.set(key, (counts = new Map<string, number>()));
  counts.set(what, (counts.get(what) ?? 0) + 1);
}

/** How many times `what` ran for the run with `key` (`body`: the workflow function itself). */
export function count(key: string, what: string): number {
  return calls.get(key)?.get(what) ?? 0;
}

// --- workflows -------------------------------------------------------------------------------

export const approval = workflow('approval', {
  input: z.object({ key: z.string() }),
  async run(ctx, { key }) {
    bump(key, 'body');
    const prepared = await ctx.step('prepare', () => {
      bump(key, 'prepare');
      return `prepared ${key}`;
    });
    const decision = await ctx.waitForInput('approval', { schema: Decision });
    const paid = await ctx.step('pay', () => {
      bump(key, 'pay');
      return decision.approved ? `paid ${key}` : `refused ${key}`;
    });
    return { prepared, by: decision.by, paid };
  },
});

export const twoApprovals = workflow('two-approvals', {
  input: z.object({ key: z.string() }),
  async run(ctx, { key }) {
    bump(key, 'body');
    const first = await ctx.waitForInput('first', { schema: Decision });
    await ctx.step('between', () => {
      bump(key, 'between');
      return 1;
    });
    const second = await ctx.waitForInput('second', { schema: Decision });
    await ctx.step('after', () => {
      bump(key, 'after');
      return 2;
    });
    return { first: first.by, second: second.by };
  },
});

export const parallelApprovals = workflow('parallel-approvals', {
  input: z.object({ key: z.string() }),
  async run(ctx, { key }) {
    bump(key, 'body');
    const [legal, finance] = await Promise.all([
      ctx.waitForInput('legal', { schema: Decision }),
      ctx.waitForInput('finance', { schema: Decision }),
    ]);
    await ctx.step('after', () => {
      bump(key, 'after');
      return 1;
    });
    return { legal: legal.by, finance: finance.by };
  },
});

export const deadline = workflow('deadline', {
  input: z.object({ key: z.string(), lenient: z.boolean() }),
  async run(ctx, { key, lenient }) {
    bump(key, 'body');
    await ctx.step('prepare', () => {
      bump(key, 'prepare');
      return 1;
    });
    const decision = await ctx.waitForInput('approval', {
      schema: Decision,
      timeout: '2h',
      onTimeout: lenient ? { default: { approved: false, by: 'deadline' } } : 'fail',
    });
    await ctx.step('after', () => {
      bump(key, 'after');
      return 2;
    });
    return decision.by;
  },
});

export const parent = workflow('parent', {
  input: z.object({ key: z.string() }),
  async run(ctx, { key }) {
    bump(key, 'parent');
    const sub = await ctx.child('sub', approval, { key: `${key}-child` });
    await ctx.step('after', () => {
      bump(key, 'after');
      return 1;
    });
    return sub.paid;
  },
});

export const workflows = [approval, twoApprovals, parallelApprovals, deadline, parent];

/**
 * Polls `check` until it holds. A LevelStore syncs every write to disk, which can take longer
 * than a few turns of the event loop, so after the first turns this yields to timers too.
 */
export async function until(
  check: () => boolean | Promise<boolean>,
  what = 'condition',
): Promise<void> {
  for (let i = 0; i < 3000; i++) {
    if (await check()) return;
    await new Promise<void>((resolve) =>
      i < 200 ? setImmediate(resolve) : setTimeout(resolve, 2),
    );
  }
  throw new Error(`Timed out waiting for ${what}`);
}

// --- engines and stores ----------------------------------------------------------------------

export type Backend = 'level' | 'memory';

/** The store reads that load a run's history; a parked run resumed needs none of them. */
export interface Reads {
  readonly listTasks: MockInstance<Store['listTasks']>;
  readonly listInbox: MockInstance<Store['listInbox']>;
  readonly getRun: MockInstance<Store['getRun']>;
}

export interface Setup {
  readonly engine: Engine;
  readonly store: Store;
  readonly clock: ManualClock;
  readonly reads: Reads;
}

const dirs: string[] = [];
const opened: { engine: Engine; store: Store }[] = [];

/** Registers the hooks that close what a test opened and forget what it counted. */
export function trackCleanup(): void {
  afterEach(async () => {
    for (const { engine, store } of opened.splice(0).reverse()) {
      await engine.close();
      await store.close();
    }
    vi.restoreAllMocks();
    calls.clear();
  });
  afterAll(async () => {
    for (const dir of dirs.splice(0))
      await rm(dir, { recursive: true, force: true, maxRetries: 3 });
  });
}

export function newStore(backend: Backend): Store {
  if (backend === 'memory') return new MemoryStore();
  const path = mkdtempSync(join(tmpdir(), 'cairn-paused-'));
  dirs.push(path);
  return new LevelStore({ path });
}

/** A new store over the data of a closed one (the same directory or memory database). */
export function sameData(store: Store): Store {
  if (store instanceof LevelStore) return new LevelStore({ path: store.location });
  return new MemoryStore({ db: (store as MemoryStore).memory });
}

export function spyReads(store: Store): Reads {
  return {
    listTasks: vi.spyOn(store, 'listTasks'),
    listInbox: vi.spyOn(store, 'listInbox'),
    getRun: vi.spyOn(store, 'getRun'),
  };
}

export async function openEngine(
  store: Store,
  options: Partial<Omit<EngineOptions, 'store' | 'clock'>> & { clock?: ManualClock } = {},
): Promise<Setup> {
  const clock = options.clock ?? new ManualClock();
  const engine = await createEngine({ workflows, ...options, clock, store });
  opened.push({ engine, store });
  return { engine, store, clock, reads: spyReads(store) };
}

export async function setup(
  backend: Backend,
  options: Partial<Omit<EngineOptions, 'store' | 'clock'>> = {},
): Promise<Setup> {
  return openEngine(newStore(backend), options);
}

/** Clears the recorded reads, so that what follows is counted alone. */
export function clearReads(s: Setup): void {
  s.reads.listTasks.mockClear();
  s.reads.listInbox.mockClear();
  s.reads.getRun.mockClear();
}

/** Reads of `runId`'s history (its tasks or its inbox) since `clearReads`. */
export function historyReads(s: Setup, runId: string): number {
  return (
    s.reads.listTasks.mock.calls.filter(([id]) => id === runId).length +
    s.reads.listInbox.mock.calls.filter(([id]) => id === runId).length
  );
}

/** Waits until the run is paused (at `taskId`, if given) and the engine runs nothing. */
export async function untilPaused(s: Setup, runId: string, taskId?: string): Promise<void> {
  await until(async () => {
    const run = await s.store.getRun(runId);
    if (run?.status !== 'paused' || run.pauseRequested) return false;
    if (taskId !== undefined && run.pausedTaskId !== taskId) return false;
    return s.engine.activeRuns === 0;
  }, `run ${runId} to pause`);
}

/** Starts `approval` for `key` and waits until it is paused at its wait. */
export async function pausedApproval(s: Setup, key: string): Promise<string> {
  const handle = await s.engine.start(approval, { key });
  await untilPaused(s, handle.id, 'approval');
  return handle.id;
}

/** Approves the run of `approval` for `key` as ada, and checks what the run returned. */
export async function approveAndFinish(s: Setup, runId: string, key: string): Promise<void> {
  await s.engine.resumeTask(runId, 'approval', { approved: true, by: 'ada' });
  await expect(s.engine.handle(runId).result()).resolves.toEqual({
    prepared: `prepared ${key}`,
    by: 'ada',
    paid: `paid ${key}`,
  });
}

/** `key`'s steps each ran once; its function's body ran `bodies` times (2: replayed once). */
export function expectStepsOnce(key: string, bodies: number): void {
  expect(count(key, 'body')).toBe(bodies);
  expect(count(key, 'prepare')).toBe(1);
  expect(count(key, 'pay')).toBe(1);
}

/** What the store holds of a run, as its public reads show it. */
export async function stored(store: Store, runId: string) {
  return {
    run: await store.getRun(runId),
    tasks: await store.listTasks(runId),
    inbox: await store.listInbox(runId),
    waiting: (await store.listWaiting({ runId })).items,
  };
}
