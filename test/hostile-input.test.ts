import { isDeepStrictEqual } from 'node:util';
import fc from 'fast-check';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import {
  CairnError,
  MAX_DEPTH,
  MemoryStore,
  assertSerializable,
  roundTrip,
  type Run,
} from '@cairn/store';
import { sameValue } from '@cairn/store/suite';
import {
  ManualClock,
  createEngine,
  workflow,
  type Engine,
  type WorkflowContext,
} from '@cairn/core';
import {
  anyValue,
  attempt,
  hostileCursor,
  hostileDuration,
  hostileId,
  hostileLimit,
  hostileOptions,
  jsonish,
  nested,
  pollutionPayload,
  prototypeIsClean,
  refusalCode,
  settle,
  snapshotOpen,
  until,
  type Outcome,
} from './helpers/hostile.js';
import { makeRun, makeTask } from './helpers/records.js';

/**
 * Hostile input: random and malformed values, ids, options and durations fed to every public
 * call of the engine, the workflow context and the store. Each call succeeds, or refuses
 * with a `CairnError` of a stable code (or a `TypeError` with code `INVALID_ARGUMENT`), and
 * a refused call leaves every stored byte as it was. Nothing crashes, nothing rejects
 * unhandled, and nothing reaches `Object.prototype`.
 *
 * `CAIRN_TEST_SEED` replays a failing run (fast-check prints the seed and path).
 */

const SEED = process.env.CAIRN_TEST_SEED ? Number(process.env.CAIRN_TEST_SEED) : undefined;
const params = (numRuns: number): fc.Parameters<unknown> => ({
  numRuns,
  ...(SEED === undefined ? {} : { seed: SEED }),
  // Counterexamples hold strings of 100,000 characters: the report is cut short.
  asyncReporter: async (details) => {
    if (!details.failed) return;
    const report = fc.defaultReportMessage(details) ?? 'the property failed';
    throw new Error(report.length > 3000 ? `${report.slice(0, 3000)} …` : report, {
      cause: details.errorInstance,
    });
  },
});
/** Small, so "huge" strings (up to 120,000 characters) cross it. */
const MAX_RECORD_BYTES = 64 * 1024;
const DECISION = z.object({ approved: z.boolean(), by: z.string().max(100) });

// Workflows whose schemas range from strict to permissive.
const approval = workflow('approval', {
  input: z.object({ id: z.string().max(50), amount: z.number().positive() }),
  async run(ctx, input) {
    const decision = await ctx.waitForInput('approve', { schema: DECISION });
    return { id: input.id, approved: decision.approved };
  },
});
const anything = workflow('anything', {
  input: z.any(),
  async run(ctx) {
    const data: unknown = await ctx.waitForInput('a', { schema: z.any() });
    return { type: typeof data };
  },
});
const record = workflow('record', {
  input: z.record(z.string(), z.unknown()),
  async run(ctx) {
    const data = await ctx.waitForInput('r', { schema: z.record(z.string(), z.unknown()) });
    return { keys: Object.keys(data).length };
  },
});
const loose = workflow('loose', {
  input: z.looseObject({ n: z.number().optional() }),
  async run(ctx) {
    const data = await ctx.waitForInput('l', {
      schema: z.looseObject({ n: z.number().optional() }),
    });
    return { n: data.n ?? null };
  },
});
const numbers = workflow('numbers', {
  input: z.array(z.number()).max(8),
  async run(_ctx, input) {
    return input.length;
  },
});

/** A wait workflow with an input it accepts and a payload its wait accepts. */
const WAITING = [
  {
    wf: approval,
    input: { id: 'e-1', amount: 5 },
    taskId: 'approve',
    valid: { approved: true, by: 'ann' },
  },
  { wf: anything, input: null, taskId: 'a', valid: 1 },
  { wf: record, input: {}, taskId: 'r', valid: { k: 1 } },
  { wf: loose, input: {}, taskId: 'l', valid: { n: 2 } },
] as const;
const ALL = [approval, anything, record, loose, numbers];

// --- the trap for unhandled rejections and uncaught exceptions ------------------------------

const escaped: unknown[] = [];
const trap = (reason: unknown): void => {
  escaped.push(reason);
};
beforeAll(() => {
  process.on('unhandledRejection', trap);
  process.on('uncaughtException', trap);
});
afterEach(() => {
  expect(escaped).toEqual([]);
  expect(prototypeIsClean()).toBe(true);
});
afterAll(() => {
  process.off('unhandledRejection', trap);
  process.off('uncaughtException', trap);
});

// --- an engine on a memory store, and the rule every call must keep -------------------------

let store: MemoryStore;
let engine: Engine;
let clock: ManualClock;
const problems: CairnError[] = [];

async function openEngine(): Promise<void> {
  store = new MemoryStore({ maxRecordBytes: MAX_RECORD_BYTES });
  clock = new ManualClock();
  engine = await createEngine({
    store,
    clock,
    workflows: ALL,
    on: { problem: (e) => problems.push(e.error) },
  });
}

