import { expect, it } from 'vitest';
import { CairnError } from '../errors.js';
import type { Run } from '../records.js';
import type { Store } from '../store.js';
import { expectCairnError, expectTypeError, type SuiteContext } from './context.js';
import { makeLog, makeRun, makeSleep, makeTask, makeWait, withStatus } from './fixtures.js';
import { sameValue } from './exact-values.js';
import { rawEntries, snapshot } from './snapshot.js';

/** Values JSON cannot hold on its own, which must come back exactly. */
const TRICKY = {
  date: new Date(Date.UTC(2025, 5, 1, 12, 30, 15, 123)),
  invalidDate: new Date(Number.NaN),
  bytes: new Uint8Array([0, 1, 127, 128, 255]),
  empty: new Uint8Array(0),
  nan: Number.NaN,
  inf: Number.POSITIVE_INFINITY,
  ninf: Number.NEGATIVE_INFINITY,
  missing: undefined,
  list: [1, undefined, null, 'x', [new Date(0)]],
  $cairn: 'a user key that looks like a tag',
  nested: { $cairn: 'date', v: 5 },
  text: 'quotes " and \\ and \n and \u2028 and emoji \u{1F680}',
  big: 2 ** 53 - 1,
  small: 5e-324,
  cut: 'Thanks 👍'.slice(0, 8),
  holes: [1, , 3], // eslint-disable-line no-sparse-arrays
  buffer: Buffer.from([1, 2]),
  bare: Object.assign(Object.create(null) as object, { a: 1 }),
  negativeZero: -0,
  proto: JSON.parse('{"__proto__":{"polluted":true},"$cairn":"hole"}') as unknown,
};

/** Runs with something in every part: tasks of each kind, logs, inbox, tags, tricky values. */
async function fill(store: Store, count: number): Promise<Run[]> {
  const runs: Run[] = [];
  for (let i = 0; i < count; i++) {
    const base = makeRun({
      id: `exp-${String(i).padStart(4, '0')}`,
      namespace: `ns-${i % 2}`,
      tags: i % 2 === 0 ? ['vip'] : [],
      input: { i, ...TRICKY },
    });
    const wait = makeWait(base, { taskId: 'approve' });
    const run =
      i % 3 === 0
        ? { ...withStatus(base, 'paused'), pausedTaskId: wait.taskId }
        : withStatus(base, 'completed', { output: { ok: true, at: TRICKY.date } });
    const tasks = [
      makeTask(run, { taskId: 'score', output: TRICKY, meta: { model: 'gpt-x', totalTokens: 7 } }),
      ...(i % 3 === 0 ? [wait, makeSleep(run, { taskId: 'nap' })] : []),
    ];
    await store.checkpoint({ runs: [run], tasks });
    await store.appendLogs([makeLog(run.id, { data: TRICKY }), makeLog(run.id)]);
    if (i % 3 === 0) await store.putInbox(run.id, 'later', { early: TRICKY.bytes });
    runs.push(run);
  }
  return runs;
}

export async function exportLines(store: Store, options = {}): Promise<string[]> {
  const lines: string[] = [];
  await store.exportRuns((line) => {
    lines.push(line);
  }, options);
  return lines;
}

/** What two stores hold, as the public API shows it (raw bytes left out). */
async function contents(store: Store) {
  const { raw: _raw, ...rest } = await snapshot(store);
  return rest;
}

