/**
 * Every public engine call fed bad data: wrong types, unknown ids, bad options, bad
 * durations, values that cannot be stored, prototype-pollution payloads. Each is refused
 * with a TypeError (code INVALID_ARGUMENT) or a CairnError with a stable code, and nothing
 * stored changes: every raw key and value of the store is compared before and after.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { LevelStore, MemoryStore, diagnose, runDetail } from '@cairn/store';
import {
  CairnError,
  ManualClock,
  createEngine,
  listWaitingTasks,
  toMs,
  workflow,
  type Engine,
  type EngineOptions,
} from '../src/index.js';
import { crash, deferred, open, rejectsWithCode, settle, snapshot, until } from './support.js';

const evil = (extra: Record<string, unknown> = {}): Record<string, unknown> => ({
  ...(JSON.parse(
    '{"__proto__":{"polluted":1},"constructor":{"prototype":{"polluted":2}}}',
  ) as Record<string, unknown>),
  ...extra,
});

function assertClean(): void {
  expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  expect(Object.prototype).not.toHaveProperty('polluted');
  expect(Object.getOwnPropertyNames(Object.prototype)).not.toContain('polluted');
}

const cyclic = (): Record<string, unknown> => {
  const o: Record<string, unknown> = { a: 1 };
  o.self = o;
  return o;
};
const deep = (levels: number): unknown => {
  let v: unknown = 'bottom';
  for (let i = 0; i < levels; i++) v = { v };
  return v;
};
const oversized = (): string => 'x'.repeat(17 * 1024 * 1024);

const gate = deferred();
const simple = workflow('simple', {
  input: z.object({ n: z.number() }),
  run: async (ctx, i) => ctx.step('a', () => i.n + 1),
});
const approval = workflow('approval', {
  input: z.object({ n: z.number() }),
  run: async (ctx) => {
    await ctx.step('prep', () => 'ready');
    return ctx.waitForInput('approve', { schema: z.object({ ok: z.boolean() }) });
  },
});
const holding = workflow('holding', {
  input: z.object({ n: z.number() }),
  run: async (ctx) => ctx.step('hold', () => gate.promise),
});
const fails = workflow('fails', {
  input: z.object({ n: z.number() }),
  run: async () => {
    throw new Error('no');
  },
});
const loose = workflow('loose', {
  input: z.any(),
  run: async (ctx, i: unknown) => ctx.step('echo', () => i),
});
const workflows = [simple, approval, holding, fails, loose];

let engine: Engine;
let store: MemoryStore;
const ids = { done: '', paused: '', running: '', failed: '' };

beforeAll(async () => {
  ({ engine, store } = await open({ workflows, clock: new ManualClock() }));
  const done = await engine.start(simple, { n: 1 });
  await done.result();
  const paused = await engine.start(approval, { n: 1 });
  await until(async () => (await paused.status()) === 'paused', 'the pause');
  const running = await engine.start(holding, { n: 1 });
  await until(async () => (await store.getTask(running.id, 'hold')) !== undefined, 'the step');
  const failed = await engine.start(fails, { n: 1 });
  await failed.result().catch(() => undefined);
  Object.assign(ids, { done: done.id, paused: paused.id, running: running.id, failed: failed.id });
  await settle();
});

afterAll(async () => {
  gate.resolve();
  await engine.close();
  await store.close();
  assertClean();
});

/**
 * Calls `fn`, expects it to be refused with `code` (a TypeError when `type` says so), and
 * checks that no stored byte changed and the runs in memory are the same.
 */
async function refused(
  fn: () => unknown,
  code: string,
  type: 'TypeError' | 'CairnError' | 'either' = 'either',
): Promise<void> {
  const before = await snapshot(store);
  const active = engine.activeRuns;
  let error: unknown;
  try {
    await fn();
  } catch (e) {
    error = e;
  }
  expect(error, 'the call was accepted').toBeInstanceOf(Error);
  expect((error as { code?: unknown }).code).toBe(code);
  if (type === 'TypeError') expect(error).toBeInstanceOf(TypeError);
  if (type === 'CairnError') expect(error).toBeInstanceOf(CairnError);
  if (type === 'either') {
    expect(error instanceof TypeError || error instanceof CairnError).toBe(true);
  }
  for (let i = 0; i < 3; i++) await settle();
  await until(() => engine.activeRuns === active, 'the runs in memory to be as before');
  expect(await snapshot(store)).toEqual(before);
  assertClean();
}

type Case = [string, () => unknown, string, ('TypeError' | 'CairnError' | 'either')?];

const badIds: [string, unknown, string, 'TypeError' | 'CairnError'][] = [
  ['a number', 42, 'INVALID_ARGUMENT', 'TypeError'],
  ['null', null, 'INVALID_ARGUMENT', 'TypeError'],
  ['undefined', undefined, 'INVALID_ARGUMENT', 'TypeError'],
  ['an object', { id: 'x' }, 'INVALID_ARGUMENT', 'TypeError'],
  ['an empty string', '', 'INVALID_ARGUMENT', 'CairnError'],
  ['a string with NUL', 'a\x00b', 'INVALID_ARGUMENT', 'CairnError'],
  ['a string with a newline', 'a\nb', 'INVALID_ARGUMENT', 'CairnError'],
  ['201 characters', 'x'.repeat(201), 'INVALID_ARGUMENT', 'CairnError'],
];