async function closeEngine(): Promise<void> {
  await engine.close();
  await store.close();
  expect(problems).toEqual([]);
}

/** Waits until no run is executing in memory (every run is paused or ended). */
async function quiesce(): Promise<void> {
  await until(() => engine.activeRuns === 0, 'the engine to go quiet');
  await settle();
}

/**
 * Calls `fn` on a quiet engine: it must succeed, or refuse fairly and leave the store
 * exactly as it was (compared key by key, value by value).
 */
async function fairCall<T>(fn: () => T | Promise<T>): Promise<Outcome<Awaited<T>>> {
  await quiesce();
  const before = await snapshotOpen(store);
  const outcome = await attempt(fn);
  await quiesce();
  if (!outcome.ok) expect(await snapshotOpen(store)).toEqual(before);
  return outcome;
}

/** Starts a run that waits for input, and lets it pause. */
async function pausedRun(which: (typeof WAITING)[number]): Promise<string> {
  const handle = await engine.start(which.wf as never, which.input as never);
  await quiesce();
  expect(await handle.status()).toBe('paused');
  return handle.id;
}

// --- values --------------------------------------------------------------------------------------

describe('values', () => {
  it('any value is refused with NOT_SERIALIZABLE naming where, or read back exactly', () => {
    fc.assert(
      fc.property(anyValue, (value) => {
        const refused = attemptSync(() => assertSerializable(value, 'value'));
        if (refused === null) {
          expect(sameValue(roundTrip(value), value)).toBe(true);
          return;
        }
        expect(refused).toBeInstanceOf(CairnError);
        expect((refused as CairnError).code).toBe('NOT_SERIALIZABLE');
        expect((refused as CairnError).details).toEqual({
          path: expect.stringMatching(/^value/) as string,
        });
      }),
      { numRuns: 1000 },
    );
  });
});

function attemptSync(fn: () => void): unknown {
  try {
    fn();
    return null;
  } catch (error) {
    return error;
  }
}

// --- workflow inputs ---------------------------------------------------------------------------

describe('workflow inputs', () => {
  beforeEach(openEngine);
  afterEach(closeEngine);

  it('every input is started or refused, with the store unchanged; starting again is idempotent', async () => {
    let n = 0;
    await fc.assert(
      fc.asyncProperty(fc.constantFrom(...ALL), anyValue, async (wf, input) => {
        const id = `in-${n++}`;
        const first = await fairCall(() => engine.start(wf as never, input as never, { id }));
        if (!first.ok) {
          expect(['INVALID_INPUT', 'NOT_SERIALIZABLE', 'VALUE_TOO_LARGE']).toContain(first.code);
          return;
        }
        const run = await engine.get(id);
        expect(['paused', 'completed']).toContain(run.status);
        // An object without a prototype is read back without one.
        expect(Object.getPrototypeOf(run.input ?? {}) ?? {}).not.toHaveProperty('polluted');
        // The same id and input again returns the existing run: the input is compared as stored.
        const again = await fairCall(() => engine.start(wf as never, input as never, { id }));
        expect(again.ok && again.value.id).toBe(id);
      }),
      params(150),
    );
  });

  it('refuses input nested deeper than MAX_DEPTH with NOT_SERIALIZABLE, and stores it up to that', async () => {
    const deep = await fairCall(() => engine.start(anything, nested(MAX_DEPTH + 1)));
    expect(deep.ok ? 'started' : deep.code).toBe('NOT_SERIALIZABLE');
    const deeper = await fairCall(() => engine.start(anything, nested(50_000)));
    expect(deeper.ok ? 'started' : deeper.code).toBe('NOT_SERIALIZABLE');
    const fine = await fairCall(() => engine.start(anything, nested(MAX_DEPTH - 1)));
    expect(fine.ok).toBe(true);
  });

  it('starting again with -0, a __proto__ key, bytes or a sparse array returns the same run', async () => {
    const inputs: unknown[] = [
      -0,
      { x: -0 },
      pollutionPayload(),
      new Uint8Array([1, 2, 3]),
      [, 1], // eslint-disable-line no-sparse-arrays
      { a: undefined },
    ];
    for (const [i, input] of inputs.entries()) {
      const handle = await engine.start(anything, input, { id: `same-${i}` });
      const again = await engine.start(anything, input, { id: `same-${i}` });
      expect(again.id).toBe(handle.id);
      expect((await engine.get(handle.id)).input).toEqual(roundTrip(input));
      // Other input under the same id is still a conflict.
      const other = await attempt(() => engine.start(anything, { other: i }, { id: `same-${i}` }));
      expect(other.ok ? 'started' : other.code).toBe('CONFLICT');
    }
  });
});

// --- resume payloads -------------------------------------------------------------------------

