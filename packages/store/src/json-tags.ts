/**
 * JSON with tags for the values JSON cannot hold, so that stored data survives an export and
 * an import exactly. A tagged value is an object whose first key is `$cairn`:
 *
 *   Date                       {"$cairn":"date","v":<ms, itself encoded: NaN for an invalid date>}
 *   Uint8Array                 {"$cairn":"bytes","v":"<base64>"}
 *   Buffer                     {"$cairn":"buffer","v":"<base64>"}
 *   undefined                  {"$cairn":"undefined"}
 *   a hole in an array         {"$cairn":"hole"}
 *   -0, NaN, ±Infinity         {"$cairn":"number","v":"-0" | "NaN" | "Infinity" | "-Infinity"}
 *   an object with a `$cairn`  {"$cairn":"object","v":{...its entries, encoded}}
 *   key of its own
 *   an object without a        {"$cairn":"bare","v":{...its entries, encoded}}
 *   prototype
 *
 * Everything else is plain JSON (a lone surrogate is written as a `\u` escape, which
 * `JSON.parse` reads back as it was).
 */

const TAG = '$cairn';

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

export function toTagged(value: unknown): Json {
  switch (typeof value) {
    case 'string':
    case 'boolean':
      return value;
    case 'undefined':
      return { [TAG]: 'undefined' };
    case 'number':
      if (Object.is(value, -0)) return { [TAG]: 'number', v: '-0' };
      if (!Number.isFinite(value)) return { [TAG]: 'number', v: String(value) };
      return value;
    case 'object':
      break;
    default:
      // Refused before anything is stored (assertSerializable); never in stored data.
      throw new TypeError(`a ${typeof value} cannot be exported`);
  }
  if (value === null) return null;
  if (value instanceof Date) return { [TAG]: 'date', v: toTagged(value.getTime()) };
  if (value instanceof Uint8Array) {
    return {
      [TAG]: Buffer.isBuffer(value) ? 'buffer' : 'bytes',
      v: Buffer.from(value.buffer, value.byteOffset, value.byteLength).toString('base64'),
    };
  }
  if (Array.isArray(value)) {
    const items: Json[] = [];
    for (let i = 0; i < value.length; i++)
      items.push(i in value ? toTagged(value[i]) : { [TAG]: 'hole' });
    return items;
  }
  const out: { [key: string]: Json } = {};
  for (const k of Object.keys(value)) {
    define(out, k, toTagged((value as Record<string, unknown>)[k]));
  }
  if (Object.getPrototypeOf(value) === null) return { [TAG]: 'bare', v: out };
  return Object.hasOwn(value, TAG) ? { [TAG]: 'object', v: out } : out;
}

/** The tag of a tagged value, else undefined. */
const tagOf = (value: unknown): unknown =>
  typeof value === 'object' && value !== null && Object.hasOwn(value, TAG)
    ? (value as Record<string, unknown>)[TAG]
    : undefined;

/** Decodes tags. Throws a `TypeError` naming the path of a malformed tag. */
export function fromTagged(value: unknown, path = '$'): unknown {
  if (typeof value !== 'object' || value === null) return value;
  if (Array.isArray(value)) {
    const items = new Array<unknown>(value.length);
    value.forEach((item: unknown, i) => {
      const at = `${path}[${i}]`;
      if (tagOf(item) !== 'hole') items[i] = fromTagged(item, at);
      else if (Object.keys(item as object).length !== 1)
        throw new TypeError(`${at}: a hole tag has no other keys`);
    });
    return items;
  }
  const obj = value as Record<string, unknown>;
  if (!Object.hasOwn(obj, TAG)) {
    const out: Record<string, unknown> = {};
    for (const k of Object.keys(obj)) define(out, k, fromTagged(obj[k], `${path}.${k}`));
    return out;
  }
  const bad = (why: string) => new TypeError(`${path}: ${why}`);
  const tag = obj[TAG];
  const keys = Object.keys(obj).length;
  const v = obj.v;
  switch (tag) {
    case 'undefined':
      if (keys !== 1) throw bad('an undefined tag has no other keys');
      return undefined;
    case 'number': {
      const numbers: Record<string, number> = {
        '-0': -0,
        NaN: Number.NaN,
        Infinity: Number.POSITIVE_INFINITY,
        '-Infinity': Number.NEGATIVE_INFINITY,
      };
      if (keys !== 2 || typeof v !== 'string' || !Object.hasOwn(numbers, v))
        throw bad('a number tag holds "-0", "NaN", "Infinity" or "-Infinity"');
      return numbers[v];
    }
    case 'date': {
      const ms = fromTagged(v, `${path}.v`);
      if (keys !== 2 || typeof ms !== 'number') throw bad('a date tag holds a number of ms');
      return new Date(ms);
    }
    case 'bytes':
    case 'buffer': {
      if (keys !== 2 || typeof v !== 'string' || !/^[A-Za-z0-9+/]*={0,2}$/.test(v))
        throw bad(`a ${tag} tag holds base64`);
      const bytes = Buffer.from(v, 'base64');
      return tag === 'buffer' ? bytes : new Uint8Array(bytes);
    }
    case 'hole':
      throw bad('a hole tag stands only in an array');
    case 'object':
    case 'bare': {
      if (keys !== 2 || typeof v !== 'object' || v === null || Array.isArray(v))
        throw bad(`${tag === 'bare' ? 'a bare' : 'an object'} tag holds an object`);
      const out = (tag === 'bare' ? Object.create(null) : {}) as Record<string, unknown>;
      for (const k of Object.keys(v)) {
        define(out, k, fromTagged((v as Record<string, unknown>)[k], `${path}.${k}`));
      }
      return out;
    }
    default:
      throw bad(`unknown tag ${JSON.stringify(tag)}`);
  }
}

/** Sets an own property, `__proto__` included, without touching prototypes. */
function define(target: object, k: string, value: unknown): void {
  Object.defineProperty(target, k, { value, enumerable: true, writable: true, configurable: true });
}