describe('createEngine()', () => {
  const base = (extra: Record<string, unknown>): EngineOptions => {
    const options: Record<string, unknown> = { store, workflows, clock: new ManualClock() };
    return Object.assign(options, extra) as unknown as EngineOptions;
  };
  const other = workflow('simple', { input: z.any(), run: async () => 1 });
  const cases: Case[] = [
    ['no options', () => createEngine(undefined as never), 'INVALID_ARGUMENT', 'TypeError'],
    ['null options', () => createEngine(null as never), 'INVALID_ARGUMENT', 'TypeError'],
    ['a string as options', () => createEngine('x' as never), 'INVALID_ARGUMENT', 'TypeError'],
    ['no workflows', () => createEngine({ store } as never), 'INVALID_ARGUMENT', 'TypeError'],
    [
      'workflows as a string',
      () => createEngine(base({ workflows: 'simple' })),
      'INVALID_ARGUMENT',
      'TypeError',
    ],
    [
      'a null workflow',
      () => createEngine(base({ workflows: [null] })),
      'INVALID_ARGUMENT',
      'TypeError',
    ],
    [
      'a hand-made workflow',
      () => createEngine(base({ workflows: [{ name: 'x' }] })),
      'INVALID_ARGUMENT',
      'TypeError',
    ],
    [
      'two definitions of one version',
      () => createEngine(base({ workflows: [simple, other] })),
      'CONFLICT',
      'CairnError',
    ],
    ['concurrency 0', () => createEngine(base({ concurrency: 0 })), 'INVALID_ARGUMENT'],
    ['concurrency -1', () => createEngine(base({ concurrency: -1 })), 'INVALID_ARGUMENT'],
    ['concurrency 1.5', () => createEngine(base({ concurrency: 1.5 })), 'INVALID_ARGUMENT'],
    ['concurrency NaN', () => createEngine(base({ concurrency: NaN })), 'INVALID_ARGUMENT'],
    ['concurrency "4"', () => createEngine(base({ concurrency: '4' })), 'INVALID_ARGUMENT'],
    ['maxRecoveries -1', () => createEngine(base({ maxRecoveries: -1 })), 'INVALID_ARGUMENT'],
    ['maxRecoveries 0.5', () => createEngine(base({ maxRecoveries: 0.5 })), 'INVALID_ARGUMENT'],
    ['maxRecoveries "x"', () => createEngine(base({ maxRecoveries: 'x' })), 'INVALID_ARGUMENT'],
    ['an empty namespace', () => createEngine(base({ namespace: '' })), 'INVALID_ARGUMENT'],
    ['a numeric namespace', () => createEngine(base({ namespace: 5 })), 'INVALID_ARGUMENT'],
    ['retry as a string', () => createEngine(base({ retry: 'x' })), 'INVALID_ARGUMENT'],
    ['retry.attempts 0', () => createEngine(base({ retry: { attempts: 0 } })), 'INVALID_ARGUMENT'],
    [
      "retry.initialDelay 'soon'",
      () => createEngine(base({ retry: { initialDelay: 'soon' } })),
      'INVALID_ARGUMENT',
    ],
    [
      "retry.maxDelay '-1s'",
      () => createEngine(base({ retry: { maxDelay: '-1s' } })),
      'INVALID_ARGUMENT',
    ],
    [
      'retry.retryable 5',
      () => createEngine(base({ retry: { retryable: 5 } })),
      'INVALID_ARGUMENT',
      'TypeError',
    ],
    ['a store that is not a Store', () => createEngine(base({ store: {} })), 'INVALID_ARGUMENT'],
    ['a path as store', () => createEngine(base({ store: '/tmp/x' })), 'INVALID_ARGUMENT'],
    ['a clock without methods', () => createEngine(base({ clock: {} })), 'INVALID_ARGUMENT'],
    ['a clock with now = 1', () => createEngine(base({ clock: { now: 1 } })), 'INVALID_ARGUMENT'],
    ['on as a string', () => createEngine(base({ on: 'x' })), 'INVALID_ARGUMENT', 'TypeError'],
    [
      'a listener that is not a function',
      () => createEngine(base({ on: { problem: 5 } })),
      'INVALID_ARGUMENT',
      'TypeError',
    ],
    [
      'a listener for an event that does not exist',
      () => createEngine(base({ on: { 'run:exploded': () => undefined } })),
      'INVALID_ARGUMENT',
      'TypeError',
    ],
    [
      'recover as a string',
      () => createEngine(base({ recover: 'yes' })),
      'INVALID_ARGUMENT',
      'TypeError',
    ],
    [
      'a __proto__ payload as options',
      () => createEngine(JSON.parse('{"__proto__":{"workflows":[]}}') as EngineOptions),
      'INVALID_ARGUMENT',
      'TypeError',
    ],
  ];
  it.each(cases)('refuses %s', async (_label, fn, code, type) => {
    await refused(fn, code, type);
  });
});