describe('resume payloads', () => {
  beforeEach(openEngine);
  afterEach(closeEngine);

  // Mostly no options, so that most cases are about the payload.
  const resumeOptions = fc.oneof(
    { weight: 3, arbitrary: fc.constant(undefined) },
    { weight: 1, arbitrary: hostileOptions({ by: fc.string({ maxLength: 20 }) }) },
  );

  it('resumeTask and resume accept what the schema accepts; a refusal changes nothing', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom(...WAITING),
        anyValue,
        resumeOptions,
        fc.boolean(),
        async (which, data, options, whole) => {
          const runId = await pausedRun(which);
          const outcome = await fairCall((): Promise<unknown> =>
            whole
              ? engine.resume(runId, data, options as never)
              : engine.resumeTask(runId, which.taskId, data, options as never),
          );
          const run = await engine.get(runId);
          if (outcome.ok) {
            expect(run.status).toBe('completed');
            const [task] = (await engine.tasks(runId)).filter((t) => t.taskId === which.taskId);
            expect(task!.status).toBe('completed');
            return;
          }
          expect(run.status).toBe('paused');
          // A refused payload leaves the run waiting: a good one still resumes it.
          await engine.resumeTask(runId, which.taskId, which.valid);
          await quiesce();
          expect((await engine.get(runId)).status).toBe('completed');
        },
      ),
      params(150),
    );
  });

  it('a payload too large to store is VALUE_TOO_LARGE, and the run still waits (in memory or not)', async () => {
    const huge = 'x'.repeat(MAX_RECORD_BYTES + 10);
    for (const whole of [false, true]) {
      const runId = await pausedRun(WAITING[1]);
      const refused = await fairCall((): Promise<unknown> =>
        whole ? engine.resume(runId, huge) : engine.resumeTask(runId, 'a', huge),
      );
      expect(refused.ok ? 'resumed' : refused.code).toBe('VALUE_TOO_LARGE');
      expect((await engine.get(runId)).status).toBe('paused');
      const byTooLong = await fairCall(() =>
        engine.resumeTask(runId, 'a', 1, { by: 'b'.repeat(MAX_RECORD_BYTES) }),
      );
      expect(byTooLong.ok ? 'resumed' : byTooLong.code).toBe('VALUE_TOO_LARGE');
      await engine.resumeTask(runId, 'a', 'fine');
      await quiesce();
      expect((await engine.get(runId)).status).toBe('completed');
    }
  });

  it('resume() with an operator pause and a payload too large keeps the pause as well', async () => {
    const runId = await pausedRun(WAITING[1]);
    await engine.pause(runId);
    const refused = await fairCall(() => engine.resume(runId, 'x'.repeat(MAX_RECORD_BYTES + 10)));
    expect(refused.ok ? 'resumed' : refused.code).toBe('VALUE_TOO_LARGE');
    expect(await engine.get(runId)).toMatchObject({ status: 'paused', pauseRequested: true });
    await engine.resume(runId, 'fine');
    await quiesce();
    expect((await engine.get(runId)).status).toBe('completed');
  });

  it('resume() refuses a `by` that is not a string before anything happens', async () => {
    const runId = await pausedRun(WAITING[0]);
    for (const by of [123, null, {}, ['a']]) {
      const outcome = await fairCall(() => engine.resume(runId, WAITING[0].valid, { by } as never));
      expect(outcome.ok ? 'resumed' : outcome.code).toBe('TypeError');
    }
    expect((await engine.get(runId)).status).toBe('paused');
  });
});

// --- ids and names ---------------------------------------------------------------------------

