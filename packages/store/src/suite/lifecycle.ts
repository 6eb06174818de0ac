import { expect, it } from 'vitest';
import { CairnError } from '../errors.js';
import type { Store } from '../store.js';
import { expectCairnError, itIf, type SuiteContext } from './context.js';
import { makeLog, makeRun, makeTask } from './fixtures.js';
import { snapshot } from './snapshot.js';

/** One valid call of every public method that needs an open store. */
export function everyCall(runId: string): [string, (store: Store) => Promise<unknown>][] {
  const run = makeRun({ id: runId });
  return [
    ['createRun', (s) => s.createRun(makeRun())],
    ['getRun', (s) => s.getRun(runId)],
    ['checkpoint', (s) => s.checkpoint({ runs: [run], tasks: [makeTask(run)] })],
    ['getTask', (s) => s.getTask(runId, 'step-1')],
    ['listTasks', (s) => s.listTasks(runId)],
    ['listRuns', (s) => s.listRuns()],
    ['listWaiting', (s) => s.listWaiting()],
    ['dueTimers', (s) => s.dueTimers(Date.now())],
    ['nextTimer', (s) => s.nextTimer()],
    ['putInbox', (s) => s.putInbox(runId, 'approval', { approved: true })],
    ['getInbox', (s) => s.getInbox(runId, 'approval')],
    ['takeInbox', (s) => s.takeInbox(runId, 'approval')],
    ['listInbox', (s) => s.listInbox(runId)],
    ['appendLogs', (s) => s.appendLogs([makeLog(runId)])],
    ['readLogs', (s) => s.readLogs(runId)],
    ['deleteRun', (s) => s.deleteRun(runId)],
    ['getMeta', (s) => s.getMeta('owner')],
    ['putMeta', (s) => s.putMeta('owner', 'ops')],
    ['verify', (s) => s.verify()],
  ];
}

export function lifecycleTests(ctx: SuiteContext): void {
  it('a new store is closed until opened, then open, then closed again', async () => {
    const store = await ctx.create();
    expect(store.status).toBe('closed');
    const opening = store.open();
    expect(store.status).toBe('opening');
    await opening;
    expect(store.status).toBe('open');
    await store.close();
    expect(store.status).toBe('closed');
  });

  it('open() and close() are safe to call twice, and at once', async () => {
    const store = await ctx.create();
    await Promise.all([store.open(), store.open()]);
    await store.open();
    expect(store.status).toBe('open');
    await Promise.all([store.close(), store.close()]);
    await store.close();
    expect(store.status).toBe('closed');
  });

  it('an open store reports its schema version, as meta/schemaVersion too', async () => {
    const store = await ctx.open();
    expect(Number.isInteger(store.schemaVersion)).toBe(true);
    expect(store.schemaVersion).toBeGreaterThanOrEqual(1);
    expect(await store.getMeta('schemaVersion')).toBe(store.schemaVersion);
  });

  it('an empty store lists nothing and verifies clean', async () => {
    const store = await ctx.open();
    expect(await store.listRuns()).toEqual({ items: [], cursor: null, corrupt: [] });
    expect(await store.listWaiting()).toEqual({ items: [], cursor: null, corrupt: [] });
    expect(await store.dueTimers(Number.MAX_SAFE_INTEGER)).toEqual([]);
    expect(await store.nextTimer()).toBeUndefined();
    expect(await store.verify()).toEqual({ ok: true, runs: 0, tasks: 0, entries: 0, problems: [] });
  });

  for (const [name, call] of everyCall('0190a0b0-0000-7000-8000-000000000001')) {
    it(`${name} on a store never opened is STORE_CLOSED`, async () => {
      const store = await ctx.create();
      await expectCairnError(() => call(store), 'STORE_CLOSED');
      expect(store.status).toBe('closed');
    });
  }

  it('every method on a closed store is STORE_CLOSED, and changes nothing', async () => {
    let store = await ctx.open();
    const run = makeRun();
    await store.createRun(run);
    await store.checkpoint({ tasks: [makeTask(run)] });
    await store.putInbox(run.id, 'approval', { approved: false });
    await store.appendLogs([makeLog(run.id)]);
    const before = await snapshot(store, { metaNames: ['owner'] });
    await store.close();
    for (const [name, call] of everyCall(run.id)) {
      const error = await expectCairnError(() => call(store), 'STORE_CLOSED').catch(
        (cause: unknown) => {
          throw new Error(`${name}: ${String(cause)}`, { cause });
        },
      );
      expect(error).toBeInstanceOf(CairnError);
    }
    if (ctx.supports.persistence) {
      store = await ctx.reopen(store);
      expect(await snapshot(store, { metaNames: ['owner'] })).toEqual(before);
    }
  });

  itIf(ctx.levelBacked, 'the backend is not a LevelBackedStore')(
    'the raw database of a closed LevelBackedStore is STORE_CLOSED',
    async () => {
      const store = await ctx.open();
      await store.close();
      let error: unknown;
      try {
        void (store as unknown as { level: unknown }).level;
      } catch (caught) {
        error = caught;
      }
      expect(error).toBeInstanceOf(CairnError);
      expect((error as CairnError).code).toBe('STORE_CLOSED');
    },
  );
}
