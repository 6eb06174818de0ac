/**
 * Paused runs kept in memory, changed behind the engine: by another engine over the same
 * memory store, or through the store itself. A kept execution must never be used once the
 * run it was kept for has changed; the engine then loads the run as it is stored.
 */
import { MemoryStore } from '@cairn/store';
import { describe, expect, it } from 'vitest';
import {
  approveAndFinish,
  clearReads,
  expectStepsOnce,
  count,
  historyReads,
  openEngine,
  parallelApprovals,
  pausedApproval,
  setup,
  trackCleanup,
  twoApprovals,
  until,
  untilPaused,
  type Setup,
} from './paused-cache-support.js';
import { rejectsWithCode } from './support.js';

trackCleanup();

describe('a parked run changed behind the engine', () => {
  it('two engines over one memory store: the one that kept the run does not resume it again', async () => {
    const store = new MemoryStore();
    const a = await openEngine(store);
    const b = await openEngine(store, { clock: a.clock, recover: false });
    const runId = await pausedApproval(a, 's');

    await b.engine.resumeTask(runId, 'approval', { approved: true, by: 'bee' });
    await expect(b.engine.handle(runId).result()).resolves.toMatchObject({ by: 'bee' });
    await rejectsWithCode(
      a.engine.resumeTask(runId, 'approval', { approved: false, by: 'ay' }),
      'NOT_WAITING',
    );
    await expect(a.engine.handle(runId).result()).resolves.toEqual({
      prepared: 'prepared s',
      by: 'bee',
      paid: 'paid s',
    });
    expect(await store.getTask(runId, 'approval')).toMatchObject({
      output: { approved: true, by: 'bee' },
    });
    expect(count('s', 'prepare')).toBe(1);
    expect(count('s', 'pay')).toBe(1);
    expect(a.engine.activeRuns).toBe(0);
  });

  it('two engines over one memory store: a run paused again elsewhere is loaded afresh', async () => {
    const store = new MemoryStore();
    const a = await openEngine(store);
    const b = await openEngine(store, { clock: a.clock, recover: false });
    const handle = await a.engine.start(twoApprovals, { key: 'm' });
    await untilPaused(a, handle.id, 'first');

    await b.engine.resumeTask(handle.id, 'first', { approved: true, by: 'bee' });
    await untilPaused(b, handle.id, 'second');
    // Engine a still keeps the run as it was at `first`: it must not answer `first` again.
    await rejectsWithCode(
      a.engine.resumeTask(handle.id, 'first', { approved: false, by: 'ay' }),
      'NOT_WAITING',
    );
    await a.engine.resumeTask(handle.id, 'second', { approved: true, by: 'ay' });
    await expect(a.engine.handle(handle.id).result()).resolves.toEqual({
      first: 'bee',
      second: 'ay',
    });
    expect(count('m', 'between')).toBe(1);
    expect(count('m', 'after')).toBe(1);
  });

  it('a run record written through the store: the kept execution is dropped, the run loaded', async () => {
    const s = await setup('level');
    const runId = await pausedApproval(s, 'u');
    const run = (await s.store.getRun(runId))!;
    await s.store.checkpoint({ runs: [{ ...run, updatedAt: run.updatedAt + 1 }] });

    clearReads(s);
    await approveAndFinish(s, runId, 'u');
    expect(historyReads(s, runId)).toBeGreaterThan(0);
    expectStepsOnce('u', 2);
  });

  it('a run deleted through the store is NOT_FOUND, and never continues', async () => {
    const s = await setup('level');
    const runId = await pausedApproval(s, 'd');
    expect(await s.store.deleteRun(runId)).toBe(true);

    await rejectsWithCode(
      s.engine.resumeTask(runId, 'approval', { approved: true, by: 'ada' }),
      'NOT_FOUND',
    );
    await rejectsWithCode(s.engine.resume(runId, { approved: true, by: 'ada' }), 'NOT_FOUND');
    await rejectsWithCode(s.engine.pause(runId), 'NOT_FOUND');
    await rejectsWithCode(s.engine.cancel(runId), 'NOT_FOUND');
    expect(await s.store.getRun(runId)).toBeUndefined();
    expect(await s.store.listTasks(runId)).toEqual([]);
    expect(count('d', 'pay')).toBe(0);
  });
});

type Register = (title: string, fn: () => Promise<void>) => void;

/**
 * Writes that leave the run record as it was: the input kept for a later wait, a wait answered
 * elsewhere. Without keeping paused runs (`keepPausedRuns: 0`) the engine reads them with the
 * history; a kept execution must not be used over them.
 */