describe('ids and names', () => {
  beforeEach(openEngine);
  afterEach(closeEngine);

  type Call = (a: unknown, b: unknown, data: unknown) => unknown;
  const q = (x: unknown): never => x as never;
  const CALLS: Record<string, Call> = {
    get: (a) => engine.get(q(a)),
    tasks: (a) => engine.tasks(q(a)),
    handle: async (a) => engine.handle(q(a)).status(),
    pause: (a) => engine.pause(q(a)),
    cancel: (a) => engine.cancel(q(a)),
    resume: (a, _b, data) => engine.resume(q(a), data),
    resumeTask: (a, b, data) => engine.resumeTask(q(a), q(b), data),
    'start by name': (a) => engine.start(q(a), q({ id: 'x', amount: 1 })),
    'start with id': (a) => engine.start(approval, { id: 'x', amount: 1 }, { id: q(a) }),
    'start with namespace': (a) => engine.start(numbers, [1], { namespace: q(a) }),
    'start with tags': (a, b) => engine.start(numbers, [], { tags: q([a, b]) }),
    'listRuns by workflow': (a) => engine.listRuns({ workflow: q(a) }),
    'listRuns by namespace and status': (a, b) =>
      engine.listRuns({ namespace: q(a), status: q(b) }),
    'listWaiting by namespace': (a) => engine.listWaiting({ namespace: q(a) }),
    'listWaiting by workflow': (a) => engine.listWaiting({ workflow: q(a) }),
    'listWaiting by run': (a) => engine.listWaiting({ runId: q(a) }),
    'on and off': (a, _b, data) => engine.on(q(a), q(data))(),
    workflow: (a, b) =>
      workflow(q(a), { version: q(b), input: z.any(), run: async () => undefined }),
    'store.getRun': (a) => store.getRun(q(a)),
    'store.getTask': (a, b) => store.getTask(q(a), q(b)),
    'store.listTasks': (a) => store.listTasks(q(a)),
    'store.putInbox': (a, b, data) => store.putInbox(q(a), q(b), data),
    'store.getInbox': (a, b) => store.getInbox(q(a), q(b)),
    'store.takeInbox': (a, b) => store.takeInbox(q(a), q(b)),
    'store.listInbox': (a) => store.listInbox(q(a)),
    'store.deleteRun': (a) => store.deleteRun(q(a)),
    'store.getMeta': (a) => store.getMeta(q(a)),
    'store.putMeta': (a, _b, data) => store.putMeta(q(a), data),
    'store.readLogs': (a) => store.readLogs(q(a)),
  };

  it('every call with any id succeeds or refuses, with the store unchanged', async () => {
    const existing: string[] = [];
    for (const which of WAITING) existing.push(await pausedRun(which));
    const id = fc.oneof(
      { weight: 4, arbitrary: hostileId },
      { weight: 1, arbitrary: fc.constantFrom(...existing, ...WAITING.map((w) => w.taskId)) },
      { weight: 1, arbitrary: fc.constantFrom('approval', 'numbers', 'default', 'paused') },
    );
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom(...Object.keys(CALLS)),
        id,
        id,
        jsonish,
        async (name, a, b, data) => {
          await fairCall(() => CALLS[name]!(a, b, data));
        },
      ),
      params(400),
    );
    // Whatever was accepted is readable: no record the engine wrote is damaged.
    const report = await store.verify();
    expect(report.problems.filter((p) => p.kind === 'corrupt')).toEqual([]);
  });

  it('a 10,000-character id, an empty one and one with the key separator are refused everywhere', async () => {
    for (const bad of ['x'.repeat(10_000), '', 'a\x00b', 'a\x01', '\x7f', 'a\nb']) {
      for (const [name, call] of Object.entries(CALLS)) {
        // Tags are free text (up to 200 characters), not ids; event names are not stored.
        if (['on and off', 'start by name', 'start with tags'].includes(name)) continue;
        const outcome = await fairCall(() => call(bad, bad, 1));
        expect([name, outcome.ok ? 'accepted' : outcome.code]).toEqual([name, 'INVALID_ARGUMENT']);
      }
    }
  });

  it('an id, a name or a tag holding half of a surrogate pair is refused (a key is UTF-8)', async () => {
    const cut = 'Thanks 👍'.slice(0, 8);
    for (const [name, call] of Object.entries(CALLS)) {
      if (['on and off', 'start by name'].includes(name)) continue;
      const outcome = await fairCall(() => call(cut, cut, 1));
      expect([name, outcome.ok ? 'accepted' : outcome.code]).toEqual([name, 'INVALID_ARGUMENT']);
    }
  });
});

// --- options objects ---------------------------------------------------------------------------

