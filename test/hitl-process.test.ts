import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { createEngine, LevelStore, type Engine, type EngineEvents } from '@cairn/core';
import { uuidv7 } from '@cairn/store';
import { Child } from './helpers/child.js';
import { hitlWorkflows } from './helpers/hitl-workflows.js';
import { tempDir } from './helpers/temp.js';
import { until } from './helpers/until.js';

/**
 * Human-in-the-loop across real processes: a run paused at a wait (or by an operator) in
 * one process, which exits or is SIGKILLed, is found, resumed and finished by the next.
 */

const cleanups: (() => Promise<void>)[] = [];
const children: Child[] = [];
let open: { engine: Engine; store: LevelStore } | null = null;

afterEach(async () => {
  if (open) {
    await open.engine.close();
    await open.store.close();
    open = null;
  }
  for (const child of children.splice(0)) await child.kill();
});
afterAll(async () => {
  for (const cleanup of cleanups) await cleanup();
});

async function storeDir(): Promise<string> {
  const { path, cleanup } = await tempDir('hitl');
  cleanups.push(cleanup);
  return path;
}

function spawn(args: string[]): Child {
  const child = new Child('hitl-engine.ts', args);
  children.push(child);
  return child;
}

/** Opens the store in this process; recovery runs inside `createEngine`. */
async function takeOver(
  path: string,
): Promise<{ engine: Engine; store: LevelStore; recovered: EngineEvents['run:recovered'][] }> {
  const store = new LevelStore({ path });
  const recovered: EngineEvents['run:recovered'][] = [];
  const engine = await createEngine({
    store,
    workflows: hitlWorkflows,
    on: { 'run:recovered': (e) => recovered.push(e) },
  });
  open = { engine, store };
  return { engine, store, recovered };
}

const pidOf = (child: Child): number => child.process.pid!;