describe('engine.start()', () => {
  const stranger = workflow('stranger', { input: z.any(), run: async () => 1 });
  const cases: Case[] = [
    [
      'null as workflow',
      () => engine.start(null as never, {} as never),
      'INVALID_ARGUMENT',
      'TypeError',
    ],
    [
      'a number as workflow',
      () => engine.start(42 as never, {} as never),
      'INVALID_ARGUMENT',
      'TypeError',
    ],
    [
      'an object as workflow',
      () => engine.start({} as never, {} as never),
      'INVALID_ARGUMENT',
      'TypeError',
    ],
    ['an unknown name', () => engine.start('nope', {}), 'WORKFLOW_NOT_REGISTERED', 'CairnError'],
    [
      'a workflow not registered',
      () => engine.start(stranger, {}),
      'WORKFLOW_NOT_REGISTERED',
      'CairnError',
    ],
    ['undefined input', () => engine.start(simple, undefined as never), 'INVALID_INPUT'],
    ['input of the wrong type', () => engine.start(simple, 'n=1' as never), 'INVALID_INPUT'],
    ['a field of the wrong type', () => engine.start(simple, { n: '1' } as never), 'INVALID_INPUT'],
    [
      'a __proto__ payload that the schema refuses',
      () => engine.start(simple, evil() as never),
      'INVALID_INPUT',
    ],
    ['a function as input', () => engine.start(loose, () => 1), 'NOT_SERIALIZABLE'],
    ['a bigint in the input', () => engine.start(loose, { n: 1n }), 'NOT_SERIALIZABLE'],
    ['a symbol in the input', () => engine.start(loose, { s: Symbol('s') }), 'NOT_SERIALIZABLE'],
    ['a class instance as input', () => engine.start(loose, new Map()), 'NOT_SERIALIZABLE'],
    ['a cycle in the input', () => engine.start(loose, cyclic()), 'NOT_SERIALIZABLE'],
    ['input nested 5000 deep', () => engine.start(loose, deep(5000)), 'NOT_SERIALIZABLE'],
    ['input over 16 MiB', () => engine.start(loose, { big: oversized() }), 'VALUE_TOO_LARGE'],
    [
      'input over 16 MiB with an id',
      () => engine.start(loose, { big: oversized() }, { id: 'big-one' }),
      'VALUE_TOO_LARGE',
    ],
    ['null options', () => engine.start(simple, { n: 1 }, null as never), 'INVALID_ARGUMENT'],
    ['string options', () => engine.start(simple, { n: 1 }, 'x' as never), 'INVALID_ARGUMENT'],
    ...badIds
      .filter(([label]) => label !== 'undefined')
      .map(([label, id, code, type]): Case => [
        `options.id as ${label}`,
        () => engine.start(simple, { n: 1 }, { id: id as string }),
        code,
        type,
      ]),
    [
      'options.namespace 5',
      () => engine.start(simple, { n: 1 }, { namespace: 5 as never }),
      'INVALID_ARGUMENT',
      'TypeError',
    ],
    [
      "options.namespace ''",
      () => engine.start(simple, { n: 1 }, { namespace: '' }),
      'INVALID_ARGUMENT',
      'CairnError',
    ],
    [
      'options.tags as a string',
      () => engine.start(simple, { n: 1 }, { tags: 'a' as never }),
      'INVALID_ARGUMENT',
      'TypeError',
    ],
    [
      'a number in options.tags',
      () => engine.start(simple, { n: 1 }, { tags: [1] as never }),
      'INVALID_ARGUMENT',
      'TypeError',
    ],
    [
      '65 tags',
      () => engine.start(simple, { n: 1 }, { tags: Array(65).fill('t') as string[] }),
      'INVALID_ARGUMENT',
    ],
    [
      'a tag of 201 characters',
      () => engine.start(simple, { n: 1 }, { tags: ['x'.repeat(201)] }),
      'INVALID_ARGUMENT',
    ],
    [
      'the id of a run with other input',
      () => engine.start(simple, { n: 99 }, { id: ids.done }),
      'CONFLICT',
      'CairnError',
    ],
    [
      'the id of a run of another workflow',
      () => engine.start(holding, { n: 1 }, { id: ids.done }),
      'CONFLICT',
      'CairnError',
    ],
  ];
  it.each(cases)('refuses %s', async (_l, fn, code, type) => {
    await refused(fn, code, type);
  });
});

