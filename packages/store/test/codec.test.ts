import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { CairnError, MAX_DEPTH, assertSerializable } from '../src/index.js';

/** `depth` arrays and objects, one inside the other. */
function nested(depth: number, leaf: unknown = 1): unknown {
  let value = leaf;
  for (let i = 0; i < depth; i++) value = i % 2 === 0 ? [value] : { k: value };
  return value;
}

function refusal(value: unknown): { path: string; message: string } | null {
  try {
    assertSerializable(value, 'x');
    return null;
  } catch (error) {
    expect(error).toBeInstanceOf(CairnError);
    const e = error as CairnError;
    expect(e.code).toBe('NOT_SERIALIZABLE');
    return { path: (e.details as { path: string }).path, message: e.message };
  }
}

describe('assertSerializable', () => {
  it('accepts JSON-like data, Dates, bytes, null-prototype objects and shared branches', () => {
    const shared = { n: 1 };
    const bare = Object.assign(Object.create(null) as object, { a: 1 });
    for (const value of [
      null,
      undefined,
      'text',
      -0,
      Number.NaN,
      [1, [2, [3]]],
      { a: { b: [true, null, undefined] } },
      new Date(0),
      new Uint8Array([1, 2]),
      bare,
      { left: shared, right: shared, list: [shared, shared] },
    ]) {
      expect(refusal(value)).toBeNull();
    }
    fc.assert(fc.property(fc.jsonValue(), (value) => refusal(value) === null));
  });

  it('names the path and the kind of the first value it cannot store', () => {
    expect(refusal({ a: [1, { b: () => 1 }] })).toEqual({
      path: 'x.a[1].b',
      message: expect.stringContaining('a function') as string,
    });
    expect(refusal([1n])?.path).toBe('x[0]');
    expect(refusal({ s: Symbol('s') })?.message).toContain('a symbol');
    expect(refusal({ u: new URL('https://example.com') })?.message).toContain('an instance of URL');
    expect(refusal(new Map())?.path).toBe('x');
  });

  it('refuses subclasses of Array, Date and Uint8Array, and arrays with other properties', () => {
    class List extends Array<number> {}
    class Day extends Date {}
    class Bytes extends Uint8Array {}
    expect(refusal({ l: new List() })?.message).toContain('an instance of List');
    expect(refusal([new Day(0)])?.message).toContain('an instance of Day');
    expect(refusal(new Bytes(1))?.message).toContain('an instance of Bytes');
    // What `exec` and `match` return: the match, with index, input and groups besides.
    expect(refusal({ m: /(?<n>\d+)/.exec('a1') })).toEqual({
      path: 'x.m.index',
      message: expect.stringContaining('a property of an array besides its items') as string,
    });
    const holes = [1, , 3]; // eslint-disable-line no-sparse-arrays
    expect(refusal(holes)).toBeNull();
    expect(refusal(Object.assign(holes, { extra: 1 }))?.path).toBe('x.extra');
    expect(refusal(Buffer.from('a'))).toBeNull();
  });

  it('refuses a cycle at the value that closes it', () => {
    const a: Record<string, unknown> = { list: [] };
    (a.list as unknown[]).push({ back: a });
    expect(refusal(a)).toEqual({
      path: 'x.list[0].back',
      message: expect.stringContaining('circular') as string,
    });
    const self: unknown[] = [];
    self.push(self);
    expect(refusal(self)?.path).toBe('x[0]');
  });

  it('accepts nesting up to MAX_DEPTH levels and refuses one more', () => {
    expect(refusal(nested(MAX_DEPTH))).toBeNull();
    const deep = refusal(nested(MAX_DEPTH + 1));
    expect(deep?.message).toContain(`nested deeper than ${MAX_DEPTH}`);
    expect(refusal(nested(MAX_DEPTH, () => 1))?.message).toContain('a function');
  });
});