describe('human in the loop across processes', () => {
  it('a run paused in a process that exits is listed and resumed by the next process', async () => {
    const path = await storeDir();
    const runId = uuidv7();
    const first = spawn(['wait', path, runId]);
    await first.waitForLine((l) => l === `paused ${runId} approval`);
    expect(await first.exited, first.stderr).toEqual({ code: 0, signal: null });

    const second = spawn(['resume', path]);
    const waitingLine = await second.waitForLine((l) => l.startsWith('waiting '));
    const waiting = JSON.parse(waitingLine.slice('waiting '.length)) as unknown[];
    expect(waiting).toEqual([
      expect.objectContaining({ runId, taskId: 'approval', workflow: 'expense' }),
    ]);
    const doneLine = await second.waitForLine((l) => l.startsWith('done '));
    expect(await second.exited, second.stderr).toEqual({ code: 0, signal: null });
    expect(JSON.parse(doneLine.slice('done '.length))).toEqual({
      status: 'paid',
      by: 'child',
      // `score` ran in the first process only; `pay` in the second.
      risk: { high: true, attempt: 1, pid: pidOf(first) },
      paid: { key: `${runId}:pay`, pid: pidOf(second) },
    });

    const { engine, store } = await takeOver(path);
    expect(await engine.get(runId)).toMatchObject({
      status: 'completed',
      isPaused: false,
      recoveries: 0,
    });
    expect(await store.getTask(runId, 'approval')).toMatchObject({
      status: 'completed',
      resumedBy: 'resume-child',
    });
    expect((await store.verify()).ok).toBe(true);
  });

  it('a run whose process was SIGKILLed right after it paused is resumed by the next', async () => {
    const path = await storeDir();
    const runId = uuidv7();
    const first = spawn(['wait-hold', path, runId]);
    await first.waitForLine((l) => l === `paused ${runId} approval`);
    expect(await first.kill()).toMatchObject({ signal: 'SIGKILL' });

    const { engine, store, recovered } = await takeOver(path);
    // Paused runs are not recovered into memory.
    expect(recovered).toEqual([]);
    expect(engine.activeRuns).toBe(0);
    expect(await engine.get(runId)).toMatchObject({
      status: 'paused',
      isPaused: true,
      pausedTaskId: 'approval',
    });
    const waiting = await engine.listWaiting();
    expect(waiting.items.map((w) => [w.runId, w.taskId])).toEqual([[runId, 'approval']]);

    await expect(engine.resumeTask(runId, 'approval', { approved: 'yes' })).rejects.toMatchObject({
      code: 'INVALID_RESUME_INPUT',
    });
    await engine.resumeTask(runId, 'approval', { approved: true, by: 'ann' });
    await expect(engine.handle(runId).result()).resolves.toEqual({
      status: 'paid',
      by: 'ann',
      risk: { high: true, attempt: 1, pid: pidOf(first) },
      paid: { key: `${runId}:pay`, pid: process.pid },
    });
    expect((await store.verify()).ok).toBe(true);
  });

  it('a run SIGKILLed in a step before its wait is recovered, reaches the wait and is resumed', async () => {
    const path = await storeDir();
    const runId = uuidv7();
    const first = spawn(['hang', path, runId]);
    await first.waitForLine((l) => l === `in-step ${runId}`);
    expect(await first.kill()).toMatchObject({ signal: 'SIGKILL' });

    const { engine, store, recovered } = await takeOver(path);
    expect(recovered).toEqual([{ runId, workflow: 'expense', recoveries: 1 }]);
    await until(
      async () => (await store.getRun(runId))?.status === 'paused' && engine.activeRuns === 0,
      'the recovered run to pause at its wait',
    );
    expect(await engine.get(runId)).toMatchObject({ pausedTaskId: 'approval', recoveries: 1 });
    // The step ran again here, as its second attempt.
    expect(await store.getTask(runId, 'score')).toMatchObject({
      status: 'completed',
      attempt: 2,
      output: { high: true, attempt: 2, pid: process.pid },
    });

    await engine.resumeTask(runId, 'approval', { approved: false, by: 'bob' });
    await expect(engine.handle(runId).result()).resolves.toEqual({
      status: 'rejected',
      by: 'bob',
      risk: { high: true, attempt: 2, pid: process.pid },
    });
    expect((await store.verify()).ok).toBe(true);
  });

  it('an operator pause outlives its process; the next process resumes the run', async () => {
    const path = await storeDir();
    const runId = uuidv7();
    const first = spawn(['pause', path, runId]);
    await first.waitForLine((l) => l === `paused ${runId} b`);
    expect(await first.exited, first.stderr).toEqual({ code: 0, signal: null });

    const { engine, store, recovered } = await takeOver(path);
    expect(recovered).toEqual([]);
    // Recovery is over once createEngine resolved: the paused run is not loaded, now or later.
    for (let i = 0; i < 20; i++) await new Promise((resolve) => setImmediate(resolve));
    expect(engine.activeRuns).toBe(0);
    expect(await engine.get(runId)).toMatchObject({
      status: 'paused',
      isPaused: true,
      pausedTaskId: 'b',
      pauseRequested: true,
    });
    // `a` finished and was checkpointed before the pause; `b` never started.
    expect((await store.listTasks(runId)).map((t) => [t.taskId, t.status])).toEqual([
      ['a', 'completed'],
    ]);

    await engine.resume(runId);
    await expect(engine.handle(runId).result()).resolves.toEqual({
      a: { value: 4, pid: pidOf(first) },
      b: { value: 40, pid: process.pid },
      c: { value: 44, pid: process.pid },
    });
    expect((await store.verify()).ok).toBe(true);
  });

  it('a pause asked for while a step ran, then SIGKILL: the next process pauses the run, resume finishes it', async () => {
    const path = await storeDir();
    const runId = uuidv7();
    const first = spawn(['pause-hold', path, runId]);
    await first.waitForLine((l) => l === `pause-asked ${runId}`);
    expect(await first.kill()).toMatchObject({ signal: 'SIGKILL' });

    const { engine, store } = await takeOver(path);
    // The pause was durable: recovery does not start the interrupted step again.
    await until(
      async () => (await store.getRun(runId))?.status === 'paused' && engine.activeRuns === 0,
      'the recovered run to pause',
    );
    expect(await engine.get(runId)).toMatchObject({
      isPaused: true,
      pausedTaskId: 'a',
      pauseRequested: true,
    });
    expect(await store.getTask(runId, 'a')).toMatchObject({ status: 'running', attempt: 1 });

    await engine.resume(runId);
    await expect(engine.handle(runId).result()).resolves.toEqual({
      a: { value: 4, pid: process.pid },
      b: { value: 40, pid: process.pid },
      c: { value: 44, pid: process.pid },
    });
    expect(await store.getTask(runId, 'a')).toMatchObject({ status: 'completed', attempt: 2 });
    expect((await store.verify()).ok).toBe(true);
  });
});