describe('handles, get() and tasks()', () => {
  it.each(badIds)('handle() refuses %s at once', async (_label, id, code, type) => {
    await refused(() => engine.handle(id as string), code, type);
  });

  it.each(badIds)('get() and tasks() refuse %s', async (_label, id, code, type) => {
    await refused(() => engine.get(id as string), code, type);
    await refused(() => engine.tasks(id as string), code, type);
  });

  it('answers NOT_FOUND for a run that does not exist', async () => {
    await refused(() => engine.get('no-such-run'), 'NOT_FOUND', 'CairnError');
    await refused(() => engine.tasks('no-such-run'), 'NOT_FOUND', 'CairnError');
    const handle = engine.handle('no-such-run');
    await refused(() => handle.status(), 'NOT_FOUND', 'CairnError');
    await refused(() => handle.run(), 'NOT_FOUND', 'CairnError');
    await refused(() => handle.result(), 'NOT_FOUND', 'CairnError');
  });
});

describe('listRuns() and listWaiting()', () => {
  const cases: Case[] = [
    ['listRuns(null)', () => engine.listRuns(null as never), 'INVALID_ARGUMENT', 'TypeError'],
    ['listRuns("x")', () => engine.listRuns('x' as never), 'INVALID_ARGUMENT', 'TypeError'],
    [
      'an unknown status',
      () => engine.listRuns({ status: 'nope' as never }),
      'INVALID_ARGUMENT',
      'CairnError',
    ],
    ['a numeric status', () => engine.listRuns({ status: 5 as never }), 'INVALID_ARGUMENT'],
    ['limit 0', () => engine.listRuns({ limit: 0 }), 'INVALID_ARGUMENT'],
    ['limit -1', () => engine.listRuns({ limit: -1 }), 'INVALID_ARGUMENT'],
    ['limit 1001', () => engine.listRuns({ limit: 1001 }), 'INVALID_ARGUMENT'],
    ['limit 2.5', () => engine.listRuns({ limit: 2.5 }), 'INVALID_ARGUMENT'],
    ['limit NaN', () => engine.listRuns({ limit: NaN }), 'INVALID_ARGUMENT'],
    ['limit "10"', () => engine.listRuns({ limit: '10' as never }), 'INVALID_ARGUMENT'],
    ['a numeric cursor', () => engine.listRuns({ cursor: 5 as never }), 'INVALID_ARGUMENT'],
    ['an empty cursor', () => engine.listRuns({ cursor: '' }), 'INVALID_ARGUMENT'],
    [
      'a 2000-character cursor',
      () => engine.listRuns({ cursor: 'c'.repeat(2000) }),
      'INVALID_ARGUMENT',
    ],
    ["workflow ''", () => engine.listRuns({ workflow: '' }), 'INVALID_ARGUMENT'],
    ['namespace 7', () => engine.listRuns({ namespace: 7 as never }), 'INVALID_ARGUMENT'],
    ['listWaiting(null)', () => engine.listWaiting(null as never), 'INVALID_ARGUMENT', 'TypeError'],
    ['listWaiting("x")', () => engine.listWaiting('x' as never), 'INVALID_ARGUMENT', 'TypeError'],
    ['waiting limit 0', () => engine.listWaiting({ limit: 0 }), 'INVALID_ARGUMENT'],
    ['waiting limit -1', () => engine.listWaiting({ limit: -1 }), 'INVALID_ARGUMENT'],
    ['waiting limit 1.5', () => engine.listWaiting({ limit: 1.5 }), 'INVALID_ARGUMENT'],
    ['waiting limit 5000', () => engine.listWaiting({ limit: 5000 }), 'INVALID_ARGUMENT'],
    ['waiting limit "5"', () => engine.listWaiting({ limit: '5' as never }), 'INVALID_ARGUMENT'],
    ['waiting runId 5', () => engine.listWaiting({ runId: 5 as never }), 'INVALID_ARGUMENT'],
    ["waiting runId ''", () => engine.listWaiting({ runId: '' }), 'INVALID_ARGUMENT'],
    [
      'waiting namespace 5',
      () => engine.listWaiting({ namespace: 5 as never }),
      'INVALID_ARGUMENT',
    ],
    ["waiting workflow ''", () => engine.listWaiting({ workflow: '' }), 'INVALID_ARGUMENT'],
    ['waiting cursor 5', () => engine.listWaiting({ cursor: 5 as never }), 'INVALID_ARGUMENT'],
    ...(
      [
        ['no store', () => listWaitingTasks(undefined as never), 'TypeError'],
        ['a store-like object', () => listWaitingTasks({ listWaiting: () => [] } as never)],
        ['query null', () => listWaitingTasks(store, null as never), 'TypeError'],
        ['query "x"', () => listWaitingTasks(store, 'x' as never), 'TypeError'],
        ['limit 0', () => listWaitingTasks(store, { limit: 0 }), 'CairnError'],
        ['limit 2.5', () => listWaitingTasks(store, { limit: 2.5 }), 'CairnError'],
        ['limit NaN', () => listWaitingTasks(store, { limit: NaN })],
        ['limit "5"', () => listWaitingTasks(store, { limit: '5' as never }), 'TypeError'],
        ["namespace ''", () => listWaitingTasks(store, { namespace: '' })],
        ['workflow 5', () => listWaitingTasks(store, { workflow: 5 as never })],
        ['runId with a newline', () => listWaitingTasks(store, { runId: 'a\nb' })],
        ['cursor 5', () => listWaitingTasks(store, { cursor: 5 as never })],
        ['an empty cursor', () => listWaitingTasks(store, { cursor: '' })],
      ] as [string, () => unknown, ('TypeError' | 'CairnError' | 'either')?][]
    ).map(([label, fn, type]): Case => [
      `listWaitingTasks: ${label}`,
      fn,
      'INVALID_ARGUMENT',
      type ?? 'either',
    ]),
  ];
  it.each(cases)('refuses %s', async (_l, fn, code, type) => {
    await refused(fn, code, type);
  });

  it('names the parameter each call has: options for the engine, query for listWaitingTasks', async () => {
    await expect(engine.listWaiting({ limit: 0 })).rejects.toThrow(/^options\.limit /);
    await expect(engine.listWaiting({ limit: '5' as never })).rejects.toThrow(/^options\.limit /);
    await expect(engine.listWaiting({ workflow: '' })).rejects.toThrow(/options\.workflow/);
    await expect(listWaitingTasks(store, { limit: 0 })).rejects.toThrow(/^query\.limit /);
  });
});

