import { expect, it } from 'vitest';
import type { Run } from '../records.js';
import type { Store } from '../store.js';
import type { SuiteContext } from './context.js';
import { makeLog, makeRun, makeSleep, makeTask, makeWait, withStatus } from './fixtures.js';
import { rawEntries, snapshot } from './snapshot.js';

/** A run with something in every key family: tasks, a wait, timers, inbox and logs. */
async function fullRun(store: Store, overrides: Partial<Run> = {}): Promise<Run> {
  const run = makeRun(overrides);
  await store.createRun(run);
  const wait = makeWait(run, { taskId: 'approve' });
  await store.checkpoint({
    runs: [{ ...withStatus(run, 'paused'), pausedTaskId: wait.taskId }],
    tasks: [makeTask(run, { taskId: 'score' }), wait, makeSleep(run, { taskId: 'nap' })],
  });
  await store.putInbox(run.id, 'later', { early: true });
  await store.appendLogs([makeLog(run.id), makeLog(run.id, { taskId: 'score' })]);
  return (await store.getRun(run.id))!;
}

export function deleteTests(ctx: SuiteContext): void {
  it('deleteRun removes the run, its tasks, index entries, timers, waits, inbox and logs', async () => {
    const store = await ctx.open();
    const run = await fullRun(store, { namespace: 'acme' });
    expect(await store.deleteRun(run.id)).toBe(true);
    expect(await store.getRun(run.id)).toBeUndefined();
    expect(await store.listTasks(run.id)).toEqual([]);
    expect(await store.getTask(run.id, 'score')).toBeUndefined();
    expect(await store.listInbox(run.id)).toEqual([]);
    expect(await store.readLogs(run.id)).toEqual([]);
    expect((await store.listWaiting()).items).toEqual([]);
    expect(await store.dueTimers(Number.MAX_SAFE_INTEGER)).toEqual([]);
    for (const query of [{}, { status: 'paused' as const }, { workflow: run.workflow }]) {
      expect((await store.listRuns(query)).items).toEqual([]);
    }
    expect((await store.listRuns({ namespace: 'acme', status: 'paused' })).items).toEqual([]);
    expect(await store.verify()).toEqual({ ok: true, runs: 0, tasks: 0, entries: 0, problems: [] });
    const raw = await rawEntries(store);
    if (raw !== null) expect(raw.filter((line) => !line.startsWith('meta/'))).toEqual([]);
  });

  it('deleteRun leaves every other run as it was', async () => {
    const store = await ctx.open();
    const keep = [await fullRun(store, { id: 'run' }), await fullRun(store, { id: 'run-2' })];
    const doomed = await fullRun(store, { id: 'ru' });
    const child = await fullRun(store, { parentRunId: 'ru', parentTaskId: 'sub', depth: 1 });
    const expected = await snapshot(store, { runIds: [] });
    const rest = (s: typeof expected) => s.runs.filter((r) => r.run.id !== doomed.id);
    expect(await store.deleteRun(doomed.id)).toBe(true);
    const after = await snapshot(store);
    expect(after.runs).toEqual(rest(expected));
    expect(after.runs.map((r) => r.run.id).sort()).toEqual(
      [...keep.map((r) => r.id), child.id].sort(),
    );
    expect(after.waiting).toEqual(expected.waiting.filter((t) => t.runId !== doomed.id));
    expect(after.timers).toEqual(expected.timers.filter((t) => t.runId !== doomed.id));
    expect(after.integrity.ok).toBe(true);
    expect(after.integrity.runs).toBe(3);
  });

  it('deleteRun of an unknown id is false and changes nothing', async () => {
    const store = await ctx.open();
    await fullRun(store);
    const before = await snapshot(store);
    expect(await store.deleteRun('no-such-run')).toBe(false);
    expect(await snapshot(store)).toEqual(before);
  });

  it('deleteRun twice: true, then false', async () => {
    const store = await ctx.open();
    const run = await fullRun(store);
    expect(await store.deleteRun(run.id)).toBe(true);
    expect(await store.deleteRun(run.id)).toBe(false);
  });

  it('a deleted run id can be created again, from nothing', async () => {
    const store = await ctx.open();
    const run = await fullRun(store);
    await store.deleteRun(run.id);
    const again = makeRun({ id: run.id, status: 'queued' });
    await store.createRun(again);
    expect(await store.getRun(run.id)).toEqual(again);
    expect(await store.listTasks(run.id)).toEqual([]);
    expect(await store.readLogs(run.id)).toEqual([]);
    expect((await store.verify()).ok).toBe(true);
  });

  it('deleteRun of a run in any status removes all it had', async () => {
    const store = await ctx.open();
    for (const status of ['queued', 'running', 'completed', 'failed', 'cancelled'] as const) {
      const run = await fullRun(store);
      await store.checkpoint({ runs: [withStatus(run, status)] });
      expect(await store.deleteRun(run.id)).toBe(true);
      expect(await store.verify()).toMatchObject({ ok: true, runs: 0, tasks: 0, entries: 0 });
    }
  });
}