function staleScenarios(register: Register, keepPausedRuns: number | undefined): void {
  const options = keepPausedRuns === undefined ? {} : { keepPausedRuns };

  /** Waits until the run has ended or is paused with nothing in memory; returns its status. */
  async function settled(s: Setup, runId: string): Promise<string | undefined> {
    await until(async () => {
      const run = await s.store.getRun(runId);
      return run?.status === 'completed' || (run?.status === 'paused' && s.engine.activeRuns === 0);
    }, `run ${runId} to settle`);
    return (await s.store.getRun(runId))?.status;
  }

  register('input put in the inbox through the store answers the later wait', async () => {
    const s = await setup('level', options);
    const handle = await s.engine.start(twoApprovals, { key: 'k1' });
    await untilPaused(s, handle.id, 'first');
    await s.store.putInbox(handle.id, 'second', { approved: true, by: 'early' });

    await s.engine.resumeTask(handle.id, 'first', { approved: true, by: 'ada' });
    await until(() => count('k1', 'between') === 1, 'the run to go on');
    expect(await settled(s, handle.id)).toBe('completed');
    await expect(handle.result()).resolves.toEqual({ first: 'ada', second: 'early' });
  });

  register('a wait completed through the store is not answered a second time', async () => {
    const s = await setup('level', options);
    const handle = await s.engine.start(parallelApprovals, { key: 'k2' });
    await untilPaused(s, handle.id, 'legal');
    const finance = (await s.store.getTask(handle.id, 'finance'))!;
    const now = s.clock.now();
    await s.store.checkpoint({
      tasks: [
        {
          ...finance,
          status: 'completed',
          output: { approved: true, by: 'tool' },
          resumedBy: 'tool',
          endedAt: now,
          durationMs: now - finance.startedAt,
        },
      ],
    });

    await rejectsWithCode(
      s.engine.resumeTask(handle.id, 'finance', { approved: false, by: 'again' }),
      'NOT_WAITING',
    );
    expect(await s.store.getTask(handle.id, 'finance')).toMatchObject({
      output: { approved: true, by: 'tool' },
    });
  });

  register(
    'two engines over one memory store: input kept by one is used by the other',
    async () => {
      const store = new MemoryStore();
      const a = await openEngine(store, options);
      const b = await openEngine(store, { ...options, clock: a.clock, recover: false });
      const handle = await a.engine.start(twoApprovals, { key: 'k3' });
      await untilPaused(a, handle.id, 'first');
      const kept = await b.engine.resumeTask(
        handle.id,
        'second',
        { approved: true, by: 'bee' },
        { keep: true },
      );
      expect(kept.status).toBe('kept');

      await a.engine.resumeTask(handle.id, 'first', { approved: true, by: 'ay' });
      await until(() => count('k3', 'between') === 1, 'the run to go on');
      expect(await settled(a, handle.id)).toBe('completed');
      await expect(handle.result()).resolves.toEqual({ first: 'ay', second: 'bee' });
    },
  );

  // The run record engine b writes is the one engine a kept: the same status, pausedTaskId
  // and (the clock has not moved) updatedAt.
  register(
    'two engines over one memory store: a wait answered by one is not answered again by the other',
    async () => {
      const store = new MemoryStore();
      const a = await openEngine(store, options);
      const b = await openEngine(store, { ...options, clock: a.clock, recover: false });
      const handle = await a.engine.start(parallelApprovals, { key: 'k4' });
      await untilPaused(a, handle.id, 'legal');
      await b.engine.resumeTask(handle.id, 'finance', { approved: true, by: 'bee' });
      await untilPaused(b, handle.id, 'legal');

      await rejectsWithCode(
        a.engine.resumeTask(handle.id, 'finance', { approved: false, by: 'ay' }),
        'NOT_WAITING',
      );
      expect(await store.getTask(handle.id, 'finance')).toMatchObject({
        output: { approved: true, by: 'bee' },
      });
    },
  );
}

describe('writes that leave the run record as it was (keepPausedRuns: 0)', () => {
  staleScenarios((title, fn) => it(title, fn), 0);
});

/**
 * The same writes while the run is kept in memory: the store knows the run was written (a
 * LevelStore follows every write that names it), so the kept execution is dropped and the run
 * is read again; a memory store, which cannot know, keeps no paused run at all.
 */
describe('writes that leave the run record as it was (paused runs kept in memory)', () => {
  staleScenarios((title, fn) => it(title, fn), undefined);
});