describe('options objects', () => {
  beforeEach(openEngine);
  afterEach(closeEngine);

  const statusArb = fc.constantFrom('queued', 'running', 'paused', 'completed', 'failed', 'x', '');
  const startOptions = hostileOptions({
    id: hostileId,
    namespace: hostileId,
    tags: fc.oneof(
      fc.array(fc.string({ maxLength: 10 }), { maxLength: 5 }),
      fc.array(fc.string(), { minLength: 65, maxLength: 66 }),
      fc.constant(['t'.repeat(201)]),
    ),
  });
  const listRunsQuery = hostileOptions({
    status: statusArb,
    workflow: fc.oneof(hostileId, fc.constantFrom('approval', 'numbers')),
    namespace: fc.oneof(hostileId, fc.constant('default')),
    limit: hostileLimit,
    cursor: hostileCursor,
  });
  const listWaitingOptions = hostileOptions({
    namespace: fc.oneof(hostileId, fc.constant('default')),
    workflow: fc.oneof(hostileId, fc.constantFrom('approval', 'anything')),
    runId: hostileId,
    limit: hostileLimit,
    cursor: hostileCursor,
  });

  it('start, listRuns and listWaiting take any options object, and pages stay whole', async () => {
    for (const which of WAITING) await pausedRun(which);
    await engine.start(numbers, [1, 2]);
    await fc.assert(
      fc.asyncProperty(
        startOptions,
        listRunsQuery,
        listWaitingOptions,
        async (startOpts, query, waitingOpts) => {
          await fairCall(() => engine.start(numbers, [3], startOpts as never));
          const runs = await fairCall(() => engine.listRuns(query as never));
          if (runs.ok) {
            expect(runs.value.corrupt).toEqual([]);
            // A cursor handed out works as a cursor.
            if (runs.value.cursor !== null) {
              const next = await engine.listRuns({
                ...(query as object),
                cursor: runs.value.cursor,
              });
              expect(next.corrupt).toEqual([]);
            }
          }
          const waiting = await fairCall(() => engine.listWaiting(waitingOpts as never));
          if (waiting.ok) expect(waiting.value.corrupt).toEqual([]);
        },
      ),
      params(150),
    );
  });

  it('createEngine takes any options object, and refuses bad ones before opening the store', async () => {
    const optionsArb = hostileOptions({
      concurrency: fc.oneof(fc.integer({ min: 1, max: 64 }), hostileLimit),
      maxRecoveries: fc.oneof(fc.integer({ min: 0, max: 20 }), hostileLimit),
      namespace: hostileId,
      retry: fc.oneof(
        fc.integer({ min: 1, max: 10 }),
        hostileOptions({
          attempts: hostileLimit,
          initialDelay: hostileDuration,
          maxDelay: hostileDuration,
          factor: fc.oneof(fc.double({ min: 1, max: 100 }), fc.double()),
          jitter: fc.oneof(fc.double({ min: 0, max: 1 }), fc.double()),
          retryable: fc.oneof(
            fc.constant(() => true),
            anyValue,
          ),
        }),
      ),
      clock: fc.oneof(fc.constant(new ManualClock()), fc.constant({ now: () => 0 })),
      recover: fc.boolean(),
      on: fc.oneof(
        fc.constant({ problem: () => undefined }),
        fc.dictionary(fc.string({ maxLength: 8 }), anyValue, { maxKeys: 2 }),
      ),
      workflows: fc.oneof(
        fc.constant([approval, numbers]),
        fc.constant([approval, { name: 'fake' }]),
        fc.constant([
          approval,
          workflow('approval', { input: z.any(), run: async () => undefined }),
        ]),
      ),
    });
    await fc.assert(
      fc.asyncProperty(optionsArb, fc.boolean(), async (options, withStore) => {
        const own = new MemoryStore();
        const opts =
          typeof options === 'object' && options !== null && !Array.isArray(options)
            ? { workflows: [], ...options, store: withStore ? own : 'not a store' }
            : options;
        const outcome = await attempt(() => createEngine(opts as never));
        if (outcome.ok) {
          await outcome.value.close();
          expect(own.status).toBe('open');
        } else {
          // Refused before the store was opened (so nothing was created at a default path).
          expect(own.status).toBe('closed');
        }
        await own.close();
      }),
      params(150),
    );
  });
});

// --- the workflow context: step, sleep, wait, child and log options --------------------------

