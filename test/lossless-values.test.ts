import { isDeepStrictEqual } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { createEngine, workflow, type Engine } from '@cairn/core';
import { LevelStore, MemoryStore, type Store } from '@cairn/store';
import { tempDir } from './helpers/temp.js';
import { until } from './helpers/until.js';

/**
 * A value a workflow saw on its first execution is the value it sees on every replay, after
 * restarts, on either store: text cut in the middle of an emoji (half a surrogate pair) and an
 * object with an own `__proto__` key (what `JSON.parse` makes of one), as a step's result and
 * as a resume payload.
 */

const reply = (): { text: string; parsed: Record<string, unknown> } => ({
  // What `slice` leaves of "Thanks 👍": "Thanks " and the first half of the emoji.
  text: 'Thanks 👍'.slice(0, 8),
  parsed: JSON.parse('{"__proto__":{"admin":true},"n":-0}') as Record<string, unknown>,
});

const payload = (): { text: string; parsed: Record<string, unknown> } => ({
  // "Résumé: ", the first flag letter and half of the second.
  text: 'Résumé: 🇫🇷'.slice(0, 11),
  parsed: JSON.parse('{"x":[1],"__proto__":{"admin":true}}') as Record<string, unknown>,
});

/** What the workflow saw, by name, in the order of its executions. */
const seen = new Map<string, unknown[]>();
function observe(name: string, value: unknown): void {
  seen.set(name, [...(seen.get(name) ?? []), value]);
}

/** A step named after a value: a replay that saw another value would find another step. */
const shape = (value: { text: string; parsed: object }): string =>
  `${value.text.length}-${Object.keys(value.parsed).join('+')}`;

const lossless = workflow('lossless', {
  input: z.object({}),
  async run(ctx) {
    const first = await ctx.step('reply', reply);
    observe('reply', first);
    await ctx.step(`after-${shape(first)}`, () => true);
    const answer = (await ctx.waitForInput('answer', { schema: z.any() })) as ReturnType<
      typeof payload
    >;
    observe('answer', answer);
    await ctx.step(`answered-${shape(answer)}`, () => true);
    const last = await ctx.waitForInput('last', { schema: z.object({ ok: z.boolean() }) });
    return { first, answer, ok: last.ok };
  },
});

const cleanups: (() => Promise<void>)[] = [];
afterAll(async () => {
  for (const cleanup of cleanups) await cleanup();
});

interface Backend {
  readonly name: string;
  /** A store on the same data as the last one, which is closed. */
  open(): Store;
  setup(): Promise<void>;
}

const memory = (): Backend => {
  let db: MemoryStore | null = null;
  return {
    name: 'MemoryStore',
    setup: () => Promise.resolve(),
    open: () => (db = new MemoryStore(db === null ? {} : { db: db.memory })),
  };
};

const level = (): Backend => {
  let path = '';
  return {
    name: 'LevelStore',
    async setup() {
      const dir = await tempDir('lossless');
      cleanups.push(dir.cleanup);
      path = dir.path;
    },
    open: () => new LevelStore({ path }),
  };
};

describe.each([memory, level])('values replayed after a restart', (backend) => {
  it(`are the values the workflow saw first (${backend().name})`, async () => {
    seen.clear();
    expect([reply().text.isWellFormed(), payload().text.isWellFormed()]).toEqual([false, false]);
    const b = backend();
    await b.setup();
    let store = b.open();
    let engine: Engine = await createEngine({ store, workflows: [lossless] });
    const restart = async (): Promise<void> => {
      await engine.close();
      await store.close();
      store = b.open();
      engine = await createEngine({ store, workflows: [lossless] });
    };
    const waitingAt = (runId: string, taskId: string) => async () =>
      (await engine.listWaiting({ runId })).items.some((w) => w.taskId === taskId);
    /** Resumes a wait; a replay that went another way shows as the run's error. */
    const resume = async (runId: string, taskId: string, data: unknown): Promise<void> => {
      try {
        await engine.resumeTask(runId, taskId, data);
      } catch (error) {
        expect((await engine.get(runId)).error).toBeNull();
        throw error;
      }
    };

    const { id } = await engine.start(lossless, {});
    await until(waitingAt(id, 'answer'), 'the first wait');
    await restart();
    // The resume replays the run from the store: the step's result is read back.
    await resume(id, 'answer', payload());
    await until(waitingAt(id, 'last'), 'the second wait');
    await restart();
    // This replay reads the resume payload back too.
    await resume(id, 'last', { ok: true });
    const output = await engine.handle(id).result();

    const run = await engine.get(id);
    expect(run.status).toBe('completed');
    expect(isDeepStrictEqual(output, { first: reply(), answer: payload(), ok: true })).toBe(true);
    expect(seen.get('reply')).toHaveLength(3);
    expect(seen.get('answer')).toHaveLength(2);
    for (const value of seen.get('reply')!) expect(isDeepStrictEqual(value, reply())).toBe(true);
    for (const value of seen.get('answer')!) expect(isDeepStrictEqual(value, payload())).toBe(true);
    const tasks = await engine.tasks(id);
    expect(tasks.map((t) => t.taskId)).toEqual([
      'reply',
      `after-8-__proto__+n`,
      'answer',
      `answered-11-x+__proto__`,
      'last',
    ]);
    expect(({} as Record<string, unknown>).admin).toBeUndefined();
    await engine.close();
    await store.close();
  });
});
