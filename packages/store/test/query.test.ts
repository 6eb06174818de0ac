import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { MemoryStore, diagnose, runDetail, type Run, type Task } from '@cairn/store';
import { makeLog, makeRun, makeSleep, makeTask, makeWait } from '@cairn/store/suite';

/** The store-only queries: what `runDetail` and `diagnose` read from records alone. */

const T = Date.UTC(2025, 4, 1, 9, 0, 0);
const iso = (ms: number) => new Date(ms).toISOString();
let store: MemoryStore;

beforeEach(async () => {
  store = new MemoryStore();
  await store.open();
});

afterEach(async () => {
  await store.close();
});

async function put(run: Run, tasks: Task[] = []): Promise<void> {
  await store.checkpoint({ runs: [run], tasks });
}

describe('runDetail', () => {
  it('tasks by seq, groups of more than one task, children, waits, logs', async () => {
    const run = makeRun({ id: 'r', status: 'paused', pausedTaskId: 'w' });
    const child = makeRun({ id: 'c', parentRunId: 'r', parentTaskId: 'sub', depth: 1 });
    await put(run, [
      makeTask(run, { taskId: 'b', seq: 1, group: 'g1' }),
      makeTask(run, { taskId: 'a', seq: 0, group: 'g0' }),
      makeTask(run, {
        taskId: 'sub',
        seq: 2,
        kind: 'child',
        status: 'running',
        group: 'g1',
        childRunId: 'c',
      }),
      makeTask(run, {
        taskId: 'gone',
        seq: 3,
        kind: 'child',
        status: 'running',
        group: 'g2',
        childRunId: 'nope',
      }),
      makeWait(run, { taskId: 'w', seq: 4, group: 'g2' }),
    ]);
    await put(child);
    await store.appendLogs([makeLog('r', { message: 'one' }), makeLog('r', { message: 'two' })]);
    const detail = await runDetail(store, 'r');
    expect(detail.tasks.map((t) => t.taskId)).toEqual(['a', 'b', 'sub', 'gone', 'w']);
    expect(detail.groups).toEqual([
      { group: 'g1', taskIds: ['b', 'sub'] },
      { group: 'g2', taskIds: ['gone', 'w'] },
    ]);
    expect(detail.children).toEqual([child]);
    expect(detail.waiting.map((t) => t.taskId)).toEqual(['w']);
    expect(detail.logs.map((l) => l.message)).toEqual(['one', 'two']);
    expect((await runDetail(store, 'r', { logLimit: 1 })).logs).toHaveLength(1);
    await expect(runDetail(store, 'none')).rejects.toMatchObject({ code: 'NOT_FOUND' });
  });
});

