import { Packr } from 'msgpackr';
import type { z } from 'zod';
import { CairnError } from './errors.js';
import { displayKey } from './keys.js';
import { isEnvelope, needsEnvelope, openEnvelope, sealEnvelope } from './lossless.js';

/**
 * Values are msgpack, without msgpackr's shared record structures: every value decodes on
 * its own, so a damaged value never affects another. A Uint8Array is written with msgpackr's
 * typed-array extension (`moreTypes`), so that it comes back as a Uint8Array and a Buffer (bin)
 * as a Buffer. A value msgpack alone would not give back exactly (a lone surrogate, a
 * `__proto__` key, `-0`, ...) is written in an envelope (lossless.ts), which reads it back as it
 * was.
 */
const packr = new Packr({
  useRecords: false,
  mapsAsObjects: true,
  int64AsType: 'number',
  moreTypes: true,
});

export function encode(value: unknown): Uint8Array {
  return needsEnvelope(value) ? sealEnvelope(value) : packr.pack(value);
}

export function decodeRaw(key: string, bytes: Uint8Array): unknown {
  // Read from a Buffer, so that bytes stored as bin come back as a Buffer.
  const buffer = Buffer.isBuffer(bytes)
    ? bytes
    : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  try {
    return isEnvelope(buffer) ? openEnvelope(buffer) : packr.unpack(buffer);
  } catch (cause) {
    throw corrupt(key, 'cannot be decoded', cause);
  }
}

/** Decodes and validates a stored value; anything wrong is `CORRUPT_RECORD` naming the key. */
export function decode<T>(key: string, bytes: Uint8Array, schema: z.ZodType<T>): T {
  return validate(key, decodeRaw(key, bytes), schema);
}

/** Validates a decoded value; anything wrong is `CORRUPT_RECORD` naming the key. */
export function validate<T>(key: string, raw: unknown, schema: z.ZodType<T>): T {
  const parsed = schema.safeParse(raw);
  if (!parsed.success) throw corrupt(key, 'does not match its schema', parsed.error);
  return parsed.data;
}

function corrupt(key: string, what: string, cause: unknown): CairnError {
  const shown = displayKey(key);
  return new CairnError('CORRUPT_RECORD', `The record at "${shown}" ${what}`, {
    cause,
    details: { key: shown },
  });
}

/**
 * The value as the store reads it back (encoded and decoded): for a value `assertSerializable`
 * accepts, a value deeply and strictly equal to it.
 */
export function roundTrip(value: unknown): unknown {
  return decodeRaw('value', encode(value));
}

/** Arrays and objects nested deeper than this are refused (encoding them would overflow the stack). */
export const MAX_DEPTH = 1000;

/**
 * Throws `NOT_SERIALIZABLE` naming the path of the first value that cannot be stored and
 * read back as the same data: functions, symbols, bigints, class instances (subclasses of
 * Array, Date and Uint8Array too), arrays with properties besides their items (a RegExp
 * match's `index`, `input`, `groups`), cycles, and nesting deeper than `MAX_DEPTH`.
 * Allowed, and read back exactly: null, undefined, booleans, numbers (`-0` and `NaN` too),
 * strings (lone surrogates too), Dates, Uint8Arrays and Buffers, arrays (holes too), and
 * objects with `Object.prototype` or no prototype (any keys, `__proto__` too). What is stored
 * is their data: symbol-keyed properties, and properties added to a Date or a Uint8Array, are
 * not.
 */
export function assertSerializable(value: unknown, path: string): void {
  // Nearly every value passes: checked first without building a path per value or keeping a
  // set of ancestors; only a value that fails is walked again to say where and why.
  if (!serializable(value, 0)) walk(value, path, new Set());
}

/** `Array.prototype`, or another realm's (an array made there comes back as an array here). */
const isArrayPrototype = (proto: unknown): boolean =>
  proto === Array.prototype || Array.isArray(proto);

const isLeafPrototype = (proto: unknown): boolean =>
  proto === Date.prototype || proto === Uint8Array.prototype || proto === Buffer.prototype;

/**
 * Whether `walk` would accept `value`, whose `depth` ancestors are objects. A cycle never
 * ends, so it is caught by the depth limit here, and `walk` then names it.
 */
function serializable(value: unknown, depth: number): boolean {
  if (typeof value !== 'object') {
    const type = typeof value;
    return type === 'string' || type === 'number' || type === 'boolean' || type === 'undefined';
  }
  if (value === null) return true;
  const proto: unknown = Object.getPrototypeOf(value);
  if (proto === Object.prototype || proto === null) {
    if (depth >= MAX_DEPTH) return false;
    for (const k in value) {
      if (
        Object.hasOwn(value, k) &&
        !serializable((value as Record<string, unknown>)[k], depth + 1)
      )
        return false;
    }
    return true;
  }
  if (!Array.isArray(value)) return isLeafPrototype(proto);
  if (depth >= MAX_DEPTH || !isArrayPrototype(proto)) return false;
  let holes = 0;
  for (let i = 0; i < value.length; i++) {
    const item: unknown = value[i];
    if (item === undefined) {
      if (!(i in value)) holes++;
    } else if (!serializable(item, depth + 1)) return false;
  }
  // Its keys are its items' indexes, and nothing more.
  return Object.keys(value).length === value.length - holes;
}

function walk(value: unknown, path: string, seen: Set<object>): void {
  switch (typeof value) {
    case 'string':
    case 'number':
    case 'boolean':
    case 'undefined':
      return;
    case 'object':
      break;
    default:
      throw notSerializable(path, `a ${typeof value}`);
  }
  if (value === null) return;
  const proto: unknown = Object.getPrototypeOf(value);
  const array = Array.isArray(value);
  if (proto !== Object.prototype && proto !== null && !(array && isArrayPrototype(proto))) {
    if (!array && isLeafPrototype(proto)) return;
    const name = (value as { constructor?: { name?: string } }).constructor?.name ?? 'object';
    throw notSerializable(path, `an instance of ${name}`);
  }
  if (seen.has(value)) throw notSerializable(path, 'a circular reference');
  if (seen.size >= MAX_DEPTH) throw notSerializable(path, `nested deeper than ${MAX_DEPTH} levels`);
  seen.add(value);
  if (array) {
    let holes = 0;
    for (let i = 0; i < value.length; i++) {
      if (i in value) walk(value[i], `${path}[${i}]`, seen);
      else holes++;
    }
    // Indexes come first among an array's keys: the first key past them is another property.
    const extra = Object.keys(value)[value.length - holes];
    if (extra !== undefined)
      throw notSerializable(`${path}.${extra}`, 'a property of an array besides its items');
  } else {
    for (const k of Object.keys(value))
      walk((value as Record<string, unknown>)[k], `${path}.${k}`, seen);
  }
  seen.delete(value);
}

function notSerializable(path: string, what: string): CairnError {
  return new CairnError('NOT_SERIALIZABLE', `${path} is ${what}, which cannot be stored`, {
    details: { path },
  });
}
