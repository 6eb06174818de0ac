import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { MemoryStore } from '@cairn/store';
import { CairnError, ManualClock, createEngine, workflow, type Engine } from '../src/index.js';
import { deferred, openForTest, rejectsWithCode, snapshot } from './support.js';

const input = z.object({ n: z.number() });
const noop = async (): Promise<null> => null;

async function engineWith(
  ...workflows: Parameters<typeof createEngine>[0]['workflows']
): Promise<{ engine: Engine; store: MemoryStore }> {
  return openForTest({ workflows, clock: new ManualClock() });
}

function codeOf(fn: () => unknown): { type: string; code: unknown } {
  try {
    fn();
  } catch (error) {
    return {
      type: error instanceof CairnError ? 'CairnError' : (error as Error).constructor.name,
      code: (error as { code?: unknown }).code,
    };
  }
  return { type: 'none', code: undefined };
}

describe('workflow() arguments', () => {
  it('returns a frozen definition with version "1" by default', () => {
    const wf = workflow('plain', { input, run: noop });
    expect(wf.name).toBe('plain');
    expect(wf.version).toBe('1');
    expect(wf.output).toBeUndefined();
    expect(wf.maxRecoveries).toBeUndefined();
    expect(wf.concurrency).toBeUndefined();
    expect(Object.isFrozen(wf)).toBe(true);
  });

  it('keeps version, maxRecoveries and concurrency', () => {
    const wf = workflow('tuned', {
      input,
      version: '7',
      maxRecoveries: 0,
      concurrency: 2,
      output: z.null(),
      run: noop,
    });
    expect(wf).toMatchObject({ version: '7', maxRecoveries: 0, concurrency: 2 });
  });

  it.each([
    ['a number as name', () => workflow(42 as never, { input, run: noop }), 'TypeError'],
    ['undefined as name', () => workflow(undefined as never, { input, run: noop }), 'TypeError'],
  ])('refuses %s with a TypeError', (_label, fn, type) => {
    expect(codeOf(fn)).toEqual({ type, code: 'INVALID_ARGUMENT' });
  });

  it.each([
    ['an empty name', () => workflow('', { input, run: noop })],
    ['a name with a control character', () => workflow('a\x00b', { input, run: noop })],
    ['a name of 201 characters', () => workflow('x'.repeat(201), { input, run: noop })],
    ['an empty version', () => workflow('w', { input, version: '', run: noop })],
    ['a version with a newline', () => workflow('w', { input, version: '1\n', run: noop })],
    ['negative maxRecoveries', () => workflow('w', { input, maxRecoveries: -1, run: noop })],
    ['fractional maxRecoveries', () => workflow('w', { input, maxRecoveries: 1.5, run: noop })],
    [
      'maxRecoveries as a string',
      () => workflow('w', { input, maxRecoveries: '3' as never, run: noop }),
    ],
    ['concurrency 0', () => workflow('w', { input, concurrency: 0, run: noop })],
    ['concurrency NaN', () => workflow('w', { input, concurrency: NaN, run: noop })],
    ['concurrency Infinity', () => workflow('w', { input, concurrency: Infinity, run: noop })],
  ])('refuses %s with INVALID_ARGUMENT', (_label, fn) => {
    expect(codeOf(fn)).toEqual({ type: 'CairnError', code: 'INVALID_ARGUMENT' });
  });

  it.each([
    ['null options', () => workflow('w', null as never)],
    ['options as a string', () => workflow('w', 'opts' as never)],
    ['no input schema', () => workflow('w', { run: noop } as never)],
    ['an input that is not a schema', () => workflow('w', { input: {}, run: noop } as never)],
    [
      'an output that is not a schema',
      () => workflow('w', { input, output: 'x', run: noop } as never),
    ],
    ['no run function', () => workflow('w', { input } as never)],
    ['run as an object', () => workflow('w', { input, run: {} } as never)],
    ['a numeric version', () => workflow('w', { input, version: 2, run: noop } as never)],
  ])('refuses %s with a TypeError', (_label, fn) => {
    expect(codeOf(fn)).toEqual({ type: 'TypeError', code: 'INVALID_ARGUMENT' });
  });
});