describe('the workflow context', () => {
  type Probe = (ctx: WorkflowContext) => Promise<unknown>;
  const probes: Probe[] = [];
  const child = workflow('child', {
    input: z.object({ n: z.number() }),
    async run(_ctx, input) {
      return input.n * 2;
    },
  });
  /** Runs probe number `input.probe`; a fair refusal is returned as its code, anything else fails the run. */
  const probing = workflow('probing', {
    input: z.object({ probe: z.number().int() }),
    async run(ctx, input) {
      try {
        await probes[input.probe]!(ctx);
        return { ok: true };
      } catch (error) {
        return { code: refusalCode(error) };
      }
    },
  });

  let ctxStore: MemoryStore;
  let ctxEngine: Engine;
  let ctxClock: ManualClock;
  const warnings: string[] = [];
  beforeEach(async () => {
    ctxStore = new MemoryStore({ maxRecordBytes: MAX_RECORD_BYTES });
    ctxClock = new ManualClock();
    ctxEngine = await createEngine({
      store: ctxStore,
      clock: ctxClock,
      workflows: [probing, child],
      on: { warning: (w) => warnings.push(w.message) },
    });
  });
  afterEach(async () => {
    await ctxEngine.close();
    await ctxStore.close();
  });

  /** Starts a probe and drives it to its end: advances the clock past sleeps, answers waits. */
  async function runProbe(probe: Probe): Promise<Run> {
    probes.push(probe);
    const handle = await ctxEngine.start(probing, { probe: probes.length - 1 });
    for (let i = 0; i < 20; i++) {
      await settle(5);
      const run = await handle.run();
      if (run.status === 'completed' || run.status === 'failed' || run.status === 'cancelled')
        return run;
      if (run.status === 'paused') {
        for (const task of (await ctxEngine.listWaiting({ runId: run.id })).items)
          await ctxEngine.resumeTask(run.id, task.taskId, { ok: true });
      } else {
        await ctxClock.advance(11 * 365 * 86_400_000);
      }
    }
    throw new Error('the probe did not end');
  }

  /** The run ends completed: the call inside it succeeded or was refused fairly. */
  async function expectFair(probe: Probe): Promise<void> {
    const run = await runProbe(probe);
    expect({ status: run.status, error: run.error?.message }).toEqual({
      status: 'completed',
      error: undefined,
    });
  }

  const stepOptions = hostileOptions({
    retry: fc.oneof(
      fc.integer({ min: -2, max: 1002 }),
      hostileOptions({
        attempts: hostileLimit,
        initialDelay: hostileDuration,
        maxDelay: hostileDuration,
        factor: fc.double(),
        jitter: fc.double(),
        retryable: fc.oneof(
          fc.constant(() => false),
          anyValue,
        ),
      }),
    ),
    timeout: hostileDuration,
    meta: fc.oneof(
      fc.dictionary(fc.string({ maxLength: 5 }), jsonish, { maxKeys: 3 }),
      fc.constant(() => ({ model: 'm' })),
      fc.constant(() => 5),
      fc.constant(() => ({ fn: () => 1 })),
      fc.constant(pollutionPayload()),
    ),
  });
  const waitOptions = hostileOptions({
    schema: fc.oneof(fc.constant(z.object({ ok: z.boolean() })), anyValue),
    timeout: hostileDuration,
    onTimeout: fc.oneof(
      fc.constant('fail'),
      fc.constant({ default: { ok: false } }),
      fc.constant({ default: () => 1 }),
      anyValue,
    ),
    description: fc.oneof(fc.string({ maxLength: 30 }), anyValue),
  });
  const childOptions = hostileOptions({
    tags: fc.oneof(fc.array(fc.string({ maxLength: 5 }), { maxLength: 3 }), anyValue),
  });
  const name = fc.oneof(hostileId, fc.constantFrom('s', 'step#2', '$now', 'a'.repeat(101)));

  it('a step, sleep, wait or child name holding half of a surrogate pair is refused', async () => {
    const cut = 'Thanks 👍'.slice(0, 8);
    const calls: Probe[] = [
      (ctx) => ctx.step(cut, () => 1),
      (ctx) => ctx.sleep(cut, '1s'),
      (ctx) => ctx.waitForInput(cut, { schema: z.any() }),
      (ctx) => ctx.child(cut, child, { n: 1 }),
    ];
    for (const probe of calls)
      expect((await runProbe(probe)).output).toEqual({ code: 'INVALID_ARGUMENT' });
  });

  it('step, sleep, waitForInput, child and log with any name and options', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom('step', 'sleep', 'wait', 'child', 'log'),
        name,
        stepOptions,
        hostileDuration,
        waitOptions,
        fc.tuple(anyValue, childOptions, fc.constantFrom('info', 'warn', 'loud', 5)),
        async (call, id, stepOpts, duration, waitOpts, [value, childOpts, level]) => {
          await expectFair(async (ctx) => {
            const n = id as never;
            switch (call) {
              case 'step':
                return ctx.step(n, () => 'done', stepOpts as never);
              case 'sleep':
                return ctx.sleep(n, duration as never);
              case 'wait':
                return ctx.waitForInput(n, waitOpts as never);
              case 'child':
                return ctx.child(n, child, value as never, childOpts as never);
              default:
                return ctx.log(n, value, level as never);
            }
          });
        },
      ),
      params(120),
    );
  });

  it('a step that throws anything at all fails with a CairnError, and the run goes on', async () => {
    await fc.assert(
      fc.asyncProperty(anyValue, async (thrown) => {
        await expectFair((ctx) =>
          ctx.step(
            'throws',
            () => {
              throw thrown;
            },
            { retry: 1 },
          ),
        );
      }),
      params(40),
    );
  });

  it('a step whose result cannot be stored fails, and the run goes on', async () => {
    await fc.assert(
      fc.asyncProperty(fc.oneof(anyValue, fc.constant(nested(MAX_DEPTH + 5))), async (result) => {
        await expectFair((ctx) => ctx.step('returns', () => result, { retry: 1 }));
      }),
      params(40),
    );
  });
});

describe('values too large to store', () => {
  beforeEach(openEngine);
  afterEach(closeEngine);

  it('a workflow result too large to store fails the run with VALUE_TOO_LARGE', async () => {
    const big = workflow('big-result', {
      input: z.number(),
      async run(ctx, n) {
        const part = await ctx.step('part', () => 'y'.repeat(n));
        return part + part;
      },
    });
    const own = new MemoryStore({ maxRecordBytes: MAX_RECORD_BYTES });
    const bigEngine = await createEngine({ store: own, workflows: [big] });
    const handle = await bigEngine.start(big, MAX_RECORD_BYTES / 2 + 10);
    const error = await handle.result().then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(CairnError);
    expect((error as CairnError).code).toBe('VALUE_TOO_LARGE');
    expect(await handle.run()).toMatchObject({
      status: 'failed',
      error: { code: 'VALUE_TOO_LARGE' },
    });
    await bigEngine.close();
    await own.close();
  });
});

// --- the store, called directly -----------------------------------------------------------------

