import { expect } from 'vitest';
import { encode } from '../codec.js';
import { PREFIX, key, orderKey, runKey, taskKey } from '../keys.js';
import { expectCairnError, itIf, rawDb, type SuiteContext } from './context.js';
import { makeLog, makeRun, makeSleep, makeTask, makeWait } from './fixtures.js';
import { snapshot } from './snapshot.js';

/** Bytes msgpack cannot decode (0xc1 is never used). */
const GARBAGE = new Uint8Array([0xc1, 0xc1, 0xc1]);

export function corruptTests(ctx: SuiteContext): void {
  const level = itIf(ctx.levelBacked, 'damaging records needs raw keys; not a LevelBackedStore');

  level('reading a damaged run or task is CORRUPT_RECORD naming the key', async () => {
    const store = await ctx.open();
    const run = makeRun();
    await store.createRun(run);
    await store.checkpoint({ tasks: [makeTask(run, { taskId: 'score' })] });
    await (await rawDb(store)).put(runKey(run.id), GARBAGE);
    await (await rawDb(store)).put(taskKey(run.id, 'score'), encode({ not: 'a task' }));
    const error = await expectCairnError(() => store.getRun(run.id), 'CORRUPT_RECORD');
    expect(error.details).toEqual({ key: `runs/${run.id}` });
    const taskError = await expectCairnError(
      () => store.getTask(run.id, 'score'),
      'CORRUPT_RECORD',
    );
    expect(taskError.details).toEqual({ key: `tasks/${run.id}/score` });
    await expectCairnError(() => store.listTasks(run.id), 'CORRUPT_RECORD');
  });

  level('one damaged run is reported by listRuns and skipped; the others are listed', async () => {
    const store = await ctx.open();
    const runs = Array.from({ length: 5 }, () => makeRun());
    await store.checkpoint({ runs });
    await (await rawDb(store)).put(runKey(runs[2]!.id), GARBAGE);
    await (await rawDb(store)).del(runKey(runs[3]!.id));
    const page = await store.listRuns();
    expect(page.items.map((r) => r.id)).toEqual([runs[4], runs[1], runs[0]].map((r) => r!.id));
    expect(page.corrupt.map((c) => [c.key, c.error.code])).toEqual([
      [`runs/${runs[3]!.id}`, 'CORRUPT_RECORD'],
      [`runs/${runs[2]!.id}`, 'CORRUPT_RECORD'],
    ]);
    const paged = [];
    let cursor: string | null = null;
    do {
      const p = await store.listRuns({ limit: 1, cursor });
      paged.push(...p.items);
      cursor = p.cursor;
    } while (cursor !== null);
    expect(paged).toEqual(page.items);
  });

  level('listWaiting reports a damaged waiting task and lists the others', async () => {
    const store = await ctx.open();
    const run = makeRun();
    await store.createRun(run);
    const a = makeWait(run, { taskId: 'a' });
    const b = makeWait(run, { taskId: 'b' });
    await store.checkpoint({ tasks: [a, b] });
    await (await rawDb(store)).put(taskKey(run.id, 'a'), GARBAGE);
    const page = await store.listWaiting();
    expect(page.items).toEqual([b]);
    expect(page.corrupt.map((c) => c.key)).toEqual([`tasks/${run.id}/a`]);
  });

  level('verify() reports damaged records, missing and orphan entries, orphan tasks', async () => {
    const store = await ctx.open();
    const [r1, r2, r3] = [makeRun(), makeRun(), makeRun()];
    await store.checkpoint({ runs: [r1, r2, r3], tasks: [makeTask(r3, { taskId: 't' })] });
    await (await rawDb(store)).put(runKey(r1.id), GARBAGE);
    await (await rawDb(store)).del(key(PREFIX.idxStatus, 'running', orderKey(r2.createdAt, r2.id)));
    await (await rawDb(store)).del(runKey(r3.id));
    const report = await store.verify();
    expect(report.ok).toBe(false);
    const kinds = report.problems.map((p) => [p.kind, p.key.split('/')[0]]);
    expect(kinds).toEqual(
      expect.arrayContaining([
        ['corrupt', 'runs'],
        ['missing-entry', PREFIX.idxStatus],
        ['orphan-task', 'tasks'],
        ['orphan-entry', PREFIX.idxAll],
      ]),
    );
  });

  level('deleteRun removes a run whose records are damaged, with all it had', async () => {
    const store = await ctx.open();
    const keep = makeRun();
    const run = makeRun();
    await store.checkpoint({ runs: [keep, run] });
    await store.checkpoint({
      tasks: [
        makeWait(run, { taskId: 'w' }),
        makeSleep(run, { taskId: 's' }),
        makeSleep(keep, { taskId: 's' }),
      ],
    });
    await store.appendLogs([makeLog(run.id)]);
    await store.putInbox(run.id, 'w', 1);
    const kept = await snapshot(store);
    await (await rawDb(store)).put(runKey(run.id), GARBAGE);
    await (await rawDb(store)).put(taskKey(run.id, 'w'), GARBAGE);
    await (await rawDb(store)).put(taskKey(run.id, 's'), GARBAGE);
    expect(await store.deleteRun(run.id)).toBe(true);
    const after = await snapshot(store);
    expect(after.integrity).toMatchObject({ ok: true, runs: 1, tasks: 1 });
    expect(after.runs).toEqual(kept.runs.filter((r) => r.run.id === keep.id));
    expect(after.timers).toEqual(kept.timers.filter((t) => t.runId === keep.id));
  });
}
