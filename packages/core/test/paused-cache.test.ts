/**
 * Paused runs kept in memory (`keepPausedRuns`): a run that pauses because every branch waits
 * for input stays in memory ("parked"), and resuming it needs no read of its history and no
 * replay. Parked runs are bounded (the least recently paused leave first), dropped by an
 * operator pause or a cancel. Runs changed behind the engine: paused-cache-stale.test.ts.
 */
import { MemoryStore } from '@cairn/store';
import { describe, expect, it } from 'vitest';
import { createEngine } from '../src/index.js';
import {
  HOUR,
  approveAndFinish,
  expectStepsOnce,
  clearReads,
  count,
  deadline,
  historyReads,
  openEngine,
  parallelApprovals,
  parent,
  pausedApproval,
  sameData,
  setup,
  stored,
  trackCleanup,
  twoApprovals,
  until,
  untilPaused,
  workflows,
  type Backend,
} from './paused-cache-support.js';
import { rejectsWithCode } from './support.js';

trackCleanup();

describe('keepPausedRuns option', () => {
  it.each([-1, 1.5, '3', Number.NaN, Infinity, -Infinity])(
    'refuses %s with INVALID_ARGUMENT',
    async (value) => {
      const store = new MemoryStore();
      await rejectsWithCode(
        createEngine({ workflows, store, keepPausedRuns: value as number }),
        'INVALID_ARGUMENT',
      );
      // Refused before the store was touched.
      expect(store.status).toBe('closed');
    },
  );

  it.each([0, 5])('accepts %s, and runs still pause and resume', async (keepPausedRuns) => {
    const s = await setup('level', { keepPausedRuns });
    const runId = await pausedApproval(s, 'k');
    await approveAndFinish(s, runId, 'k');
    expect(count('k', 'body')).toBe(keepPausedRuns === 0 ? 2 : 1);
  });
});

describe('a store that cannot know of every write keeps no paused run', () => {
  it('a memory store (its database may be shared) loads and replays every resume', async () => {
    const s = await setup('memory');
    const runId = await pausedApproval(s, 'm');
    clearReads(s);
    await approveAndFinish(s, runId, 'm');
    expect(historyReads(s, runId)).toBeGreaterThan(0);
    expectStepsOnce('m', 2);
  });
});

