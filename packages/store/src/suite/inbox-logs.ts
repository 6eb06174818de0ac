import { expect, it } from 'vitest';
import type { LogLine } from '../records.js';
import type { SuiteContext } from './context.js';
import { finished, makeLog, makeRun, makeWait } from './fixtures.js';

function increasing(lines: readonly LogLine[]): boolean {
  return lines.every((line, i) => i === 0 || line.seq > lines[i - 1]!.seq);
}

export function inboxLogTests(ctx: SuiteContext): void {
  it('putInbox then getInbox returns the data with when it arrived', async () => {
    const store = await ctx.open();
    const run = makeRun();
    await store.createRun(run);
    const data = { approved: true, by: 'ada', at: new Date(0), notes: ['ok', null] };
    const before = Date.now();
    await store.putInbox(run.id, 'approve', data);
    const entry = await store.getInbox(run.id, 'approve');
    expect(entry).toMatchObject({ runId: run.id, taskId: 'approve', data });
    expect(entry!.at).toBeGreaterThanOrEqual(before);
    expect(entry!.at).toBeLessThanOrEqual(Date.now());
    // Reading does not consume.
    expect(await store.getInbox(run.id, 'approve')).toEqual(entry);
  });

  it('putInbox replaces earlier input for the same task', async () => {
    const store = await ctx.open();
    const run = makeRun();
    await store.createRun(run);
    await store.putInbox(run.id, 'approve', { approved: false });
    await store.putInbox(run.id, 'approve', { approved: true });
    expect((await store.getInbox(run.id, 'approve'))?.data).toEqual({ approved: true });
    expect(await store.listInbox(run.id)).toHaveLength(1);
  });

  it('any storable value may be inbox data, undefined and null included', async () => {
    const store = await ctx.open();
    const run = makeRun();
    await store.createRun(run);
    const values = [null, undefined, 0, '', 'text', [1, [2]], { deep: { x: 1 } }, true];
    for (const [i, value] of values.entries()) await store.putInbox(run.id, `t${i}`, value);
    for (const [i, value] of values.entries()) {
      const entry = await store.getInbox(run.id, `t${i}`);
      expect(entry).toBeDefined();
      expect(entry!.data).toEqual(value);
    }
  });

  it('takeInbox returns the entry once and removes it', async () => {
    const store = await ctx.open();
    const run = makeRun();
    await store.createRun(run);
    await store.putInbox(run.id, 'approve', { approved: true });
    const taken = await store.takeInbox(run.id, 'approve');
    expect(taken).toMatchObject({ runId: run.id, taskId: 'approve', data: { approved: true } });
    expect(await store.takeInbox(run.id, 'approve')).toBeUndefined();
    expect(await store.getInbox(run.id, 'approve')).toBeUndefined();
    expect(await store.listInbox(run.id)).toEqual([]);
  });

  it('concurrent takeInbox of one entry: exactly one gets it', async () => {
    const store = await ctx.open();
    const run = makeRun();
    await store.createRun(run);
    await store.putInbox(run.id, 'approve', { approved: true });
    const results = await Promise.all(
      Array.from({ length: 4 }, () => store.takeInbox(run.id, 'approve')),
    );
    expect(results.filter((r) => r !== undefined)).toHaveLength(1);
    expect(await store.getInbox(run.id, 'approve')).toBeUndefined();
  });

  it('input put while a take is in progress is not lost', async () => {
    const store = await ctx.open();
    const run = makeRun();
    await store.createRun(run);
    await store.putInbox(run.id, 'approve', 'first');
    const [taken] = await Promise.all([
      store.takeInbox(run.id, 'approve'),
      store.putInbox(run.id, 'approve', 'second'),
    ]);
    const left = await store.getInbox(run.id, 'approve');
    // Either the take saw the first input and the second is kept, or it took the second.
    expect([taken?.data, left?.data]).toEqual(
      taken?.data === 'first' ? ['first', 'second'] : ['second', undefined],
    );
  });

  it("listInbox lists one run's entries by task id, and only that run's", async () => {
    const store = await ctx.open();
    const run = makeRun({ id: 'run' });
    const other = makeRun({ id: 'run-2' });
    await store.checkpoint({ runs: [run, other] });
    await store.putInbox('run', 'b', 2);
    await store.putInbox('run', 'a', 1);
    await store.putInbox('run-2', 'a', 3);
    const listed = await store.listInbox('run');
    expect(listed.map((e) => [e.runId, e.taskId, e.data])).toEqual([
      ['run', 'a', 1],
      ['run', 'b', 2],
    ]);
    expect((await store.listInbox('run-2')).map((e) => e.data)).toEqual([3]);
    expect(await store.listInbox('nobody')).toEqual([]);
  });

  it('inboxTaken in a checkpoint removes the entry in the same write as the resume', async () => {
    const store = await ctx.open();
    const run = makeRun({ status: 'paused' });
    await store.createRun(run);
    const wait = makeWait(run, { taskId: 'approve' });
    await store.checkpoint({ tasks: [wait] });
    await store.putInbox(run.id, 'approve', { approved: true, by: 'ada' });
    await store.putInbox(run.id, 'other', 'kept');
    await store.checkpoint({
      tasks: [finished(wait)],
      inboxTaken: [
        { runId: run.id, taskId: 'approve' },
        { runId: run.id, taskId: 'never-put' },
      ],
    });
    expect(await store.getInbox(run.id, 'approve')).toBeUndefined();
    expect((await store.getInbox(run.id, 'other'))?.data).toBe('kept');
    expect((await store.getTask(run.id, 'approve'))?.status).toBe('completed');
    expect((await store.listWaiting()).items).toEqual([]);
    expect((await store.verify()).ok).toBe(true);
  });

  it('input may arrive for a run before its record is written', async () => {
    const store = await ctx.open();
    await store.putInbox('future-run', 'approve', 1);
    expect((await store.getInbox('future-run', 'approve'))?.data).toBe(1);
    expect((await store.verify()).ok).toBe(true);
  });

  it('appendLogs assigns increasing seq and returns the stored lines', async () => {
    const store = await ctx.open();
    const run = makeRun();
    await store.createRun(run);
    const inputs = [
      makeLog(run.id, { level: 'debug', message: 'one' }),
      makeLog(run.id, { level: 'warn', message: 'two', taskId: 'score', data: undefined }),
      makeLog(run.id, { level: 'error', message: '', data: { nested: [1, { x: null }] } }),
    ];
    const lines = await store.appendLogs(inputs);
    expect(lines).toHaveLength(3);
    expect(lines.map(({ seq: _seq, ...rest }) => rest)).toEqual(inputs);
    for (const line of lines) expect(Number.isSafeInteger(line.seq) && line.seq >= 0).toBe(true);
    expect(increasing(lines)).toBe(true);
    const more = await store.appendLogs([makeLog(run.id, { message: 'three' })]);
    expect(more[0]!.seq).toBeGreaterThan(lines[2]!.seq);
    expect(await store.readLogs(run.id)).toEqual([...lines, ...more]);
    expect(await store.appendLogs([])).toEqual([]);
  });

  it('concurrent appendLogs for several runs: every line kept, in order per run', async () => {
    const store = await ctx.open();
    const runs = [makeRun(), makeRun()];
    await store.checkpoint({ runs });
    const calls = Array.from({ length: 20 }, (_, i) =>
      store.appendLogs([
        makeLog(runs[i % 2]!.id, { message: `a${i}` }),
        makeLog(runs[(i + 1) % 2]!.id, { message: `b${i}` }),
      ]),
    );
    const returned = (await Promise.all(calls)).flat();
    for (const run of runs) {
      const stored = await store.readLogs(run.id);
      expect(stored).toHaveLength(20);
      expect(increasing(stored)).toBe(true);
      const mine = returned.filter((l) => l.runId === run.id).sort((a, b) => a.seq - b.seq);
      expect(stored).toEqual(mine);
    }
  });

  it('readLogs pages with afterSeq and limit', async () => {
    const store = await ctx.open();
    const run = makeRun();
    await store.createRun(run);
    const lines = await store.appendLogs(
      Array.from({ length: 10 }, (_, i) => makeLog(run.id, { message: `line ${i}` })),
    );
    expect(await store.readLogs(run.id, { limit: 3 })).toEqual(lines.slice(0, 3));
    expect(await store.readLogs(run.id, { afterSeq: lines[2]!.seq })).toEqual(lines.slice(3));
    expect(await store.readLogs(run.id, { afterSeq: lines[2]!.seq, limit: 4 })).toEqual(
      lines.slice(3, 7),
    );
    expect(await store.readLogs(run.id, { afterSeq: lines[9]!.seq })).toEqual([]);
    expect(await store.readLogs(run.id, { afterSeq: lines[9]!.seq + 1_000_000 })).toEqual([]);
    expect(await store.readLogs(run.id, { afterSeq: lines[0]!.seq - 1 })).toEqual(lines);
    expect(await store.readLogs(run.id, { afterSeq: 0 })).toEqual(lines);
    expect(await store.readLogs(run.id, { afterSeq: -1 })).toEqual(lines);
    expect(await store.readLogs(run.id, { limit: 5_000 })).toEqual(lines);
    const paged: LogLine[] = [];
    let after = -1;
    for (;;) {
      const page = await store.readLogs(run.id, { afterSeq: after, limit: 4 });
      if (page.length === 0) break;
      paged.push(...page);
      after = page.at(-1)!.seq;
    }
    expect(paged).toEqual(lines);
  });

  it("readLogs reads one run's lines only", async () => {
    const store = await ctx.open();
    const run = makeRun({ id: 'run' });
    const other = makeRun({ id: 'run-2' });
    await store.checkpoint({ runs: [run, other] });
    await store.appendLogs([makeLog('run'), makeLog('run-2'), makeLog('run')]);
    expect((await store.readLogs('run')).map((l) => l.runId)).toEqual(['run', 'run']);
    expect((await store.readLogs('run-2')).map((l) => l.runId)).toEqual(['run-2']);
    expect(await store.readLogs('nobody')).toEqual([]);
  });
}