describe('store calls', () => {
  const RUN_FIELDS = Object.keys(makeRun('x'));
  const TASK_FIELDS = [...Object.keys(makeTask('x', 'y')), 'schema', 'timeoutAt', 'wakeAt'];
  const SEEDED = ['r-0', 'r-1', 'r-2'];
  let raw: MemoryStore;
  let fresh = 0;

  beforeEach(async () => {
    raw = new MemoryStore({ maxRecordBytes: MAX_RECORD_BYTES });
    await raw.open();
    for (const [i, id] of SEEDED.entries()) {
      await raw.createRun(makeRun(id, { status: 'running', startedAt: 1, createdAt: 1000 + i }));
      await raw.checkpoint({
        tasks: [
          makeTask(id, 'nap', { kind: 'sleep', status: 'sleeping', wakeAt: 5000 + i }),
          makeTask(id, 'ask', {
            kind: 'wait',
            seq: 1,
            status: 'waiting',
            schema: {},
            timeoutAt: null,
          }),
        ],
      });
      await raw.putInbox(id, 'later', { early: true });
      await raw.appendLogs([{ runId: id, at: 1, level: 'info', message: 'hi', taskId: null }]);
    }
  });
  afterEach(async () => {
    await raw.close();
  });

  /** A record: anything at all, or a valid one with some fields replaced by hostile values. */
  const shape = (fields: string[], make: (id: string) => object): fc.Arbitrary<unknown> =>
    fc.oneof(
      { weight: 1, arbitrary: anyValue },
      {
        weight: 3,
        arbitrary: fc
          .dictionary(fc.constantFrom(...fields, 'extra', '__proto__'), anyValue, { maxKeys: 2 })
          .map((overrides) => ({ ...make(`n-${fresh++}`), ...overrides })),
      },
    );
  const runShape = shape(RUN_FIELDS, (id) => makeRun(id));
  const taskShape = shape(TASK_FIELDS, (id) =>
    makeTask(SEEDED[fresh % SEEDED.length]!, id, { kind: 'sleep', status: 'sleeping', wakeAt: 9 }),
  );
  const id = fc.oneof(hostileId, fc.constantFrom(...SEEDED, 'nap', 'ask', 'later'));
  const logLine = fc.oneof(
    anyValue,
    fc
      .record({
        runId: id,
        at: fc.oneof(fc.nat(), anyValue),
        level: fc.constantFrom('debug', 'info', 'warn', 'error', 'loud'),
        message: fc.oneof(fc.string(), anyValue),
        taskId: fc.oneof(fc.constant(null), id),
        data: anyValue,
      })
      .map((line) => line as unknown),
  );
  type StoreCall = () => unknown;
  const calls = fc.oneof(
    runShape.map(
      (run): StoreCall =>
        () =>
          raw.createRun(run as never),
    ),
    fc
      .tuple(
        hostileOptions({
          runs: fc.array(runShape, { maxLength: 2 }),
          tasks: fc.array(taskShape, { maxLength: 2 }),
          inboxTaken: fc.array(fc.record({ runId: id, taskId: id }), { maxLength: 2 }),
        }),
        hostileOptions({ durable: fc.boolean() }),
      )
      .map(
        ([cp, options]): StoreCall =>
          () =>
            raw.checkpoint(cp as never, options as never),
      ),
    hostileOptions({
      status: fc.constantFrom('running', 'paused', 'nope'),
      workflow: fc.oneof(id, fc.constant('expense-approval')),
      namespace: fc.oneof(id, fc.constant('default')),
      limit: hostileLimit,
      cursor: hostileCursor,
    }).map(
      (query): StoreCall =>
        () =>
          raw.listRuns(query as never),
    ),
    hostileOptions({ runId: id, limit: hostileLimit, cursor: hostileCursor }).map(
      (query): StoreCall =>
        () =>
          raw.listWaiting(query as never),
    ),
    fc.tuple(id, id, anyValue).map(
      ([runId, taskId, data]): StoreCall =>
        () =>
          raw.putInbox(runId as never, taskId as never, data),
    ),
    fc.oneof(anyValue, fc.array(logLine, { maxLength: 3 })).map(
      (lines): StoreCall =>
        () =>
          raw.appendLogs(lines as never),
    ),
    fc
      .tuple(
        id,
        hostileOptions({ afterSeq: fc.oneof(fc.integer(), fc.double()), limit: hostileLimit }),
      )
      .map(
        ([runId, options]): StoreCall =>
          () =>
            raw.readLogs(runId as never, options as never),
      ),
    fc
      .tuple(
        fc.oneof(fc.double(), fc.integer(), anyValue),
        fc.oneof(fc.constant(undefined), hostileLimit),
      )
      .map(
        ([at, limit]): StoreCall =>
          () =>
            raw.dueTimers(at as never, limit as never),
      ),
    fc.constant((): StoreCall => () => raw.nextTimer()).map((make) => make()),
    fc.tuple(id, anyValue).map(
      ([name, value]): StoreCall =>
        () =>
          raw.putMeta(name as never, value),
    ),
    id.map(
      (name): StoreCall =>
        () =>
          raw.getMeta(name as never),
    ),
    id.map(
      (runId): StoreCall =>
        () =>
          raw.deleteRun(runId as never),
    ),
  );

  it('createRun, checkpoint, listings, inbox, logs, timers and meta with random shapes', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(calls, { minLength: 1, maxLength: 4 }), async (batch) => {
        for (const call of batch) {
          const before = await snapshotOpen(raw);
          const outcome = await attempt(call);
          if (!outcome.ok) expect(await snapshotOpen(raw)).toEqual(before);
        }
      }),
      params(250),
    );
    // Whatever the store accepted, it reads back: no record it wrote is damaged.
    const report = await raw.verify();
    expect(report.problems.filter((p) => p.kind === 'corrupt')).toEqual([]);
    for (const status of ['queued', 'running', 'paused', 'completed'] as const) {
      expect((await raw.listRuns({ status, limit: 1000 })).corrupt).toEqual([]);
    }
    expect((await raw.listWaiting({ limit: 1000 })).corrupt).toEqual([]);
    for (const runId of SEEDED) {
      await raw.listTasks(runId);
      await raw.listInbox(runId);
      await raw.readLogs(runId);
    }
  });

  it('a record that parses and a record that does not', async () => {
    const created = await attempt(() => raw.createRun(makeRun('ok-run')));
    expect(created.ok).toBe(true);
    for (const bad of [
      { ...makeRun('bad-1'), status: 'paused' }, // isPaused must follow status
      { ...makeRun('bad-2'), createdAt: -1 },
      { ...makeRun('bad-3'), tags: ['t'.repeat(201)] },
      { ...makeRun('bad-4'), input: nested(MAX_DEPTH + 1) },
      { ...makeRun('bad-5'), input: 'x'.repeat(MAX_RECORD_BYTES) },
    ]) {
      const before = await snapshotOpen(raw);
      const outcome = await attempt(() => raw.createRun(bad as never));
      expect(outcome.ok).toBe(false);
      expect(await snapshotOpen(raw)).toEqual(before);
    }
  });
});

