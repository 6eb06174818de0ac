import { expect, it } from 'vitest';
import type { Store } from '../store.js';
import type { SuiteContext } from './context.js';
import { makeLog, makeRun, makeTask, withStatus } from './fixtures.js';

/**
 * `a` and `b` are the same value, as a workflow could tell them apart: the same prototypes, the
 * same own keys in the same order, `-0` apart from `0`, holes apart from `undefined`, Dates by
 * their time (two invalid Dates are the same), bytes by their content.
 */
export function sameValue(a: unknown, b: unknown): boolean {
  if (typeof a !== 'object' || a === null || typeof b !== 'object' || b === null)
    return Object.is(a, b);
  if (Object.getPrototypeOf(a) !== Object.getPrototypeOf(b)) return false;
  if (a instanceof Date) return Object.is(a.getTime(), (b as Date).getTime());
  if (a instanceof Uint8Array) return Buffer.from(a).equals(b as Uint8Array);
  const keys = Object.keys(a);
  const other = Object.keys(b);
  if (keys.length !== other.length || keys.some((k, i) => k !== other[i])) return false;
  if (Array.isArray(a) && a.length !== (b as unknown[]).length) return false;
  return keys.every((k) =>
    sameValue((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k]),
  );
}

/** Values plain msgpack does not give back as they were (a new list each call). */
export function exactValues(): unknown[] {
  return [
    // Text cut in the middle of an emoji: half a surrogate pair, short and long.
    'Thanks 👍'.slice(0, 8),
    `${'é'.repeat(100)}\uD83D`,
    '\uDE00 and \uD83D\uDE00',
    JSON.parse('{"__proto__":{"polluted":true},"a":1}'),
    { ['\uD83D']: 1 },
    -0,
    [1, , 3], // eslint-disable-line no-sparse-arrays
    new Uint8Array([1, 2, 3]),
    Buffer.from([4, 5]),
    Object.assign(Object.create(null) as object, JSON.parse('{"__proto__":1,"b":2}')),
    { constructor: 1, toJSON: 2 },
    new Date(Number.NaN),
    { '2': 'b', '1': 'a', z: 0, '-1': 'c' },
  ];
}

export function exactValueTests(ctx: SuiteContext): void {
  it('every value comes back exactly as it was written, also after a reopen', async () => {
    let store = await ctx.open();
    const values = exactValues();
    const run = withStatus(makeRun({ input: values }), 'failed', {
      output: values,
      error: { message: 'x', details: { values } },
    });
    const task = makeTask(run, {
      output: values,
      meta: JSON.parse('{"__proto__":{"model":"x"},"model":"y"}') as Record<string, unknown>,
    });
    const first = makeTask(run, { output: 'Thanks 👍'.slice(0, 8) });
    const second = makeTask(run, { output: -0 });
    await store.checkpoint({ runs: [run], tasks: [task, first, second] });
    await store.putInbox(run.id, 'later', values);
    await store.appendLogs([makeLog(run.id, { data: values })]);
    await store.putMeta('values', values);

    const check = async (s: Store): Promise<void> => {
      const stored = await s.getRun(run.id);
      for (const value of [stored?.input, stored?.output, stored?.error?.details?.values]) {
        expect(sameValue(value, values)).toBe(true);
      }
      const tasks = await s.listTasks(run.id);
      const written = [task, first, second];
      expect(
        sameValue(
          tasks.map((t) => [t.output, t.meta]),
          written.map((t) => [t.output, t.meta]),
        ),
      ).toBe(true);
      expect(sameValue((await s.getInbox(run.id, 'later'))?.data, values)).toBe(true);
      expect(sameValue((await s.readLogs(run.id))[0]?.data, values)).toBe(true);
      expect(sameValue(await s.getMeta('values'), values)).toBe(true);
      expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    };
    await check(store);
    if (!ctx.supports.persistence) return;
    store = await ctx.reopen(store);
    await check(store);
  });
}
