import fc from 'fast-check';
import { CairnError, ERROR_CODES, type LevelBackedStore } from '@cairn/store';

/**
 * Arbitraries and checks for the hostile-input tests: random and malformed values, ids and
 * options, and the one rule every public call must follow with them: succeed, or refuse
 * with a `CairnError` of a stable code (or a `TypeError` with code `INVALID_ARGUMENT`),
 * leaving the store as it was.
 */

const CODES: ReadonlySet<string> = new Set(ERROR_CODES);

/** Codes that would mean a healthy store or engine broke, never a fair answer to bad input. */
const NEVER_FOR_BAD_INPUT: ReadonlySet<string> = new Set([
  'CORRUPT_RECORD',
  'WRITE_FAILED',
  'STORE_CLOSED',
  'STORE_OPEN_FAILED',
  'STORE_LOCKED',
  'MIGRATION_FAILED',
  'ENGINE_CLOSED',
]);

export type Outcome<T> =
  | { readonly ok: true; readonly value: T }
  | { readonly ok: false; readonly code: string; readonly error: unknown };

/**
 * The code of a refusal: a CairnError's code, or `TypeError` for a TypeError with code
 * `INVALID_ARGUMENT`. Anything else is rethrown, failing the test with the original error.
 */
export function refusalCode(error: unknown): string {
  if (error instanceof CairnError && CODES.has(error.code) && !NEVER_FOR_BAD_INPUT.has(error.code))
    return error.code;
  if (error instanceof TypeError && (error as { code?: unknown }).code === 'INVALID_ARGUMENT')
    return 'TypeError';
  throw new Error(`Not a fair refusal: ${describeError(error)}`, { cause: error });
}

function describeError(error: unknown): string {
  if (error instanceof Error) {
    const code = (error as { code?: unknown }).code;
    const shown = typeof code === 'string' ? ` (${code})` : '';
    return `${error.constructor.name}${shown}: ${error.message.slice(0, 300)}`;
  }
  return typeof error;
}

/** Runs `fn` (which may throw synchronously) and tells what it did. */
export async function attempt<T>(fn: () => T | Promise<T>): Promise<Outcome<Awaited<T>>> {
  try {
    return { ok: true, value: await fn() };
  } catch (error) {
    return { ok: false, code: refusalCode(error), error };
  }
}

/** Every raw key and value (hex) of an open level-backed store, in key order. */
export async function snapshotOpen(store: LevelBackedStore): Promise<Map<string, string>> {
  await store.settled();
  const out = new Map<string, string>();
  for await (const [k, v] of store.level.iterator()) out.set(k, Buffer.from(v).toString('hex'));
  return out;
}

/** Lets promise callbacks and I/O run for a few turns of the event loop. */
export async function settle(turns = 3): Promise<void> {
  for (let i = 0; i < turns; i++) await new Promise<void>((resolve) => setImmediate(resolve));
}

/** Lets the event loop turn until `condition` holds; fails after a bounded number of turns. */
export async function until(condition: () => boolean | Promise<boolean>, what: string) {
  for (let i = 0; i < 400; i++) {
    if (await condition()) return;
    await settle(1);
  }
  throw new Error(`Timed out waiting for ${what}`);
}

/** `JSON.parse` of the classic prototype-pollution payload. */
export function pollutionPayload(): Record<string, unknown> {
  return JSON.parse(
    '{"__proto__":{"polluted":true},"constructor":{"prototype":{"polluted":true}},"a":{"__proto__":{"polluted":true}}}',
  ) as Record<string, unknown>;
}

/** True when nothing has reached `Object.prototype`. */
export function prototypeIsClean(): boolean {
  const probe = {} as Record<string, unknown>;
  return (
    probe.polluted === undefined &&
    Object.getOwnPropertyNames(Object.prototype).every((name) => OBJECT_PROTO_NAMES.has(name))
  );
}

const OBJECT_PROTO_NAMES: ReadonlySet<string> = new Set(
  Object.getOwnPropertyNames(Object.prototype),
);

// --- arbitraries ------------------------------------------------------------------------------

const hostileKey = fc.oneof(
  fc.string({ maxLength: 8 }),
  fc.constantFrom('__proto__', 'constructor', 'prototype', 'toString', 'hasOwnProperty', ''),
  fc.string({ unit: 'binary', maxLength: 6 }),
);

/** Nested arrays and objects `depth` levels deep. */
export function nested(depth: number, leaf: unknown = 1): unknown {
  let value = leaf;
  for (let i = 0; i < depth; i++) value = i % 2 === 0 ? [value] : { k: value };
  return value;
}

/**
 * JSON-ish values: NaN, -0, ±Infinity, undefined, sparse and plain arrays, objects with
 * `__proto__` and `constructor` keys, control characters, long strings, deep nesting.
 */
export const jsonish: fc.Arbitrary<unknown> = fc.oneof(
  { weight: 6, arbitrary: fc.jsonValue({ maxDepth: 3 }) },
  {
    weight: 4,
    arbitrary: fc.letrec<{ value: unknown }>((tie) => ({
      value: fc.oneof(
        { depthSize: 'small', withCrossShrink: true },
        fc.constantFrom(undefined, null, true, false, NaN, -0, 0, Infinity, -Infinity),
        fc.double(),
        fc.integer(),
        fc.string({ unit: 'binary', maxLength: 20 }),
        fc.array(tie('value'), { maxLength: 4 }),
        fc.dictionary(hostileKey, tie('value'), { maxKeys: 4 }),
        fc.sparseArray(tie('value'), { maxLength: 5 }),
      ),
    })).value,
  },
  {
    weight: 1,
    arbitrary: fc
      .jsonValue({ maxDepth: 2 })
      .map((v) => JSON.parse(`{"__proto__":${JSON.stringify(v)},"b":1}`) as unknown),
  },
  { weight: 1, arbitrary: fc.constant(pollutionPayload()) },
  { weight: 1, arbitrary: fc.integer({ min: 0, max: 2500 }).map((d) => nested(d)) },
  {
    weight: 1,
    arbitrary: fc.integer({ min: 0, max: 120_000 }).map((n) => 'x'.repeat(n)),
  },
);