// --- prototype pollution -----------------------------------------------------------------------

describe('prototype pollution', () => {
  const seen: unknown[] = [];
  const pp = workflow('pp', {
    input: z.any(),
    async run(ctx, input: unknown) {
      const copied = await ctx.step('copy', () => ({ ...(input as object) }));
      ctx.log('input', input);
      const first: unknown = await ctx.waitForInput('a', { schema: z.any() });
      const second = await ctx.waitForInput('b', {
        schema: z.looseObject({ n: z.number().optional() }),
      });
      const third = await ctx.waitForInput('c', { schema: z.record(z.string(), z.unknown()) });
      seen.push(first, second, third, copied);
      return { first, second, third };
    },
  });

  it('payloads with __proto__ and constructor keys are stored and read back, also after a restart', async () => {
    const db = new MemoryStore();
    let ppStore = db;
    let ppEngine = await createEngine({ store: ppStore, workflows: [pp] });
    const handle = await ppEngine.start(pp, pollutionPayload());
    await until(async () => (await handle.status()) === 'paused', 'the run to wait');
    await ppEngine.resumeTask(handle.id, 'a', pollutionPayload());
    await until(
      async () => (await ppEngine.listWaiting({ runId: handle.id })).items[0]?.taskId === 'b',
      'the second wait',
    );
    await ppEngine.resume(handle.id, pollutionPayload());
    expect(prototypeIsClean()).toBe(true);

    // A restart: the run is replayed from what the store reads back.
    await ppEngine.close();
    await ppStore.close();
    ppStore = new MemoryStore({ db: db.memory });
    ppEngine = await createEngine({ store: ppStore, workflows: [pp] });
    await until(
      async () => (await ppEngine.listWaiting({ runId: handle.id })).items[0]?.taskId === 'c',
      'the third wait',
    );
    await ppEngine.resumeTask(handle.id, 'c', pollutionPayload());
    const output = (await ppEngine.handle(handle.id).result()) as Record<string, unknown>;

    expect(prototypeIsClean()).toBe(true);
    const stored: unknown[] = [
      output,
      ...Object.values(output),
      ...seen,
      (await ppEngine.get(handle.id)).input,
      ...(await ppEngine.tasks(handle.id)).map((t) => t.output),
      ...(await ppStore.readLogs(handle.id)).map((l) => l.data),
    ];
    for (const value of stored) {
      if (typeof value !== 'object' || value === null) continue;
      expect(Object.getPrototypeOf(value)).toBe(Object.prototype);
      expect((value as Record<string, unknown>).polluted).toBeUndefined();
    }
    // What the replay saw is what the first execution saw: a `__proto__` key stays an own key
    // (it sets no prototype); the schemas that drop it (looseObject, record) drop it each time.
    const [first, second, third, copied] = seen;
    expect(isDeepStrictEqual(first, pollutionPayload())).toBe(true);
    expect(isDeepStrictEqual(copied, pollutionPayload())).toBe(true);
    expect(isDeepStrictEqual((await ppEngine.get(handle.id)).input, pollutionPayload())).toBe(true);
    for (const value of [second, third]) {
      expect(Object.keys(value as object)).toEqual(['constructor', 'a']);
    }
    expect(isDeepStrictEqual(output, { first, second, third })).toBe(true);
    await ppEngine.close();
    await ppStore.close();
  });
});