describe('registering workflows', () => {
  it('refuses two different definitions of the same name and version with CONFLICT', async () => {
    const a = workflow('dup', { input, run: noop });
    const b = workflow('dup', { input, run: noop });
    const store = new MemoryStore();
    await rejectsWithCode(createEngine({ store, workflows: [a, b] }), 'CONFLICT');
  });

  it('accepts the same definition twice, and several versions of one workflow', async () => {
    const v1 = workflow('multi', { input, run: async () => 'one' });
    const v2 = workflow('multi', { input, version: '2', run: async () => 'two' });
    const { engine } = await engineWith(v1, v1, v2);
    expect(await (await engine.start(v1, { n: 1 })).result()).toBe('one');
    expect(await (await engine.start(v2, { n: 1 })).result()).toBe('two');
    // By name, the latest registered version runs.
    const byName = await engine.start('multi', { n: 1 });
    expect(await byName.result()).toBe('two');
    expect((await byName.run()).version).toBe('2');
  });

  it('refuses to start a workflow that is not registered', async () => {
    const known = workflow('known', { input, run: noop });
    const stranger = workflow('stranger', { input, run: noop });
    const twin = workflow('known', { input, run: noop });
    const { engine, store } = await engineWith(known);
    await rejectsWithCode(engine.start(stranger, { n: 1 }), 'WORKFLOW_NOT_REGISTERED');
    await rejectsWithCode(engine.start('nope', { n: 1 }), 'WORKFLOW_NOT_REGISTERED');
    // Same name and version, but another definition: not the one the engine knows.
    await expect(engine.start(twin, { n: 1 })).resolves.toBeDefined();
    expect((await store.listRuns()).items).toHaveLength(1);
  });
});

describe('input validation', () => {
  const strict = workflow('strict-input', {
    input: z.object({ id: z.string(), amount: z.number().positive() }),
    run: async (_ctx, i) => i.amount,
  });

  it('refuses bad input with INVALID_INPUT and the zod issues, and stores nothing', async () => {
    const { engine, store } = await engineWith(strict);
    const before = await snapshot(store);
    const error = (await rejectsWithCode(
      engine.start(strict, { id: 7, amount: -1 } as never),
      'INVALID_INPUT',
    )) as CairnError;
    expect(error).toBeInstanceOf(CairnError);
    const issues = error.details?.issues as { path: unknown[]; code: string }[];
    expect(Array.isArray(issues)).toBe(true);
    expect(issues.map((i) => i.path)).toEqual(expect.arrayContaining([['id'], ['amount']]));
    expect((await store.listRuns()).items).toEqual([]);
    expect(await snapshot(store)).toEqual(before);
  });

  it.each([
    ['undefined', undefined],
    ['null', null],
    ['a string', 'hello'],
    ['an array', [1, 2]],
    ['a missing field', { id: 'x' }],
  ])('refuses %s as input with INVALID_INPUT and no run', async (_label, bad) => {
    const { engine, store } = await engineWith(strict);
    await rejectsWithCode(engine.start(strict, bad as never), 'INVALID_INPUT');
    expect((await store.listRuns()).items).toEqual([]);
  });

  it('stores and passes the parsed input (defaults and transforms applied)', async () => {
    let seen: unknown;
    const parsed = workflow('parsed-input', {
      input: z.object({ name: z.string().trim(), count: z.number().default(3) }),
      run: async (_ctx, i) => {
        seen = i;
        return i.count;
      },
    });
    const { engine } = await engineWith(parsed);
    const handle = await engine.start(parsed, { name: '  ada  ' });
    expect(await handle.result()).toBe(3);
    expect(seen).toEqual({ name: 'ada', count: 3 });
    expect((await handle.run()).input).toEqual({ name: 'ada', count: 3 });
  });

  it('refuses input that passes the schema but cannot be stored, with NOT_SERIALIZABLE', async () => {
    const loose = workflow('loose', { input: z.any(), run: noop });
    const { engine, store } = await engineWith(loose);
    const before = await snapshot(store);
    await rejectsWithCode(engine.start(loose, { fn: () => 1 }), 'NOT_SERIALIZABLE');
    await rejectsWithCode(engine.start(loose, { big: 10n }), 'NOT_SERIALIZABLE');
    await rejectsWithCode(engine.start(loose, new Map()), 'NOT_SERIALIZABLE');
    const cyclic: Record<string, unknown> = {};
    cyclic.self = cyclic;
    await rejectsWithCode(engine.start(loose, cyclic), 'NOT_SERIALIZABLE');
    expect(await snapshot(store)).toEqual(before);
  });
});