describe('engine.resumeTask()', () => {
  const cases: Case[] = [
    ...badIds.flatMap(([label, id, code, type]): Case[] => [
      [
        `runId ${label}`,
        () => engine.resumeTask(id as string, 'approve', { ok: true }),
        code,
        type,
      ],
      [
        `taskId ${label}`,
        () => engine.resumeTask(ids.paused, id as string, { ok: true }),
        code,
        type,
      ],
    ]),
    ['an unknown run', () => engine.resumeTask('nope', 'approve', { ok: true }), 'NOT_FOUND'],
    [
      'data the schema refuses',
      () => engine.resumeTask(ids.paused, 'approve', { ok: 'yes' }),
      'INVALID_RESUME_INPUT',
    ],
    ['no data', () => engine.resumeTask(ids.paused, 'approve', undefined), 'INVALID_RESUME_INPUT'],
    [
      'a __proto__ payload the schema refuses',
      () => engine.resumeTask(ids.paused, 'approve', evil({ ok: 'no' })),
      'INVALID_RESUME_INPUT',
    ],
    [
      'a function as data',
      () => engine.resumeTask(ids.paused, 'approve', () => true),
      'NOT_SERIALIZABLE',
    ],
    [
      'a bigint in the data',
      () => engine.resumeTask(ids.paused, 'approve', { ok: true, n: 1n }),
      'NOT_SERIALIZABLE',
    ],
    [
      'a cycle in the data',
      () => engine.resumeTask(ids.paused, 'approve', cyclic()),
      'NOT_SERIALIZABLE',
    ],
    [
      'data nested 5000 deep',
      () => engine.resumeTask(ids.paused, 'approve', deep(5000)),
      'NOT_SERIALIZABLE',
    ],
    [
      'data over 16 MiB for a waiting task',
      () => engine.resumeTask(ids.paused, 'approve', { ok: true, big: oversized() }),
      'VALUE_TOO_LARGE',
    ],
    [
      'data over 16 MiB for a task not reached yet',
      () => engine.resumeTask(ids.paused, 'later', { big: oversized() }, { keep: true }),
      'VALUE_TOO_LARGE',
    ],
    [
      'a task a run paused on input does not have',
      () => engine.resumeTask(ids.paused, 'aprove', { ok: true }),
      'NOT_WAITING',
      'CairnError',
    ],
    [
      'options.keep "yes"',
      () => engine.resumeTask(ids.paused, 'later', 1, { keep: 'yes' as never }),
      'INVALID_ARGUMENT',
      'TypeError',
    ],
    [
      'data over 16 MiB for a run in memory',
      () => engine.resumeTask(ids.running, 'later', { big: oversized() }),
      'VALUE_TOO_LARGE',
    ],
    [
      'null options',
      () => engine.resumeTask(ids.paused, 'approve', { ok: true }, null as never),
      'INVALID_ARGUMENT',
      'TypeError',
    ],
    [
      'options.by 5',
      () => engine.resumeTask(ids.paused, 'approve', { ok: true }, { by: 5 as never }),
      'INVALID_ARGUMENT',
      'TypeError',
    ],
    [
      'a step that is not a wait',
      () => engine.resumeTask(ids.paused, 'prep', { ok: true }),
      'NOT_WAITING',
      'CairnError',
    ],
    [
      'a task of a completed run',
      () => engine.resumeTask(ids.done, 'a', 1),
      'NOT_WAITING',
      'CairnError',
    ],
    [
      'an unknown task of a completed run',
      () => engine.resumeTask(ids.done, 'nope', 1),
      'NOT_FOUND',
      'CairnError',
    ],
    [
      'an unknown task of a failed run',
      () => engine.resumeTask(ids.failed, 'nope', 1),
      'NOT_FOUND',
      'CairnError',
    ],
    [
      'the running step of a run in memory',
      () => engine.resumeTask(ids.running, 'hold', 1),
      'NOT_WAITING',
      'CairnError',
    ],
  ];
  it.each(cases)('refuses %s', async (_l, fn, code, type) => {
    await refused(fn, code, type);
  });
});