describe('paused runs kept in memory (LevelStore)', () => {
  const backend: Backend = 'level';

  it('a parked run resumed with resumeTask finishes without reading its history or replaying', async () => {
    const s = await setup(backend);
    const runId = await pausedApproval(s, 'a');
    expect(s.engine.activeRuns).toBe(0);
    expect(count('a', 'body')).toBe(1);
    expect(count('a', 'prepare')).toBe(1);

    clearReads(s);
    const result = await s.engine.resumeTask(runId, 'approval', { approved: true, by: 'ada' });
    expect(result).toEqual({ status: 'resumed', runId, taskId: 'approval' });
    // A LevelStore is the only writer of its data, so it knows the run was not written:
    // not even the run record is read.
    expect(s.reads.getRun).not.toHaveBeenCalled();
    await expect(s.engine.handle(runId).result()).resolves.toEqual({
      prepared: 'prepared a',
      by: 'ada',
      paid: 'paid a',
    });
    expect(historyReads(s, runId)).toBe(0);
    expect(count('a', 'body')).toBe(1);
    expect(count('a', 'prepare')).toBe(1);
    expect(count('a', 'pay')).toBe(1);
    expect((await s.store.listTasks(runId)).map((t) => [t.taskId, t.status])).toEqual([
      ['prepare', 'completed'],
      ['approval', 'completed'],
      ['pay', 'completed'],
    ]);
    expect((await s.store.verify()).ok).toBe(true);
  });

  it('keepPausedRuns: 0 reads the history and replays it; steps done do not run again', async () => {
    const s = await setup(backend, { keepPausedRuns: 0 });
    const runId = await pausedApproval(s, 'z');
    clearReads(s);
    await s.engine.resumeTask(runId, 'approval', { approved: false, by: 'bob' });
    await expect(s.engine.handle(runId).result()).resolves.toEqual({
      prepared: 'prepared z',
      by: 'bob',
      paid: 'refused z',
    });
    expect(s.reads.listTasks.mock.calls.filter(([id]) => id === runId).length).toBeGreaterThan(0);
    expect(count('z', 'body')).toBe(2);
    expect(count('z', 'prepare')).toBe(1);
    expect(count('z', 'pay')).toBe(1);
  });

  it('keeps at most keepPausedRuns; the least recently paused are loaded again', async () => {
    const s = await setup(backend, { keepPausedRuns: 2 });
    const ids: string[] = [];
    // One at a time, so that they pause in this order: r0 and r1 leave memory.
    for (const key of ['r0', 'r1', 'r2', 'r3']) ids.push(await pausedApproval(s, key));
    const loaded: Record<string, boolean> = {};
    for (const i of [3, 0, 2, 1]) {
      clearReads(s);
      const key = `r${i}`;
      await s.engine.resumeTask(ids[i]!, 'approval', { approved: i % 2 === 0, by: key });
      await expect(s.engine.handle(ids[i]!).result()).resolves.toEqual({
        prepared: `prepared ${key}`,
        by: key,
        paid: i % 2 === 0 ? `paid ${key}` : `refused ${key}`,
      });
      loaded[key] = historyReads(s, ids[i]!) > 0;
    }
    expect(loaded).toEqual({ r3: false, r0: true, r2: false, r1: true });
    for (const key of ['r0', 'r1', 'r2', 'r3']) {
      expect(count(key, 'prepare')).toBe(1);
      expect(count(key, 'pay')).toBe(1);
      // Replayed once where it was loaded again.
      expect(count(key, 'body')).toBe(loaded[key] ? 2 : 1);
    }
    expect(s.engine.activeRuns).toBe(0);
  });

  it('a run paused again becomes the most recently paused', async () => {
    const s = await setup(backend, { keepPausedRuns: 2 });
    const start = async (key: string): Promise<string> => {
      const handle = await s.engine.start(twoApprovals, { key });
      await untilPaused(s, handle.id, 'first');
      return handle.id;
    };
    const r0 = await start('r0');
    const r1 = await start('r1');
    // r0 is taken out of memory for the input and put back: r1 is now the oldest.
    const early = { approved: true, by: 'early' };
    expect(await s.engine.resumeTask(r0, 'second', early, { keep: true })).toMatchObject({
      status: 'kept',
    });
    await untilPaused(s, r0, 'first');
    const r2 = await start('r2');

    const resumeFirst = async (runId: string, key: string): Promise<boolean> => {
      clearReads(s);
      await s.engine.resumeTask(runId, 'first', { approved: true, by: key });
      await until(async () => count(key, 'between') === 1, `${key} to go on`);
      return historyReads(s, runId) > 0;
    };
    expect(await resumeFirst(r0, 'r0')).toBe(false);
    expect(await resumeFirst(r1, 'r1')).toBe(true);
    expect(await resumeFirst(r2, 'r2')).toBe(false);
    await expect(s.engine.handle(r0).result()).resolves.toEqual({ first: 'r0', second: 'early' });
    for (const [runId, key] of [
      [r1, 'r1'],
      [r2, 'r2'],
    ] as const) {
      await untilPaused(s, runId, 'second');
      await s.engine.resumeTask(runId, 'second', { approved: true, by: 'late' });
      await expect(s.engine.handle(runId).result()).resolves.toEqual({
        first: key,
        second: 'late',
      });
    }
    for (const key of ['r0', 'r1', 'r2']) {
      expect(count(key, 'between')).toBe(1);
      expect(count(key, 'after')).toBe(1);
    }
  });

  it('two resumes of a parked wait at once: exactly one wins', async () => {
    const s = await setup(backend);
    const runId = await pausedApproval(s, 'q');
    const outcomes = await Promise.allSettled([
      s.engine.resumeTask(runId, 'approval', { approved: true, by: 'one' }),
      s.engine.resumeTask(runId, 'approval', { approved: false, by: 'two' }),
    ]);
    expect(outcomes.map((o) => o.status).sort()).toEqual(['fulfilled', 'rejected']);
    const lost = outcomes.find((o) => o.status === 'rejected')!;
    expect((lost.reason as { code?: string }).code).toBe('NOT_WAITING');
    const output = await s.engine.handle<{ by: string }>(runId).result();
    expect(output.by).toBe('one');
    expect(count('q', 'pay')).toBe(1);
    expect(await s.store.getTask(runId, 'approval')).toMatchObject({
      output: { approved: true, by: 'one' },
    });
  });

  it('an invalid payload is INVALID_RESUME_INPUT, changes nothing, and the run stays kept', async () => {
    const s = await setup(backend);
    const runId = await pausedApproval(s, 'i');
    const before = await stored(s.store, runId);

    const error = await rejectsWithCode(
      s.engine.resumeTask(runId, 'approval', { approved: 'yes', by: 'ada' }),
      'INVALID_RESUME_INPUT',
    );
    expect((error as { details?: { issues?: unknown } }).details?.issues).toBeDefined();
    await untilPaused(s, runId, 'approval');
    expect(await stored(s.store, runId)).toEqual(before);
    expect(before.run).toMatchObject({ status: 'paused', pausedTaskId: 'approval' });
    expect(count('i', 'pay')).toBe(0);

    clearReads(s);
    await s.engine.resumeTask(runId, 'approval', { approved: true, by: 'ada' });
    await expect(s.engine.handle(runId).result()).resolves.toMatchObject({ paid: 'paid i' });
    // Still the execution kept in memory.
    expect(historyReads(s, runId)).toBe(0);
    expect(count('i', 'body')).toBe(1);
    expect(count('i', 'pay')).toBe(1);
  });

  it('input for a wait not reached yet is kept, and answers it when the run gets there', async () => {
    const s = await setup(backend);
    const handle = await s.engine.start(twoApprovals, { key: 'e' });
    await untilPaused(s, handle.id, 'first');

    clearReads(s);
    const kept = await s.engine.resumeTask(
      handle.id,
      'second',
      { approved: true, by: 'bob' },
      { keep: true },
    );
    expect(kept).toEqual({ status: 'kept', runId: handle.id, taskId: 'second' });
    await untilPaused(s, handle.id, 'first');
    expect(await s.store.getRun(handle.id)).toMatchObject({
      status: 'paused',
      pausedTaskId: 'first',
    });
    expect((await s.store.listTasks(handle.id)).map((t) => t.taskId)).toEqual(['first']);
    expect((await s.store.listInbox(handle.id)).map((e) => [e.taskId, e.data])).toEqual([
      ['second', { approved: true, by: 'bob' }],
    ]);

    clearReads(s);
    await s.engine.resumeTask(handle.id, 'first', { approved: true, by: 'ada' });
    await expect(handle.result()).resolves.toEqual({ first: 'ada', second: 'bob' });
    expect(historyReads(s, handle.id)).toBe(0);
    expect(await s.store.getTask(handle.id, 'second')).toMatchObject({
      status: 'completed',
      output: { approved: true, by: 'bob' },
    });
    expect(await s.store.listInbox(handle.id)).toEqual([]);
    expect(count('e', 'body')).toBe(1);
    expect(count('e', 'between')).toBe(1);
    expect(count('e', 'after')).toBe(1);
  });

  it('resume(runId, data) resumes every wait of a parked run', async () => {
    const s = await setup(backend);
    const handle = await s.engine.start(parallelApprovals, { key: 'w' });
    await untilPaused(s, handle.id, 'legal');

    clearReads(s);
    const run = await s.engine.resume(
      handle.id,
      { legal: { approved: true, by: 'lee' }, finance: { approved: true, by: 'fay' } },
      { by: 'ops' },
    );
    expect(run.status).not.toBe('paused');
    await expect(handle.result()).resolves.toEqual({ legal: 'lee', finance: 'fay' });
    expect(historyReads(s, handle.id)).toBe(0);
    expect(count('w', 'body')).toBe(1);
    expect(count('w', 'after')).toBe(1);
    const tasks = await s.store.listTasks(handle.id);
    expect(tasks.map((t) => [t.taskId, t.status, t.resumedBy ?? null])).toEqual([
      ['legal', 'completed', 'ops'],
      ['finance', 'completed', 'ops'],
      ['after', 'completed', null],
    ]);
  });

  it('resume(runId) without data of a parked run that waits is refused, and it stays kept', async () => {
    const s = await setup(backend);
    const runId = await pausedApproval(s, 'n');
    const before = await stored(s.store, runId);
    await rejectsWithCode(s.engine.resume(runId), 'INVALID_RESUME_INPUT');
    await untilPaused(s, runId, 'approval');
    expect(await stored(s.store, runId)).toEqual(before);
    clearReads(s);
    await s.engine.resume(runId, { approved: true, by: 'ada' });
    await expect(s.engine.handle(runId).result()).resolves.toMatchObject({ by: 'ada' });
    expect(historyReads(s, runId)).toBe(0);
    expect(count('n', 'body')).toBe(1);
  });

  it('an operator pause of a parked run, then resume(runId): it waits again, and input ends it', async () => {
    const s = await setup(backend);
    const runId = await pausedApproval(s, 'p');

    const paused = await s.engine.pause(runId);
    expect(paused).toMatchObject({
      status: 'paused',
      pauseRequested: true,
      pausedTaskId: 'approval',
    });
    const resumed = await s.engine.resume(runId);
    expect(resumed.pauseRequested).toBe(false);
    await untilPaused(s, runId, 'approval');
    expect(await s.engine.get(runId)).toMatchObject({
      status: 'paused',
      isPaused: true,
      pauseRequested: false,
      pausedTaskId: 'approval',
    });
    expect(count('p', 'pay')).toBe(0);

    await approveAndFinish(s, runId, 'p');
    // The pause dropped the execution kept in memory: the run was loaded again to resume.
    expectStepsOnce('p', 2);
  });

  it('an operator pause of a parked run holds it: input is taken but the run does not go on', async () => {
    const s = await setup(backend);
    const runId = await pausedApproval(s, 'h');
    await s.engine.pause(runId);
    await s.engine.resumeTask(runId, 'approval', { approved: true, by: 'ada' });
    await until(async () => (await s.store.getTask(runId, 'approval'))?.status === 'completed');
    await until(() => s.engine.activeRuns === 0, 'the run to leave memory');
    expect(await s.engine.get(runId)).toMatchObject({ status: 'paused', pauseRequested: true });
    expect(count('h', 'pay')).toBe(0);
    await s.engine.resume(runId);
    await expect(s.engine.handle(runId).result()).resolves.toMatchObject({ paid: 'paid h' });
    expect(count('h', 'prepare')).toBe(1);
    expect(count('h', 'pay')).toBe(1);
  });

  it('cancel of a parked run: result() is CANCELLED and later input is NOT_WAITING', async () => {
    const s = await setup(backend);
    const runId = await pausedApproval(s, 'c');
    const result = s.engine.handle(runId).result();

    const cancelled = await s.engine.cancel(runId);
    expect(cancelled.status).toBe('cancelled');
    await rejectsWithCode(result, 'CANCELLED');
    await rejectsWithCode(
      s.engine.resumeTask(runId, 'approval', { approved: true, by: 'ada' }),
      'NOT_WAITING',
    );
    await rejectsWithCode(
      s.engine.resume(runId, { approved: true, by: 'ada' }),
      'INVALID_TRANSITION',
    );
    expect(await s.engine.get(runId)).toMatchObject({ status: 'cancelled', isPaused: false });
    expect((await s.store.listWaiting({ runId })).items).toEqual([]);
    expect(count('c', 'pay')).toBe(0);
    expect(s.engine.activeRuns).toBe(0);
  });

  it('a wait timeout with a default on a parked run: the run takes it and goes on, once', async () => {
    const s = await setup(backend);
    const t0 = s.clock.now();
    const handle = await s.engine.start(deadline, { key: 't', lenient: true });
    await untilPaused(s, handle.id, 'approval');

    clearReads(s);
    await s.clock.advance(2 * HOUR - 1);
    expect(await s.engine.get(handle.id)).toMatchObject({ status: 'paused' });
    await s.clock.advance(1);
    await expect(handle.result()).resolves.toBe('deadline');
    expect(historyReads(s, handle.id)).toBe(0);
    expect(await s.store.getTask(handle.id, 'approval')).toMatchObject({
      status: 'timed_out',
      output: { approved: false, by: 'deadline' },
      endedAt: t0 + 2 * HOUR,
    });
    expect(count('t', 'body')).toBe(1);
    expect(count('t', 'prepare')).toBe(1);
    expect(count('t', 'after')).toBe(1);
    expect(await s.store.nextTimer()).toBeUndefined();
    // Too late to answer; and no second timeout.
    await rejectsWithCode(
      s.engine.resumeTask(handle.id, 'approval', { approved: true, by: 'ada' }),
      'NOT_WAITING',
    );
    await s.clock.advance(5 * HOUR);
    expect(count('t', 'after')).toBe(1);
  });

  it("a wait timeout with onTimeout 'fail' on a parked run fails it with WAIT_TIMEOUT", async () => {
    const s = await setup(backend);
    const handle = await s.engine.start(deadline, { key: 'f', lenient: false });
    await untilPaused(s, handle.id, 'approval');
    await s.clock.advance(2 * HOUR);
    await rejectsWithCode(handle.result(), 'WAIT_TIMEOUT');
    expect(await s.engine.get(handle.id)).toMatchObject({
      status: 'failed',
      error: { code: 'WAIT_TIMEOUT' },
    });
    expect(count('f', 'body')).toBe(1);
    expect(count('f', 'after')).toBe(0);
  });

  it('wait timeouts fire for runs kept in memory and for runs that had to leave it', async () => {
    const s = await setup(backend, { keepPausedRuns: 1 });
    const first = await s.engine.start(deadline, { key: 'l1', lenient: true });
    await untilPaused(s, first.id, 'approval');
    // Paused later: `l1` leaves memory.
    const second = await s.engine.start(deadline, { key: 'l2', lenient: true });
    await untilPaused(s, second.id, 'approval');

    clearReads(s);
    await s.clock.advance(2 * HOUR);
    await expect(first.result()).resolves.toBe('deadline');
    await expect(second.result()).resolves.toBe('deadline');
    expect(historyReads(s, first.id)).toBeGreaterThan(0);
    expect(historyReads(s, second.id)).toBe(0);
    expect([count('l1', 'body'), count('l2', 'body')]).toEqual([2, 1]);
    for (const key of ['l1', 'l2']) {
      expect(count(key, 'prepare')).toBe(1);
      expect(count(key, 'after')).toBe(1);
    }
  });

  it('answered in time, a parked wait does not time out later', async () => {
    const s = await setup(backend);
    const handle = await s.engine.start(deadline, { key: 'o', lenient: false });
    await untilPaused(s, handle.id, 'approval');
    await s.clock.advance(HOUR);
    await s.engine.resumeTask(handle.id, 'approval', { approved: true, by: 'ada' });
    await expect(handle.result()).resolves.toBe('ada');
    await s.clock.advance(3 * HOUR);
    expect(await s.engine.get(handle.id)).toMatchObject({ status: 'completed', output: 'ada' });
    expect(count('o', 'after')).toBe(1);
  });

  it('a parked run emits the same events as a run loaded again to be resumed', async () => {
    const lifecycle = async (keepPausedRuns: number, key: string): Promise<string[]> => {
      const seen: string[] = [];
      const record = (name: string) => (e: object) =>
        void seen.push('taskId' in e ? `${name} ${String(e.taskId)}` : name);
      const s = await setup(backend, {
        keepPausedRuns,
        on: {
          'run:started': record('run:started'),
          'run:paused': record('run:paused'),
          'run:resumed': record('run:resumed'),
          'run:completed': record('run:completed'),
          'task:started': record('task:started'),
          'task:completed': record('task:completed'),
          'task:waiting': record('task:waiting'),
          'task:resumed': record('task:resumed'),
        },
      });
      const runId = await pausedApproval(s, key);
      await s.engine.resumeTask(runId, 'approval', { approved: true, by: 'ada' });
      await s.engine.handle(runId).result();
      return seen;
    };
    const kept = await lifecycle(1000, 'ev1');
    expect(kept).toEqual(await lifecycle(0, 'ev0'));
    expect(kept).toEqual([
      'run:started',
      'task:started prepare',
      'task:completed prepare',
      'task:waiting approval',
      'run:paused',
      'task:resumed approval',
      'run:resumed',
      'task:started pay',
      'task:completed pay',
      'run:completed',
    ]);
  });

  it('a parked child run, resumed, ends and its parent goes on', async () => {
    const s = await setup(backend);
    const handle = await s.engine.start(parent, { key: 'pa' });
    let childId = '';
    await until(async () => {
      const waiting = (await s.engine.listWaiting()).items;
      childId = waiting[0]?.runId ?? '';
      if (childId === '') return false;
      const child = await s.store.getRun(childId);
      // The parent, waiting for its child, stays in memory; the child does not.
      return child?.status === 'paused' && s.engine.activeRuns === 1;
    }, 'the child to pause');
    expect(await s.store.getRun(childId)).toMatchObject({
      parentRunId: handle.id,
      parentTaskId: 'sub',
    });

    clearReads(s);
    await s.engine.resumeTask(childId, 'approval', { approved: true, by: 'ada' });
    await expect(handle.result()).resolves.toBe('paid pa-child');
    expect(historyReads(s, childId)).toBe(0);
    expect(count('pa', 'parent')).toBe(1);
    expect(count('pa', 'after')).toBe(1);
    expect(count('pa-child', 'body')).toBe(1);
    expect(count('pa-child', 'pay')).toBe(1);
  });

  it('engine.close() with parked runs: the next engine over the same data resumes them', async () => {
    const first = await setup(backend);
    const a = await pausedApproval(first, 'x1');
    const b = await pausedApproval(first, 'x2');
    await first.engine.close();
    await rejectsWithCode(
      first.engine.resumeTask(a, 'approval', { approved: true, by: 'ada' }),
      'ENGINE_CLOSED',
    );
    await first.store.close();

    const second = await openEngine(sameData(first.store), { clock: first.clock });
    clearReads(second);
    await second.engine.resumeTask(b, 'approval', { approved: true, by: 'bob' });
    await second.engine.resumeTask(a, 'approval', { approved: false, by: 'ada' });
    await expect(second.engine.handle(a).result()).resolves.toEqual({
      prepared: 'prepared x1',
      by: 'ada',
      paid: 'refused x1',
    });
    await expect(second.engine.handle(b).result()).resolves.toEqual({
      prepared: 'prepared x2',
      by: 'bob',
      paid: 'paid x2',
    });
    // Loaded from the store and replayed by the new engine; no step ran twice.
    expect(historyReads(second, a)).toBeGreaterThan(0);
    for (const key of ['x1', 'x2']) {
      expect(count(key, 'body')).toBe(2);
      expect(count(key, 'prepare')).toBe(1);
      expect(count(key, 'pay')).toBe(1);
    }
  });
});