describe('diagnose', () => {
  it('a queued run is picked up by the next engine', async () => {
    const run = makeRun({ id: 'q', status: 'queued', createdAt: T });
    await put(run);
    const d = await diagnose(store, 'q', { now: T });
    expect(d).toMatchObject({ status: 'queued', versionRegistered: null, lastCheckpointAt: T });
    expect(d.findings).toEqual(['it is queued: the next engine that starts picks it up']);
  });

  it('a running run: a step in flight, a sleep, an operator pause asked, recoveries at the limit', async () => {
    const run = makeRun({
      id: 'r',
      status: 'running',
      recoveries: 3,
      pauseRequested: true,
      createdAt: T,
    });
    await put(run, [
      makeTask(run, { taskId: 'call', seq: 0, status: 'running', attempt: 2, startedAt: T + 1000 }),
      makeSleep(run, { taskId: 'nap', seq: 1, startedAt: T, wakeAt: T + 60_000 }),
    ]);
    await store.putInbox('r', 'later', { early: true });
    const d = await diagnose(store, 'r', {
      now: T + 120_000,
      maxRecoveries: 3,
      registeredVersions: ['1'],
    });
    expect(d.running).toEqual([{ taskId: 'call', kind: 'step', attempt: 2, startedAt: T + 1000 }]);
    expect(d.timers).toEqual([{ taskId: 'nap', kind: 'sleep', at: T + 60_000 }]);
    expect(d.inbox).toEqual(['later']);
    expect(d.lastCheckpointAt).toBe(T + 1000);
    expect(d.findings).toEqual([
      'an operator asked to pause it; steps in flight finish first',
      `its sleep "nap" was due at ${iso(T + 60_000)}; it wakes when an engine runs`,
      `step "call" was in flight (attempt 2, started ${iso(T + 1000)}); if no engine is running it, the next engine runs it again`,
      'input is kept for "later", a wait the run has not reached yet',
      'it was recovered 3 times (the limit is 3): one more interruption fails it with MAX_RECOVERIES_EXCEEDED',
    ]);
  });

  it('a running run with nothing in flight, and a child that cannot be found', async () => {
    const idle = makeRun({ id: 'idle', status: 'running' });
    await put(idle);
    expect((await diagnose(store, 'idle')).findings).toEqual([
      'it is marked running with nothing in flight: if no engine is running it, its process stopped and the next engine recovers it',
    ]);
    const parent = makeRun({ id: 'p', status: 'running' });
    await put(parent, [
      makeTask(parent, { taskId: 'sub', kind: 'child', status: 'running', childRunId: 'ghost' }),
    ]);
    expect((await diagnose(store, 'p')).findings).toEqual([
      'waits for child run ghost, which cannot be found',
    ]);
  });

  it('a wait that refused input sent early: when, why, and the input', async () => {
    const run = makeRun({ id: 'w', status: 'paused', pausedTaskId: 'approve', createdAt: T });
    const issue = { code: 'invalid_type', path: ['ok'], message: 'expected boolean' };
    const refusedInput = { at: T + 5, issues: [issue, { path: [], message: 'more' }], data: 1 };
    await put(run, [
      makeWait(run, { taskId: 'approve', startedAt: T, timeoutAt: null, meta: { refusedInput } }),
      makeWait(run, {
        taskId: 'other',
        seq: 1,
        startedAt: T,
        timeoutAt: null,
        meta: { refusedInput: 'odd' },
      }),
    ]);
    const d = await diagnose(store, 'w', { now: T + 10 });
    expect(d.waiting.map((w) => w.refusedInput)).toEqual([refusedInput, null]);
    expect(d.findings).toEqual([
      `waits for input on "approve" since ${iso(T)}`,
      `input sent early for "approve" was refused by its schema at ${iso(T + 5)} (ok: expected boolean, and 1 more); it waits for valid input`,
      `waits for input on "other" since ${iso(T)}`,
    ]);
  });

  it('a paused run: its waits, a version not registered', async () => {
    const run = makeRun({ id: 'w', status: 'paused', version: '1', workflow: 'expense' });
    await put(run, [makeWait(run, { taskId: 'approve', startedAt: T, timeoutAt: T + 3_600_000 })]);
    const d = await diagnose(store, 'w', { now: T, registeredVersions: ['2', '3'] });
    expect(d.versionRegistered).toBe(false);
    expect(d.findings).toEqual([
      'expense version 1 is not registered (registered: 2, 3); an engine with that version is needed to continue it',
      `waits for input on "approve" since ${iso(T)}; it times out at ${iso(T + 3_600_000)}`,
    ]);
  });

  it('ended runs say how they ended', async () => {
    const failed = makeRun({ id: 'f', status: 'failed' });
    const done = makeRun({ id: 'd', status: 'completed' });
    const cancelled = makeRun({ id: 'x', status: 'cancelled', error: null });
    await put(failed);
    await put(done);
    await put(cancelled);
    expect((await diagnose(store, 'f')).findings).toEqual([
      `it failed at ${iso(failed.endedAt!)}: STEP_FAILED: payment refused`,
    ]);
    expect((await diagnose(store, 'd')).findings[0]).toMatch(
      /^it completed at .*; nothing is stuck$/,
    );
    expect((await diagnose(store, 'x')).findings[0]).toMatch(/^it was cancelled at /);
    await expect(diagnose(store, 'none')).rejects.toMatchObject({ code: 'NOT_FOUND' });
  });
});