describe('engine.resume(), pause() and cancel()', () => {
  const cases: Case[] = [
    ...badIds.flatMap(([label, id, code, type]): Case[] => [
      [`resume(${label})`, () => engine.resume(id as string), code, type],
      [`pause(${label})`, () => engine.pause(id as string), code, type],
      [`cancel(${label})`, () => engine.cancel(id as string), code, type],
    ]),
    ['resume of an unknown run', () => engine.resume('nope'), 'NOT_FOUND', 'CairnError'],
    ['pause of an unknown run', () => engine.pause('nope'), 'NOT_FOUND', 'CairnError'],
    ['cancel of an unknown run', () => engine.cancel('nope'), 'NOT_FOUND', 'CairnError'],
    ['resume of a completed run', () => engine.resume(ids.done), 'INVALID_TRANSITION'],
    ['pause of a completed run', () => engine.pause(ids.done), 'INVALID_TRANSITION'],
    ['cancel of a completed run', () => engine.cancel(ids.done), 'INVALID_TRANSITION'],
    ['pause of a failed run', () => engine.pause(ids.failed), 'INVALID_TRANSITION'],
    ['cancel of a failed run', () => engine.cancel(ids.failed), 'INVALID_TRANSITION'],
    ['resume of a running run', () => engine.resume(ids.running), 'NOT_PAUSED', 'CairnError'],
    [
      'resume of a waiting run without data',
      () => engine.resume(ids.paused),
      'INVALID_RESUME_INPUT',
    ],
    [
      'resume with data the schema refuses',
      () => engine.resume(ids.paused, { ok: 'yes' }),
      'INVALID_RESUME_INPUT',
    ],
    [
      'resume with keyed data the schema refuses',
      () => engine.resume(ids.paused, { approve: { ok: 1 } }),
      'INVALID_RESUME_INPUT',
    ],
    [
      'resume with a __proto__ payload the schema refuses',
      () => engine.resume(ids.paused, evil()),
      'INVALID_RESUME_INPUT',
    ],
    ['resume with a function', () => engine.resume(ids.paused, () => 1), 'NOT_SERIALIZABLE'],
    ['resume with a cycle', () => engine.resume(ids.paused, cyclic()), 'NOT_SERIALIZABLE'],
    [
      'resume with data over 16 MiB',
      () => engine.resume(ids.paused, { ok: true, big: oversized() }),
      'VALUE_TOO_LARGE',
    ],
    [
      'resume with null options',
      () => engine.resume(ids.paused, { ok: true }, null as never),
      'INVALID_ARGUMENT',
      'TypeError',
    ],
    [
      'resume with options.by 5',
      () => engine.resume(ids.paused, { ok: true }, { by: 5 as never }),
      'INVALID_ARGUMENT',
      'TypeError',
    ],
  ];
  it.each(cases)('refuses %s', async (_l, fn, code, type) => {
    await refused(fn, code, type);
  });
});

describe('engine.on() and off()', () => {
  const cases: Case[] = [
    [
      'an unknown event',
      () => engine.on('run:exploded' as never, () => undefined),
      'INVALID_ARGUMENT',
      'TypeError',
    ],
    [
      'a numeric event',
      () => engine.on(5 as never, () => undefined),
      'INVALID_ARGUMENT',
      'TypeError',
    ],
    [
      'a listener that is a string',
      () => engine.on('run:started', 'f' as never),
      'INVALID_ARGUMENT',
      'TypeError',
    ],
    [
      'off() of an unknown event',
      () => engine.off('nope' as never, () => undefined),
      'INVALID_ARGUMENT',
      'TypeError',
    ],
  ];
  it.each(cases)('refuses %s', async (_l, fn, code, type) => {
    await refused(fn, code, type);
  });
});