describe('output validation', () => {
  it('fails the run with INVALID_OUTPUT when the output schema refuses the result', async () => {
    const wf = workflow('bad-output', {
      input,
      output: z.object({ ok: z.boolean() }),
      run: async () => ({ ok: 'yes' }) as never,
    });
    const { engine } = await engineWith(wf);
    const handle = await engine.start(wf, { n: 1 });
    const error = (await rejectsWithCode(handle.result(), 'INVALID_OUTPUT')) as CairnError;
    expect(error).toBeInstanceOf(CairnError);
    const run = await handle.run();
    expect(run.status).toBe('failed');
    expect(run.error?.code).toBe('INVALID_OUTPUT');
    expect(Array.isArray(run.error?.details?.issues)).toBe(true);
    expect(run.output).toBeUndefined();
  });

  it('stores the parsed output when the schema transforms it', async () => {
    const wf = workflow('good-output', {
      input,
      output: z.object({ total: z.number() }).transform((o) => ({ ...o, doubled: o.total * 2 })),
      run: async (_ctx, i) => ({ total: i.n }) as never,
    });
    const { engine } = await engineWith(wf);
    const handle = await engine.start(wf, { n: 4 });
    expect(await handle.result()).toEqual({ total: 4, doubled: 8 });
    expect((await handle.run()).output).toEqual({ total: 4, doubled: 8 });
  });

  it('fails a run whose result cannot be stored with NOT_SERIALIZABLE', async () => {
    const wf = workflow('fn-output', { input, run: async () => (() => 1) as never });
    const { engine } = await engineWith(wf);
    const handle = await engine.start(wf, { n: 1 });
    await rejectsWithCode(handle.result(), 'NOT_SERIALIZABLE');
    expect((await handle.run()).status).toBe('failed');
  });
});

describe('a workflow that throws', () => {
  it('fails the run; result() rejects with RUN_FAILED for a plain error', async () => {
    const wf = workflow('throws', {
      input,
      run: async () => {
        throw new Error('boom');
      },
    });
    const { engine } = await engineWith(wf);
    const handle = await engine.start(wf, { n: 1 });
    await rejectsWithCode(handle.result(), 'RUN_FAILED');
    const run = await handle.run();
    expect(run).toMatchObject({ status: 'failed', isPaused: false });
    expect(run.error?.message).toBeTypeOf('string');
    expect(run.endedAt).not.toBeNull();
  });

  it('keeps the code of a CairnError the workflow throws', async () => {
    const wf = workflow('throws-coded', {
      input,
      run: async () => {
        throw new CairnError('CONFLICT', 'custom');
      },
    });
    const { engine } = await engineWith(wf);
    const handle = await engine.start(wf, { n: 1 });
    await rejectsWithCode(handle.result(), 'CONFLICT');
  });

  it('fails the run when the workflow throws something that is not an Error', async () => {
    const wf = workflow('throws-string', {
      input,
      run: async () => {
        throw 'just a string';
      },
    });
    const { engine } = await engineWith(wf);
    const handle = await engine.start(wf, { n: 1 });
    await rejectsWithCode(handle.result(), 'RUN_FAILED');
    expect((await handle.run()).error?.message).toContain('just a string');
  });
});

describe('run records', () => {
  it('creates a run with a UUIDv7 id, the workflow, version, namespace and tags', async () => {
    const gate = deferred();
    const wf = workflow('recorded', {
      input,
      version: '3',
      run: async (ctx) => ctx.step('hold', () => gate.promise),
    });
    const { engine } = await engineWith(wf);
    const handle = await engine.start(wf, { n: 1 }, { namespace: 'proj', tags: ['a', 'b'] });
    const run = await handle.run();
    expect(run.id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    expect(run).toMatchObject({
      workflow: 'recorded',
      version: '3',
      namespace: 'proj',
      status: 'running',
      isPaused: false,
      pausedTaskId: null,
      parentRunId: null,
      parentTaskId: null,
      depth: 0,
      recoveries: 0,
      tags: ['a', 'b'],
      endedAt: null,
    });
    expect(run.startedAt).not.toBeNull();
    gate.resolve();
    await handle.result();
    const done = await handle.run();
    expect(done.status).toBe('completed');
    expect(done.endedAt).not.toBeNull();
  });
});