/** Values no store can keep: functions, symbols, bigints, class instances, cycles. */
export const unstorable: fc.Arbitrary<unknown> = fc.oneof(
  fc.constant(() => 1),
  fc.constant(Symbol('s')),
  fc.bigInt(),
  fc.constant(new Map([[1, 2]])),
  fc.constant(new Set([1])),
  fc.constant(new Error('e')),
  fc.constant(new (class Thing {})()),
  fc.constant(
    (() => {
      const cycle: Record<string, unknown> = { a: 1 };
      cycle.self = cycle;
      return cycle;
    })(),
  ),
  fc.constant({ nested: { fn: () => 1 } }),
);

/** Anything at all: JSON-ish, unstorable, and fast-check's `anything()` with every option. */
export const anyValue: fc.Arbitrary<unknown> = fc.oneof(
  { weight: 5, arbitrary: jsonish },
  { weight: 1, arbitrary: unstorable },
  {
    weight: 2,
    arbitrary: fc.anything({
      maxDepth: 3,
      withBigInt: true,
      withBoxedValues: true,
      withDate: true,
      withMap: true,
      withSet: true,
      withNullPrototype: true,
      withObjectString: true,
      withSparseArray: true,
      withTypedArray: true,
      withUnicodeString: true,
    }),
  },
);

/**
 * Ids and names: valid-looking ones, empty, 10,000 characters, control characters (the key
 * separator among them), separators people type, half of a surrogate pair, and values that
 * are not strings.
 */
export const hostileId: fc.Arbitrary<unknown> = fc.oneof(
  { weight: 3, arbitrary: fc.string({ minLength: 1, maxLength: 30 }) },
  { weight: 2, arbitrary: fc.string({ unit: 'binary', maxLength: 30 }) },
  {
    weight: 2,
    arbitrary: fc
      .array(fc.constantFrom('\x00', '\x01', '\x1f', '\x7f', '\n', 'a', '/', '#', '$', ':', ' '), {
        maxLength: 12,
      })
      .map((parts) => parts.join('')),
  },
  {
    weight: 1,
    arbitrary: fc.constantFrom(
      '',
      'x'.repeat(200),
      'x'.repeat(201),
      'x'.repeat(10_000),
      '$now',
      'cut \uD83D',
    ),
  },
  { weight: 1, arbitrary: fc.uuid() },
  { weight: 1, arbitrary: fc.oneof(fc.integer(), fc.constant(null), fc.constant(undefined)) },
  { weight: 1, arbitrary: anyValue },
);

/** Durations: good ones, strings that almost parse, negative, NaN, huge, and non-strings. */
export const hostileDuration: fc.Arbitrary<unknown> = fc.oneof(
  fc.integer({ min: 0, max: 10_000 }),
  fc.constantFrom('0ms', '1s', '30s', '5m', '48h', '7d', '1w', '1.5h', ' 2 s '),
  fc.constantFrom('', 's', '1', '1y', '-1s', '1e3s', '1 h 2 m', 'NaNms', 'Infinityd', '١s'),
  fc.constantFrom(-1, NaN, Infinity, -Infinity, -0, 1e300, 0.4, 2 ** 53, 3650 * 86_400_000 + 1),
  fc.string({ maxLength: 6 }),
  fc.double(),
  fc.oneof(fc.constant(null), fc.constant({}), fc.constant([]), fc.constant(true)),
);

/** Limits: in range, zero, negative, fractions, too large, not numbers. */
export const hostileLimit: fc.Arbitrary<unknown> = fc.oneof(
  fc.integer({ min: 1, max: 1000 }),
  fc.constantFrom(0, -1, 1.5, 1001, 1e9, NaN, Infinity, '10', null, {}),
);

/** Cursors: junk strings of every kind, and non-strings. */
export const hostileCursor: fc.Arbitrary<unknown> = fc.oneof(
  fc.string({ maxLength: 20 }),
  fc.base64String({ maxLength: 20 }),
  fc.constantFrom('', 'AAAA', 'x'.repeat(2000), null, undefined, 5),
  fc.string({ unit: 'binary', maxLength: 10 }),
);

/**
 * An options object: each named key with a fitting value, a hostile one, or absent, plus
 * random extra keys. Sometimes not an object at all.
 */
export function hostileOptions(
  fields: Record<string, fc.Arbitrary<unknown>>,
): fc.Arbitrary<unknown> {
  const record = fc.record(
    Object.fromEntries(
      Object.entries(fields).map(([name, arb]) => [name, fc.oneof(arb, anyValue)]),
    ),
    { requiredKeys: [] },
  );
  return fc.oneof(
    { weight: 6, arbitrary: record },
    {
      weight: 1,
      arbitrary: fc
        .tuple(record, fc.dictionary(hostileKey, anyValue, { maxKeys: 3 }))
        .map(([known, extra]) => ({ ...extra, ...known })),
    },
    {
      weight: 1,
      arbitrary: fc.oneof(fc.constant(null), fc.constant(5), fc.constant('x'), fc.constant([])),
    },
    { weight: 1, arbitrary: fc.constant(undefined) },
  );
}