describe('durations', () => {
  it.each([
    ['-1s', 'CairnError'],
    ['soon', 'CairnError'],
    ['1y', 'CairnError'],
    ['', 'CairnError'],
    ['11000d', 'CairnError'],
    [-1, 'CairnError'],
    [NaN, 'CairnError'],
    [Infinity, 'CairnError'],
    [{}, 'TypeError'],
    [null, 'TypeError'],
    [true, 'TypeError'],
  ])('toMs(%s) is refused with INVALID_ARGUMENT', (value, type) => {
    let error: unknown;
    try {
      toMs(value, 'd');
    } catch (e) {
      error = e;
    }
    expect((error as { code?: unknown }).code).toBe('INVALID_ARGUMENT');
    expect(error).toBeInstanceOf(type === 'TypeError' ? TypeError : CairnError);
  });

  it('accepts numbers and unit strings', () => {
    expect(toMs(0, 'd')).toBe(0);
    expect(toMs('1.5s', 'd')).toBe(1500);
    expect(toMs('48h', 'd')).toBe(172_800_000);
    expect(toMs('1w', 'd')).toBe(604_800_000);
  });

  it.each([[-1], [NaN], [Infinity], ['5']])('ManualClock.advance(%s) is refused', async (ms) => {
    const clock = new ManualClock();
    const now = clock.now();
    await expect(clock.advance(ms as never)).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
    expect(clock.now()).toBe(now);
  });

  it.each([
    ['a sleep of -1s', (ctx: Ctx) => ctx.sleep('nap', '-1s')],
    ["a sleep of 'soon'", (ctx: Ctx) => ctx.sleep('nap', 'soon' as never)],
    ['a sleep of NaN', (ctx: Ctx) => ctx.sleep('nap', NaN)],
    [
      "a wait timeout of 'soon'",
      (ctx: Ctx) => ctx.waitForInput('w', { schema: z.unknown(), timeout: 'soon' as never }),
    ],
    [
      'a wait timeout of -5',
      (ctx: Ctx) => ctx.waitForInput('w', { schema: z.unknown(), timeout: -5 }),
    ],
    ["a step timeout of '-1s'", (ctx: Ctx) => ctx.step('s', () => 1, { timeout: '-1s' })],
    [
      "a retry delay of 'soon'",
      (ctx: Ctx) => ctx.step('s', () => 1, { retry: { initialDelay: 'soon' as never } }),
    ],
  ])('fails the run on %s with INVALID_ARGUMENT, recording no task', async (_l, call) => {
    const wf = workflow('bad-duration', { input: z.any(), run: async (ctx) => call(ctx) });
    const opened = await open({ workflows: [wf], clock: new ManualClock() });
    try {
      const handle = await opened.engine.start(wf, {});
      await rejectsWithCode(handle.result(), 'INVALID_ARGUMENT');
      expect(await opened.engine.tasks(handle.id)).toEqual([]);
    } finally {
      await opened.engine.close();
      await opened.store.close();
    }
  });
});

type Ctx = Parameters<Parameters<typeof workflow>[1]['run']>[0];

describe('prototype-pollution payloads that are accepted', () => {
  it('never reach Object.prototype: input, step results, resume data and replay', async () => {
    const hang = deferred();
    // What the workflow does with what it got: Object.assign with an own `__proto__` key sets
    // the prototype of the workflow's own object (never Object.prototype).
    const merge = (sources: Record<string, unknown>[]) => {
      const merged: Record<string, unknown> = {};
      for (const source of sources) Object.assign(merged, source);
      return { keys: Object.keys(merged).sort(), polluted: merged.polluted ?? null };
    };
    const parse = () => JSON.parse('{"__proto__":{"polluted":3},"ok":1}') as unknown;
    const make = (first: boolean) =>
      workflow('pollute', {
        input: z.any(),
        run: async (ctx, i: unknown) => {
          const echoed = await ctx.step('echo', () => i);
          const parsed = await ctx.step('parse', parse);
          const given = await ctx.waitForInput('give', { schema: z.unknown() });
          await ctx.step('hang', () => (first ? hang.promise : null));
          return merge([echoed, parsed, given] as Record<string, unknown>[]);
        },
      });
    const clock = new ManualClock();
    const first = await open({ workflows: [make(true)], clock });
    const handle = await first.engine.start('pollute', evil({ x: 1 }));
    await until(async () => (await handle.status()) === 'paused', 'the wait');
    await first.engine.resumeTask(handle.id, 'give', evil({ y: 2 }));
    await until(async () => (await first.store.getTask(handle.id, 'hang')) !== undefined);
    assertClean();
    const second = await crash(first.store, { workflows: [make(false)], clock });
    try {
      const result = (await second.engine.handle(handle.id).result()) as {
        keys: string[];
        polluted: unknown;
      };
      assertClean();
      // The replay read back what the first execution got, and did what it would have done.
      expect(result).toEqual(merge([evil({ x: 1 }), parse(), evil({ y: 2 })] as never));
      expect(result.keys).toEqual(expect.arrayContaining(['ok', 'x', 'y']));
      for (const task of await second.engine.tasks(handle.id)) {
        expect(Object.getPrototypeOf(task)).toBe(Object.prototype);
      }
    } finally {
      await second.engine.close();
      await second.store.close();
    }
    assertClean();
  });

  it('treats own __proto__ keys of start options as no options at all', async () => {
    const before = (await store.listRuns({ limit: 1000 })).items.length;
    const handle = await engine.start(
      simple,
      { n: 2 },
      JSON.parse('{"__proto__":{"id":"","namespace":""}}') as never,
    );
    expect(await handle.result()).toBe(3);
    const run = await handle.run();
    expect(run.namespace).toBe('default');
    expect(run.id).not.toBe('');
    expect((await store.listRuns({ limit: 1000 })).items).toHaveLength(before + 1);
    assertClean();
  });
});

