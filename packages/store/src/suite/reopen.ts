import { expect, vi } from 'vitest';
import { expectCairnError, itIf, type SuiteContext } from './context.js';
import {
  finished,
  makeLog,
  makeRun,
  makeSleep,
  makeTask,
  makeWait,
  withStatus,
} from './fixtures.js';
import { snapshot } from './snapshot.js';

const NO_PERSISTENCE = 'the backend does not keep data across close (supports.persistence)';
const NO_LOCKING = 'the backend does not lock its location (supports.locking)';

export function reopenTests(ctx: SuiteContext): void {
  const persistent = itIf(ctx.supports.persistence, NO_PERSISTENCE);

  persistent('everything survives close and reopen', async () => {
    let store = await ctx.open();
    const runs = Array.from({ length: 5 }, (_, i) =>
      makeRun({ namespace: i % 2 === 0 ? 'acme' : 'globex', workflow: `wf-${i % 3}` }),
    );
    await store.checkpoint({ runs });
    for (const run of runs) {
      const wait = makeWait(run);
      await store.checkpoint({
        runs: [{ ...withStatus(run, 'paused'), pausedTaskId: wait.taskId }],
        tasks: [makeTask(run), wait, makeSleep(run)],
      });
      await store.putInbox(run.id, 'later', { n: run.createdAt });
      await store.appendLogs([makeLog(run.id), makeLog(run.id)]);
    }
    await store.checkpoint({ runs: [withStatus(runs[0]!, 'completed')] });
    await store.putMeta('owner', { team: 'ops' });
    const version = store.schemaVersion;
    const before = await snapshot(store, { metaNames: ['owner', 'schemaVersion'] });
    store = await ctx.reopen(store);
    expect(store.status).toBe('open');
    expect(store.schemaVersion).toBe(version);
    expect(await snapshot(store, { metaNames: ['owner', 'schemaVersion'] })).toEqual(before);
    // And again, after a change made by the reopened store.
    await store.checkpoint({ tasks: [finished(makeWait(runs[1]!, { taskId: 'x' }))] });
    const changed = await snapshot(store);
    store = await ctx.reopen(store);
    expect(await snapshot(store)).toEqual(changed);
  });

  persistent('writes issued before close() land before it resolves', async () => {
    let store = await ctx.open();
    const run = makeRun();
    await store.createRun(run);
    const done = withStatus(run, 'completed');
    const task = makeTask(run);
    const writes = [
      store.checkpoint({ tasks: [{ ...task, status: 'running' }] }, { durable: false }),
      store.checkpoint({ runs: [done], tasks: [task] }),
      store.appendLogs([makeLog(run.id)]),
      store.putInbox(run.id, 'x', 1),
    ];
    await store.close();
    await Promise.all(writes);
    store = await ctx.reopen(store);
    expect(await store.getRun(run.id)).toEqual(done);
    expect(await store.listTasks(run.id)).toEqual([task]);
    expect(await store.readLogs(run.id)).toHaveLength(1);
    expect((await store.getInbox(run.id, 'x'))?.data).toBe(1);
    expect((await store.verify()).ok).toBe(true);
  });

  persistent('log seq keeps increasing across reopen; no line is overwritten', async () => {
    let store = await ctx.open();
    const run = makeRun();
    await store.createRun(run);
    // Far more lines than milliseconds pass: seq must not depend on the clock alone.
    const first = await store.appendLogs(
      Array.from({ length: 3000 }, (_, i) => makeLog(run.id, { message: `a${i}` })),
    );
    store = await ctx.reopen(store);
    const second = await store.appendLogs([makeLog(run.id, { message: 'after reopen' })]);
    expect(second[0]!.seq).toBeGreaterThan(first.at(-1)!.seq);
    const all = await store.readLogs(run.id);
    expect(all).toHaveLength(3001);
    expect(all.at(-1)!.message).toBe('after reopen');
    expect(all.slice(0, 3000)).toEqual(first);
  });

  persistent('log seq keeps increasing across reopen when the clock has moved back', async () => {
    let store = await ctx.open();
    const run = makeRun();
    await store.createRun(run);
    const first = await store.appendLogs([makeLog(run.id), makeLog(run.id)]);
    store = await ctx.reopen(store);
    vi.useFakeTimers({ toFake: ['Date'] });
    try {
      // The machine restarted and its clock was set back an hour.
      vi.setSystemTime(Date.now() - 3_600_000);
      const second = await store.appendLogs([makeLog(run.id, { message: 'after reopen' })]);
      expect(second[0]!.seq).toBeGreaterThan(first.at(-1)!.seq);
      expect(await store.readLogs(run.id)).toEqual([...first, ...second]);
    } finally {
      vi.useRealTimers();
    }
  });

  persistent('a store can be closed and reopened many times', async () => {
    let store = await ctx.open();
    let run = makeRun({ status: 'queued' });
    await store.createRun(run);
    for (let i = 0; i < 4; i++) {
      run = withStatus(run, i % 2 === 0 ? 'running' : 'paused', { recoveries: i });
      await store.checkpoint({ runs: [run], tasks: [makeTask(run, { taskId: `t${i}` })] });
      store = await ctx.reopen(store);
      expect(await store.getRun(run.id)).toEqual(run);
      expect(await store.listTasks(run.id)).toHaveLength(i + 1);
    }
    expect((await store.verify()).ok).toBe(true);
  });

  itIf(ctx.supports.locking, NO_LOCKING)(
    'a second store over an open location is STORE_LOCKED naming this process; the first carries on',
    async () => {
      const first = await ctx.open();
      const run = makeRun();
      await first.createRun(run);
      const second = await ctx.create({ reuse: first });
      const error = await expectCairnError(() => second.open(), 'STORE_LOCKED');
      expect(error.details).toMatchObject({ location: first.location, holder: 'this process' });
      expect(second.status).toBe('closed');
      await expectCairnError(() => second.getRun(run.id), 'STORE_CLOSED');
      await first.checkpoint({ runs: [withStatus(run, 'completed')] });
      expect((await first.getRun(run.id))?.status).toBe('completed');
      await first.close();
      await second.open();
      expect((await second.getRun(run.id))?.status).toBe('completed');
    },
  );
}
