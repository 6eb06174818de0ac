import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { inspect } from 'node:util';
import fc from 'fast-check';
import { Packr } from 'msgpackr';
import { afterEach, describe, expect, it } from 'vitest';
import { decodeRaw, encode } from '../src/codec.js';
import { CairnError, LevelStore, MIGRATIONS, assertSerializable } from '../src/index.js';
import { metaKey } from '../src/keys.js';
import { exactValues, sameValue as same } from '../src/suite/exact-values.js';
import { makeRun, makeTask } from '../src/suite/fixtures.js';
import { changedEntries, dumpDb } from '../../../test/helpers/raw.js';

/**
 * Whatever `assertSerializable` accepts comes back from the store exactly: the same
 * prototypes, the same own keys in the same order, `-0` as `-0`, holes as holes, a Buffer as a
 * Buffer and a Uint8Array as a Uint8Array, strings to the code unit. (What it refuses, and
 * how: test/hostile-input.test.ts.)
 */

const stored = (value: unknown): unknown => decodeRaw('x', encode(value));

function refusal(value: unknown): CairnError | null {
  try {
    assertSerializable(value, 'x');
    return null;
  } catch (error) {
    expect(error).toBeInstanceOf(CairnError);
    return error as CairnError;
  }
}

const EMOJI = ['👍', '👍🏽', '🇫🇷', '👩‍👩‍👧', '😀'];

/** Text as LLM output gets cut: `slice` through an emoji leaves half a surrogate pair. */
const cutText = fc
  .tuple(fc.string({ maxLength: 80 }), fc.constantFrom(...EMOJI), fc.nat())
  .map(([text, emoji, n]) => {
    const whole = text + emoji + text;
    return whole.slice(0, n % (whole.length + 1));
  });

const loneSurrogate = fc.integer({ min: 0xd800, max: 0xdfff }).map((c) => String.fromCharCode(c));

const text = fc.oneof(
  fc.string({ unit: 'binary', maxLength: 12 }),
  cutText,
  fc
    .array(fc.oneof(fc.string({ unit: 'binary', maxLength: 4 }), loneSurrogate), { maxLength: 6 })
    .map((parts) => parts.join('')),
  // msgpackr writes strings of 64 characters and more another way.
  fc.tuple(fc.integer({ min: 60, max: 300 }), loneSurrogate).map(([n, s]) => 'é'.repeat(n) + s),
  fc.constant('\uFFFD'),
);

const key = fc.oneof(
  text,
  fc.constantFrom(
    '__proto__',
    'constructor',
    'prototype',
    'toJSON',
    'hasOwnProperty',
    'valueOf',
    '',
    '0',
    '1',
    '-1',
    '01',
    '1.5',
    '4294967294',
    '4294967295',
    '\uD83D',
  ),
);

const number = fc.oneof(
  fc.double(),
  fc.integer(),
  fc.constantFrom(-0, 0, NaN, Infinity, -Infinity, 2 ** 32, -(2 ** 31) - 1, 2 ** 53, -(2 ** 63)),
);

const date = fc.oneof(
  fc.date(),
  fc.constantFrom(new Date(8.64e15), new Date(-8.64e15), new Date(-1), new Date(2 ** 32 * 1000)),
);

const bytes = fc.oneof(
  fc.uint8Array({ maxLength: 8 }),
  fc.uint8Array({ maxLength: 8 }).map((b) => Buffer.from(b)),
  fc.uint8Array({ minLength: 2, maxLength: 8 }).map((b) => b.subarray(1)),
);

/** Values of every kind assertSerializable accepts, nested. */
const storable: fc.Arbitrary<unknown> = fc.letrec<{ value: unknown }>((tie) => ({
  value: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    fc.constantFrom(undefined, null, true, false),
    number,
    text,
    date,
    bytes,
    fc.array(tie('value'), { maxLength: 5 }),
    fc.sparseArray(tie('value'), { maxLength: 6 }),
    fc.dictionary(key, tie('value'), { maxKeys: 5 }),
    fc
      .array(fc.tuple(key, tie('value')), { maxLength: 4 })
      .map((entries) => JSON.parse(json(entries)) as unknown),
  ),
})).value;

/** An object's JSON text with these entries in this order (`__proto__` as an own key). */
function json(entries: [string, unknown][]): string {
  return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${JSON.stringify(v) ?? 'null'}`).join(',')}}`;
}

describe('what the store reads back', () => {
  it('is exactly what assertSerializable accepted', () => {
    fc.assert(
      fc.property(storable, (value) => {
        if (refusal(value) !== null) return;
        expect(same(stored(value), value)).toBe(true);
      }),
      { numRuns: 2000 },
    );
  });

  it('keeps each case that plain msgpack changes', () => {
    const cases: unknown[] = [
      ...exactValues(),
      '\uDE00x',
      [-0, { z: -0 }],
      new Array(3),
      new Uint8Array([0, 1, 2, 3]).subarray(1, 3),
      Object.fromEntries(Array.from({ length: 70_000 }, (_, i) => [`k${i}`, i])),
    ];
    for (const value of cases) {
      expect(refusal(value)).toBeNull();
      expect(same(stored(value), value), inspect(value)).toBe(true);
    }
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });
});

describe('values stored before the envelope', () => {
  it('read as they always did', () => {
    // How every value was written before format 5.
    const before = new Packr({ useRecords: false, mapsAsObjects: true, int64AsType: 'number' });
    const old = (value: unknown): unknown => decodeRaw('x', before.pack(value));
    expect(old(JSON.parse('{"__proto__":{"a":1},"b":2}'))).toEqual({ __proto_: { a: 1 }, b: 2 });
    expect(Object.is(old(-0), 0)).toBe(true);
    expect(old('ok \uD83D')).toBe('ok \uFFFD\uFFFD\uFFFD');
    expect(Buffer.isBuffer(old(new Uint8Array([1])))).toBe(true);
    for (const value of [{ a: [1, 'x', null, undefined] }, new Date(5), 'text', 7, -3.5])
      expect(same(old(value), value)).toBe(true);
  });
});

describe('format 5', () => {
  const dirs: string[] = [];
  afterEach(() => {
    for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
  });

  it('a format-4 store is restamped and nothing else changes; Cairn reading format 4 refuses it', async () => {
    const path = mkdtempSync(join(tmpdir(), 'cairn-format5-'));
    dirs.push(path);
    const format4 = {
      path,
      targetSchemaVersion: 4,
      migrations: MIGRATIONS.filter((m) => m.to <= 4),
    };
    const store = new LevelStore(format4);
    await store.open();
    const run = makeRun();
    const task = makeTask(run, { taskId: 'a' });
    await store.checkpoint({ runs: [run], tasks: [task] });
    await store.close();
    const before = await dumpDb(path);
    let current = new LevelStore({ path });
    await current.open();
    expect(current.schemaVersion).toBe(5);
    expect(await current.getTask(run.id, 'a')).toEqual(task);
    await current.close();
    expect(changedEntries(before, await dumpDb(path))).toEqual([
      [metaKey('schemaVersion'), Buffer.from(encode(5)).toString('hex')],
    ]);
    // From now on a value plain msgpack would change is written in its envelope.
    current = new LevelStore({ path });
    await current.open();
    await current.checkpoint({ tasks: [{ ...task, output: 'Thanks 👍'.slice(0, 8) }] });
    expect((await current.getTask(run.id, 'a'))?.output).toBe('Thanks \uD83D');
    await current.close();
    await expect(new LevelStore(format4).open()).rejects.toMatchObject({ code: 'STORE_TOO_NEW' });
  });
});