describe('unknown options', () => {
  /** Refused with INVALID_ARGUMENT naming the option and the one it is closest to. */
  async function misspelt(fn: () => unknown, option: string, suggestion?: string): Promise<void> {
    await refused(fn, 'INVALID_ARGUMENT', 'CairnError');
    const error = await rejectsWithCode((async () => fn())(), 'INVALID_ARGUMENT');
    expect((error as CairnError).details).toMatchObject({ option });
    expect((error as CairnError).details?.suggestion).toBe(suggestion);
  }
  const input = z.object({});
  const run = async (): Promise<null> => null;
  const cases: [string, () => unknown, string, (string | undefined)?][] = [
    [
      'workflow()',
      () => workflow('w', { input, run, versoin: '2' } as never),
      'versoin',
      'version',
    ],
    [
      'createEngine()',
      () => createEngine({ store, workflows, timeoutt: 5 } as never),
      'timeoutt',
      undefined,
    ],
    [
      'createEngine() retry',
      () => createEngine({ store, workflows, retry: { attempt: 2 } } as never),
      'attempt',
      'attempts',
    ],
    [
      'createEngine() concurency',
      () => createEngine({ store, workflows, concurency: 2 } as never),
      'concurency',
      'concurrency',
    ],
    ['start()', () => engine.start(simple, { n: 1 }, { tag: ['a'] } as never), 'tag', 'tags'],
    [
      'resumeTask()',
      () => engine.resumeTask(ids.paused, 'approve', { ok: true }, { bye: 'x' } as never),
      'bye',
      'by',
    ],
    [
      'resume()',
      () => engine.resume(ids.paused, { ok: true }, { keep: true } as never),
      'keep',
      undefined,
    ],
    ['listWaiting()', () => engine.listWaiting({ limt: 5 } as never), 'limt', 'limit'],
    [
      'listWaitingTasks()',
      () => listWaitingTasks(store, { namespcae: 'x' } as never),
      'namespcae',
      'namespace',
    ],
    ['listRuns()', () => engine.listRuns({ stauts: 'paused' } as never), 'stauts', 'status'],
    ['usage()', () => engine.usage({ by: 'model', snice: 1 } as never), 'snice', 'since'],
    [
      'store.readLogs()',
      () => engine.store.readLogs(ids.done, { afterseq: 1 } as never),
      'afterseq',
      'afterSeq',
    ],
    [
      'diagnose()',
      () => diagnose(store, ids.done, { maxRecovery: 1 } as never),
      'maxRecovery',
      'maxRecoveries',
    ],
    ['runDetail()', () => runDetail(store, ids.done, { logs: 1 } as never), 'logs', undefined],
    [
      'store.prune()',
      () => store.prune({ olderThan: 0, dryrun: true } as never),
      'dryrun',
      'dryRun',
    ],
    [
      'store.exportRuns()',
      () => store.exportRuns(() => undefined, { filter: { workflw: 'simple' } } as never),
      'workflw',
      'workflow',
    ],
    [
      'store.checkpoint()',
      () => store.checkpoint({}, { durabel: true } as never),
      'durabel',
      'durable',
    ],
    [
      'new LevelStore()',
      () => new LevelStore({ durabilty: 'strict' } as never),
      'durabilty',
      'durability',
    ],
    [
      'new MemoryStore()',
      () => new MemoryStore({ onLogDamag: 'salvage' } as never),
      'onLogDamag',
      'onLogDamage',
    ],
  ];
  it.each(cases)('%s refuses a misspelt option', async (_l, fn, option, suggestion) => {
    await misspelt(fn, option, suggestion);
  });

  it('accepts a known option whose value is undefined', async () => {
    expect((await engine.listRuns({ status: undefined, limit: 1 } as never)).items).toHaveLength(1);
  });

  it.each([
    ['step options', (ctx: Ctx) => ctx.step('s', () => 1, { timeoutt: 5 } as never), 'timeoutt'],
    [
      'retry options of a step',
      (ctx: Ctx) => ctx.step('s', () => 1, { retry: { maxdelay: 5 } } as never),
      'maxdelay',
    ],
    [
      'wait options',
      (ctx: Ctx) => ctx.waitForInput('w', { schema: z.unknown(), timout: '1h' } as never),
      'timout',
    ],
    [
      'child options',
      (ctx: Ctx) => ctx.child('c', simple, { n: 1 }, { tag: ['x'] } as never),
      'tag',
    ],
  ])(
    'fails the run on misspelt %s with INVALID_ARGUMENT, recording no task',
    async (_l, call, option) => {
      const wf = workflow('misspelt', { input: z.any(), run: async (ctx) => call(ctx) });
      const opened = await open({ workflows: [wf, simple], clock: new ManualClock() });
      try {
        const handle = await opened.engine.start(wf, {});
        const error = await rejectsWithCode(handle.result(), 'INVALID_ARGUMENT');
        expect((error as CairnError).details).toMatchObject({ option });
        expect(await opened.engine.tasks(handle.id)).toEqual([]);
      } finally {
        await opened.engine.close();
        await opened.store.close();
      }
    },
  );
});
