import { expect, it } from 'vitest';
import type { Run } from '../records.js';
import { expectCairnError, type SuiteContext } from './context.js';
import { makeRun, makeTask, withStatus } from './fixtures.js';

/** Values a run's input may hold, and must come back exactly. */
const TRICKY_INPUT = {
  text: 'plain, "quoted", \\ back\\slash, \n newline, \u0000 nul, \u{1F4B8} emoji, 日本語',
  empty: '',
  numbers: [0, -1, 1.5, -2.25, 2 ** 31, 2 ** 32 + 1, 2 ** 53 - 1, -(2 ** 53 - 1), 1e-300, 1e300],
  nonFinite: [Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY, Number.NaN],
  flags: [true, false, null],
  nested: { a: { b: { c: { d: [[[]], {}] } } } },
  date: new Date(Date.UTC(2025, 5, 1, 12, 30)),
  bytes: new Uint8Array([0, 1, 254, 255]),
  'key with spaces': 1,
  '': 'empty key',
};

export function runTests(ctx: SuiteContext): void {
  it('createRun then getRun returns the same record', async () => {
    const store = await ctx.open();
    const run = makeRun({ tags: ['finance', 'q3'], input: TRICKY_INPUT });
    await store.createRun(run);
    const read = await store.getRun(run.id);
    // Bytes come back as a Uint8Array (a Buffer is one) with the same bytes.
    const { bytes, ...rest } = read!.input as typeof TRICKY_INPUT;
    expect(bytes).toBeInstanceOf(Uint8Array);
    expect([...bytes]).toEqual([...TRICKY_INPUT.bytes]);
    const { bytes: _bytes, ...expected } = TRICKY_INPUT;
    expect({ ...read, input: rest }).toEqual({ ...run, input: expected });
  });

  it('every run field round-trips, optional and nullable ones included', async () => {
    const store = await ctx.open();
    const parent = makeRun();
    const run = makeRun({
      status: 'failed',
      version: '2025-06-01.3',
      namespace: 'acme/payments',
      pausedTaskId: null,
      pauseRequested: true,
      output: { partial: [1, 2, 3] },
      error: {
        code: 'STEP_FAILED',
        name: 'PaymentError',
        message: 'card declined',
        stack: 'PaymentError: card declined\n    at pay (pay.ts:1:1)',
        details: { attempt: 3, issues: [{ path: ['amount'] }] },
      },
      parentRunId: parent.id,
      parentTaskId: 'child-0',
      depth: 3,
      recoveries: 2,
      tags: Array.from({ length: 64 }, (_, i) => `tag-${i}`),
    });
    await store.createRun(run);
    expect(await store.getRun(run.id)).toEqual(run);
  });

  it('createRun of an id that exists is ALREADY_EXISTS and keeps the first run', async () => {
    const store = await ctx.open();
    const run = makeRun();
    await store.createRun(run);
    await expectCairnError(
      () => store.createRun({ ...run, workflow: 'other', input: 'replaced' }),
      'ALREADY_EXISTS',
    );
    expect(await store.getRun(run.id)).toEqual(run);
    expect((await store.listRuns()).items).toEqual([run]);
  });

  it('concurrent createRun of one id: exactly one wins', async () => {
    const store = await ctx.open();
    const run = makeRun();
    const results = await Promise.allSettled(
      Array.from({ length: 5 }, (_, i) => store.createRun({ ...run, input: i })),
    );
    const won = results.filter((r) => r.status === 'fulfilled');
    const lost = results.filter((r) => r.status === 'rejected');
    expect(won).toHaveLength(1);
    expect(lost).toHaveLength(4);
    for (const r of lost) expect((r.reason as { code?: unknown }).code).toBe('ALREADY_EXISTS');
    const index = results.findIndex((r) => r.status === 'fulfilled');
    expect(await store.getRun(run.id)).toEqual({ ...run, input: index });
    expect((await store.verify()).ok).toBe(true);
  });

  it('getRun of an unknown id is undefined', async () => {
    const store = await ctx.open();
    await store.createRun(makeRun());
    expect(await store.getRun('0190a0b0-0000-7000-8000-00000000dead')).toBeUndefined();
    expect(await store.getRun('no such run')).toBeUndefined();
  });

  it('a checkpoint replaces the whole run record: fields left out are gone', async () => {
    const store = await ctx.open();
    const run = makeRun({ output: { draft: true }, tags: ['a'] });
    await store.createRun(run);
    const { output: _dropped, ...withoutOutput } = run;
    const next: Run = { ...withStatus(withoutOutput, 'paused'), pausedTaskId: 'approval-1' };
    await store.checkpoint({ runs: [next] });
    const stored = await store.getRun(run.id);
    expect(stored).toEqual(next);
    expect(stored && 'output' in stored && stored.output !== undefined).toBe(false);
  });

  it('a checkpoint may write a run that did not exist (a child started with its task)', async () => {
    const store = await ctx.open();
    const parent = makeRun();
    await store.createRun(parent);
    const child = makeRun({ parentRunId: parent.id, parentTaskId: 'child-1', depth: 1 });
    const task = makeTask(parent, { taskId: 'child-1', kind: 'child', status: 'running' });
    await store.checkpoint({ runs: [child], tasks: [{ ...task, childRunId: child.id }] });
    expect(await store.getRun(child.id)).toEqual(child);
    expect(await store.getTask(parent.id, 'child-1')).toEqual({ ...task, childRunId: child.id });
    expect((await store.verify()).ok).toBe(true);
  });

  it('records are copies: mutating what was written or read changes nothing stored', async () => {
    const store = await ctx.open();
    const run = makeRun({ input: { list: [1, 2] }, tags: ['x'] });
    const kept = structuredClone(run);
    await store.createRun(run);
    (run.input as { list: number[] }).list.push(3);
    run.tags.push('y');
    const read = await store.getRun(run.id);
    expect(read).toEqual(kept);
    (read!.input as { list: number[] }).list.push(4);
    read!.tags.length = 0;
    expect(await store.getRun(run.id)).toEqual(kept);
  });

  it('ids may hold any characters but control characters, up to 200 of them', async () => {
    const store = await ctx.open();
    const ids = [
      'a',
      'run/with/slashes',
      'run with spaces',
      'ünïcødé-日本-\u{1F680}',
      'x'.repeat(200),
      'idx-all',
      '..',
      '%00',
    ];
    for (const id of ids) {
      const run = makeRun({ id, workflow: id, namespace: id, version: id });
      await store.createRun(run);
      await store.checkpoint({ tasks: [makeTask(run, { taskId: id })] });
      expect(await store.getRun(id)).toEqual(run);
      expect((await store.getTask(id, id))?.taskId).toBe(id);
    }
    expect((await store.listRuns()).items).toHaveLength(ids.length);
    expect((await store.verify()).ok).toBe(true);
  });

  it('ids that are prefixes of one another stay apart', async () => {
    const store = await ctx.open();
    const short = makeRun({ id: 'run', workflow: 'wf', namespace: 'ns' });
    const long = makeRun({ id: 'run-2', workflow: 'wf-2', namespace: 'ns-2' });
    const longer = makeRun({ id: 'run-2-3', workflow: 'wf-2-3', namespace: 'ns-2-3' });
    for (const run of [short, long, longer]) {
      await store.createRun(run);
      await store.checkpoint({ tasks: [makeTask(run, { taskId: 't' })] });
    }
    expect((await store.listTasks('run')).map((t) => t.runId)).toEqual(['run']);
    expect((await store.listTasks('run-2')).map((t) => t.runId)).toEqual(['run-2']);
    expect((await store.listRuns({ workflow: 'wf' })).items.map((r) => r.id)).toEqual(['run']);
    expect((await store.listRuns({ namespace: 'ns-2' })).items.map((r) => r.id)).toEqual(['run-2']);
    expect(
      (await store.listRuns({ namespace: 'ns', status: 'running' })).items.map((r) => r.id),
    ).toEqual(['run']);
  });

  it('stored data cannot reach object prototypes', async () => {
    const store = await ctx.open();
    const input = JSON.parse('{"__proto__": {"polluted": true}, "constructor": {"x": 1}}') as {
      [k: string]: unknown;
    };
    const run = makeRun({ input });
    await store.createRun(run);
    const read = await store.getRun(run.id);
    expect(read).toBeDefined();
    expect(({} as { polluted?: unknown }).polluted).toBeUndefined();
    expect(Object.getPrototypeOf(read!.input)).toBe(Object.prototype);
    expect((read!.input as { polluted?: unknown }).polluted).toBeUndefined();
  });
}