export function exportImportTests(ctx: SuiteContext): void {
  it('export then import gives the same runs, and the same export, byte for byte', async () => {
    const source = await ctx.open();
    await fill(source, 12);
    const lines = await exportLines(source);
    expect(lines).toHaveLength(13);
    expect(JSON.parse(lines[0]!)).toMatchObject({ type: 'cairn-export', format: 1 });
    for (const line of lines) expect(line).not.toMatch(/\n/);
    const target = await ctx.open();
    const result = await target.importRuns(lines);
    expect(result).toEqual({ runs: 12, tasks: 20, logs: 24, inbox: 4, skipped: 0 });
    expect(await exportLines(target)).toEqual(lines);
    expect(await contents(target)).toEqual(await contents(source));
    expect((await target.verify()).ok).toBe(true);
    // Imported runs count for usage; their log lines keep their seq, and new ones go after.
    expect((await target.usage({ by: 'model' }))[0]).toMatchObject({ key: 'gpt-x', steps: 12 });
    const [appended] = await target.appendLogs([makeLog('exp-0000')]);
    const logs = await target.readLogs('exp-0000');
    expect(logs.at(-1)).toEqual(appended);
    expect(logs).toHaveLength(3);
  });

  it('the tagged values come back exactly', async () => {
    const source = await ctx.open();
    const [run] = await fill(source, 1);
    const target = await ctx.open();
    await target.importRuns(await exportLines(source));
    const input = (await target.getRun(run!.id))!.input as typeof TRICKY & { i: number };
    expect(input.date).toEqual(TRICKY.date);
    expect(Number.isNaN(input.invalidDate.getTime())).toBe(true);
    expect([...input.bytes]).toEqual([...TRICKY.bytes]);
    expect(input.nan).toBeNaN();
    expect(input.inf).toBe(Infinity);
    expect(input.ninf).toBe(-Infinity);
    expect('missing' in input).toBe(true);
    expect(input.list).toEqual([1, undefined, null, 'x', [new Date(0)]]);
    expect(input.$cairn).toBe(TRICKY.$cairn);
    expect(input.nested).toEqual({ $cairn: 'date', v: 5 });
    expect(input.text).toBe(TRICKY.text);
    expect(input.small).toBe(5e-324);
    expect(sameValue(input, { i: 0, ...TRICKY })).toBe(true);
  });

  it('a filter exports only the runs it selects; lines may come from an async iterable', async () => {
    const source = await ctx.open();
    await fill(source, 6);
    const lines = await exportLines(source, { filter: { tags: ['vip'], namespace: 'ns-0' } });
    expect(lines).toHaveLength(4);
    const target = await ctx.open();
    async function* stream() {
      for (const line of lines) yield `${line}\n`;
    }
    expect((await target.importRuns(stream())).runs).toBe(3);
  });

  it('bad lines are reported by line number, and nothing is written', async () => {
    const source = await ctx.open();
    await fill(source, 4);
    const lines = await exportLines(source);
    const target = await ctx.open();
    await fill(target, 0);
    const before = await rawEntries(target);
    const run = JSON.parse(lines[2]!) as { run: Run };
    const bad = [
      lines[0]!,
      lines[1]!,
      '{"type":"run", "run": 5',
      JSON.stringify({ ...run, run: { ...run.run, status: 'sleepy' } }),
      '',
      lines[3]!,
      lines[3]!,
      JSON.stringify({
        ...run,
        tasks: [{ ...(run as unknown as { tasks: object[] }).tasks[0], runId: 'other' }],
      }),
      JSON.stringify({
        type: 'run',
        run: { ...run.run, input: { $cairn: 'wat' } },
        tasks: [],
        logs: [],
        inbox: [],
      }),
      lines[4]!,
    ];
    const error = await expectCairnError(() => target.importRuns(bad), 'INVALID_IMPORT');
    const reported = (error.details?.lines as { line: number; message: string }[]).map(
      (l) => l.line,
    );
    expect(reported).toEqual([3, 4, 7, 8, 9]);
    for (const l of error.details?.lines as { message: string }[])
      expect(typeof l.message).toBe('string');
    expect(await rawEntries(target)).toEqual(before);
    expect((await target.listRuns()).items).toEqual([]);
  });

  it('the header must come first, in a format this code reads', async () => {
    const source = await ctx.open();
    await fill(source, 1);
    const [header, line] = await exportLines(source);
    const target = await ctx.open();
    const codeOf = async (lines: string[]) => {
      const error = await expectCairnError(() => target.importRuns(lines), 'INVALID_IMPORT');
      return (error.details?.lines as { line: number }[]).map((l) => l.line);
    };
    expect(await codeOf([line!])).toEqual([1]);
    expect(await codeOf([header!.replace('"format":1', '"format":2'), line!])).toEqual([1]);
    expect(await codeOf([])).toEqual([1]);
    expect(await codeOf(['   ', ''])).toEqual([1]);
    expect((await target.listRuns()).items).toEqual([]);
  });

  it('runs that exist: ALREADY_EXISTS and nothing written, or skipped when asked', async () => {
    const source = await ctx.open();
    await fill(source, 3);
    const lines = await exportLines(source);
    const target = await ctx.open();
    await target.importRuns([lines[0]!, lines[2]!]);
    const before = await rawEntries(target);
    const error = await expectCairnError(() => target.importRuns(lines), 'ALREADY_EXISTS');
    expect(error.details).toMatchObject({
      runIds: [(JSON.parse(lines[2]!) as { run: Run }).run.id],
      count: 1,
    });
    expect(await rawEntries(target)).toEqual(before);
    const result = await target.importRuns(lines, { conflict: 'skip' });
    expect(result).toMatchObject({ runs: 2, skipped: 1 });
    expect(await exportLines(target)).toEqual(lines);
  });

  it('progress is reported; bad arguments are refused', async () => {
    const source = await ctx.open();
    await fill(source, 3);
    const seen: number[] = [];
    const lines: string[] = [];
    await source.exportRuns((l) => void lines.push(l), { onProgress: (p) => seen.push(p.runs) });
    expect(seen).toEqual([1, 2, 3]);
    const target = await ctx.open();
    const imported: number[] = [];
    await target.importRuns(lines, { onProgress: (p) => imported.push(p.runs) });
    expect(imported.at(-1)).toBe(3);
    await expectTypeError(() => source.exportRuns('stdout' as never));
    await expectTypeError(() => source.exportRuns(() => undefined, { filter: 5 as never }));
    await expectTypeError(() => target.importRuns(5 as never));
    await expectCairnError(
      () => target.importRuns([], { conflict: 'merge' as never }),
      'INVALID_ARGUMENT',
    );
    await expectTypeError(() => source.exportSteps(null as never));
  });

  it('a writer that fails stops the export with its error', async () => {
    const source = await ctx.open();
    await fill(source, 2);
    let calls = 0;
    const error = await source
      .exportRuns(async () => {
        if (++calls === 2) throw new Error('disk full');
      })
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(Error);
    expect(error).not.toBeInstanceOf(CairnError);
    expect(calls).toBe(2);
  });

  it('exportSteps writes a CSV row per task with usage columns, escaped', async () => {
    const store = await ctx.open();
    const run = makeRun({ id: 'csv-run', namespace: 'acme', workflow: 'llm' });
    const startedAt = Date.UTC(2025, 0, 2, 3, 4, 5);
    await store.checkpoint({
      runs: [run],
      tasks: [
        makeTask(run, {
          taskId: 'draft, "v2"',
          seq: 0,
          startedAt,
          endedAt: startedAt + 1500,
          durationMs: 1500,
          meta: { model: 'gpt-x', promptTokens: 10, completionTokens: 5, totalTokens: 15 },
        }),
        makeTask(run, {
          taskId: 'pay',
          seq: 1,
          status: 'failed',
          attempt: 3,
          startedAt,
          error: { code: 'STEP_FAILED', message: 'card\ndeclined' },
        }),
        makeTask(run, { taskId: '$now', seq: 2, startedAt, meta: { recorded: 'now' } }),
        makeTask(run, {
          taskId: 'title',
          seq: 3,
          startedAt,
          meta: { model: 'mini', promptTokens: 3, completionTokens: 4 },
        }),
        makeTask(run, {
          taskId: 'zero-total',
          seq: 4,
          startedAt,
          meta: { model: 'mini', promptTokens: 3, completionTokens: 4, totalTokens: 0 },
        }),
      ],
    });
    const rows: string[] = [];
    const result = await store.exportSteps((row) => void rows.push(row), { namespace: 'acme' });
    expect(result).toMatchObject({ runs: 1, tasks: 4 });
    expect(rows).toEqual([
      'runId,workflow,namespace,taskId,kind,status,attempt,startedAt,endedAt,durationMs,model,promptTokens,completionTokens,totalTokens,error',
      'csv-run,llm,acme,"draft, ""v2""",step,completed,1,2025-01-02T03:04:05.000Z,2025-01-02T03:04:06.500Z,1500,gpt-x,10,5,15,',
      'csv-run,llm,acme,pay,step,failed,3,2025-01-02T03:04:05.000Z,2025-01-02T03:04:05.005Z,5,,,,,"STEP_FAILED: card\ndeclined"',
      // No totalTokens recorded: prompt plus completion, as usage counts it.
      'csv-run,llm,acme,title,step,completed,1,2025-01-02T03:04:05.000Z,2025-01-02T03:04:05.005Z,5,mini,3,4,7,',
      // A total of 0 with prompt and completion recorded: usage counts their sum, so does this.
      'csv-run,llm,acme,zero-total,step,completed,1,2025-01-02T03:04:05.000Z,2025-01-02T03:04:05.005Z,5,mini,3,4,7,',
    ]);
  });
}
