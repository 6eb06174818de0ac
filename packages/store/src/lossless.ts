import { Packr, Unpackr } from 'msgpackr';

/**
 * The envelope: how a value is written that plain msgpack would not give back exactly.
 *
 * The codec's msgpack changes a few values on the way through: a string holding half of a
 * surrogate pair (text cut in the middle of an emoji) comes back with U+FFFD in its place, a
 * `__proto__` key comes back renamed `__proto_`, `-0` as `0`, a hole in an array as
 * `undefined`, an object without a prototype with one; an object of more than 65,535 keys, or
 * one with keys of its own named `constructor` and `toJSON`, cannot be written at all. A value
 * holding any of these is written whole in an envelope: a msgpack extension of type 0x43
 * around its wire form, in which objects are maps (read back as Maps, so that no key is
 * renamed and none can reach a prototype) and the rest is tagged. A tag is a map of one entry
 * whose key is a number (an object's keys are strings, so no object reads as a tag):
 *
 *   1  a string that is not well-formed   [its well-formed runs, each lone surrogate as its code unit]
 *   2  -0                                 0
 *   3  an array with holes                [length, index, item, index, item, ...]
 *   4  an object without a prototype      its map
 *
 * A key that is not a well-formed string is tagged as such a string. Uint8Arrays, Buffers and
 * Dates are written as the codec writes them. Every other value is written without an
 * envelope, so that only a value that needs one pays for it, and what stores hold from before
 * reads as it always did.
 */

/** The extension type of the envelope (msgpackr is never asked to read it: `openEnvelope` is). */
const ENVELOPE = 0x43;

const STRING = 1;
const NEGATIVE_ZERO = 2;
const SPARSE = 3;
const BARE = 4;

/** The most keys msgpackr writes in one object (it writes a map of 16-bit size). */
const MAX_PLAIN_KEYS = 0xffff;

const packr = new Packr({ useRecords: false, moreTypes: true });
const unpackr = new Unpackr({ useRecords: false, mapsAsObjects: false, int64AsType: 'number' });

/**
 * Whether plain msgpack would not give `value` back exactly. Runs on every write: it only
 * looks, and stops at the first thing it finds.
 */
export function needsEnvelope(value: unknown): boolean {
  return typeof value === 'object' ? value !== null && objectNeedsEnvelope(value) : changes(value);
}

/** Whether msgpack changes this string, number, boolean or undefined (not a hole). */
const changes = (value: unknown): boolean =>
  typeof value === 'string' ? !value.isWellFormed() : value === 0 && 1 / value < 0;

function objectNeedsEnvelope(value: object): boolean {
  if ((value as { constructor?: unknown }).constructor === Object)
    return entriesNeedEnvelope(value);
  if (Array.isArray(value)) return itemsNeedEnvelope(value);
  // An object without a prototype, or with a `constructor` key of its own: msgpackr would
  // look for a toJSON method in it.
  return !(value instanceof Uint8Array || value instanceof Date);
}

function itemsNeedEnvelope(array: unknown[]): boolean {
  for (let i = 0; i < array.length; i++) {
    const item: unknown = array[i];
    if (typeof item === 'object') {
      if (item !== null && objectNeedsEnvelope(item)) return true;
    } else if (item === undefined) {
      if (!(i in array)) return true;
    } else if (changes(item)) return true;
  }
  return false;
}

function entriesNeedEnvelope(object: object): boolean {
  let keys = 0;
  for (const k in object) {
    if (k === '__proto__' || !k.isWellFormed()) return true;
    const item: unknown = (object as Record<string, unknown>)[k];
    if (typeof item === 'object') {
      if (item !== null && objectNeedsEnvelope(item)) return true;
    } else if (changes(item)) return true;
    keys++;
  }
  return keys > MAX_PLAIN_KEYS;
}

/** `value` in an envelope. */
export function sealEnvelope(value: unknown): Buffer {
  const inner = packr.pack(toWire(value));
  const length = inner.length;
  const head = length < 0x100 ? 3 : length < 0x10000 ? 4 : 6;
  const out = Buffer.allocUnsafe(head + length);
  if (head === 3) {
    out[0] = 0xc7;
    out[1] = length;
  } else if (head === 4) {
    out[0] = 0xc8;
    out.writeUInt16BE(length, 1);
  } else {
    out[0] = 0xc9;
    out.writeUInt32BE(length, 1);
  }
  out[head - 1] = ENVELOPE;
  out.set(inner, head);
  return out;
}

/** Where the wire form starts if `bytes` are an envelope, else -1. */
function envelopeStart(bytes: Uint8Array): number {
  switch (bytes[0]) {
    case 0xc7:
      return bytes[2] === ENVELOPE ? 3 : -1;
    case 0xc8:
      return bytes[3] === ENVELOPE ? 4 : -1;
    case 0xc9:
      return bytes[5] === ENVELOPE ? 6 : -1;
    default:
      return -1;
  }
}

export const isEnvelope = (bytes: Uint8Array): boolean => envelopeStart(bytes) >= 0;

/** The value in an envelope; throws if it is damaged. */
export function openEnvelope(bytes: Buffer): unknown {
  const head = envelopeStart(bytes);
  const length =
    head === 3 ? bytes[1]! : head === 4 ? bytes.readUInt16BE(1) : bytes.readUInt32BE(1);
  if (head + length !== bytes.length) throw new Error('The envelope has the wrong length');
  return fromWire(unpackr.unpack(bytes.subarray(head)));
}

const tag = (kind: number, data: unknown): Map<number, unknown> => new Map([[kind, data]]);

function toWire(value: unknown): unknown {
  switch (typeof value) {
    case 'string':
      return value.isWellFormed() ? value : tag(STRING, splitLoneSurrogates(value));
    case 'number':
      return value === 0 && 1 / value < 0 ? tag(NEGATIVE_ZERO, 0) : value;
    case 'object':
      break;
    default:
      return value;
  }
  if (value === null || value instanceof Date || value instanceof Uint8Array) return value;
  if (Array.isArray(value)) return arrayToWire(value);
  const map = new Map<unknown, unknown>();
  for (const k of Object.keys(value)) {
    map.set(toWire(k), toWire((value as Record<string, unknown>)[k]));
  }
  return Object.getPrototypeOf(value) === null ? tag(BARE, map) : map;
}

function arrayToWire(array: unknown[]): unknown {
  const items: unknown[] = [];
  let holes = false;
  for (let i = 0; i < array.length; i++) {
    if (i in array) items.push(toWire(array[i]));
    else holes = true;
  }
  if (!holes) return items;
  const sparse: unknown[] = [array.length];
  for (let i = 0; i < array.length; i++) if (i in array) sparse.push(i, toWire(array[i]));
  return tag(SPARSE, sparse);
}

/** A string as its well-formed runs, with each lone surrogate as its code unit. */
function splitLoneSurrogates(text: string): (string | number)[] {
  const parts: (string | number)[] = [];
  let start = 0;
  for (let i = 0; i < text.length; i++) {
    const unit = text.charCodeAt(i);
    if (unit < 0xd800 || unit > 0xdfff) continue;
    if (unit < 0xdc00 && i + 1 < text.length) {
      const next = text.charCodeAt(i + 1);
      if (next >= 0xdc00 && next <= 0xdfff) {
        i++;
        continue;
      }
    }
    if (i > start) parts.push(text.slice(start, i));
    parts.push(unit);
    start = i + 1;
  }
  if (start < text.length) parts.push(text.slice(start));
  return parts;
}

function fromWire(wire: unknown): unknown {
  if (typeof wire !== 'object' || wire === null) return wire;
  if (Array.isArray(wire)) {
    for (let i = 0; i < wire.length; i++) wire[i] = fromWire(wire[i]);
    return wire;
  }
  if (!(wire instanceof Map)) return wire;
  const first: unknown = wire.keys().next().value;
  if (typeof first !== 'number') return toObject(wire, {});
  if (wire.size !== 1) throw new Error('A tag has more than one entry');
  const data: unknown = wire.get(first);
  switch (first) {
    case STRING:
      return joinString(data);
    case NEGATIVE_ZERO:
      if (data !== 0) break;
      return -0;
    case SPARSE:
      return toSparse(data);
    case BARE:
      if (!(data instanceof Map)) break;
      return toObject(data, Object.create(null) as object);
  }
  throw new Error(`A tag ${first} is not one this version knows`);
}

function toObject(map: Map<unknown, unknown>, out: object): object {
  for (const [wireKey, wireValue] of map) {
    const k = typeof wireKey === 'string' ? wireKey : fromWire(wireKey);
    if (typeof k !== 'string') throw new Error('An object has a key that is not a string');
    // An own property, `__proto__` included, whatever the prototype has.
    Object.defineProperty(out, k, {
      value: fromWire(wireValue),
      enumerable: true,
      writable: true,
      configurable: true,
    });
  }
  return out;
}

function joinString(parts: unknown): string {
  if (!Array.isArray(parts)) throw new Error('A string tag holds an array');
  let text = '';
  for (const part of parts) {
    if (typeof part === 'string') text += part;
    else if (typeof part === 'number' && part >= 0xd800 && part <= 0xdfff)
      text += String.fromCharCode(part);
    else throw new Error('A string tag holds strings and surrogates');
  }
  return text;
}

function toSparse(data: unknown): unknown[] {
  const fields = Array.isArray(data) ? data : [];
  const length: unknown = fields[0];
  if (!Number.isInteger(length) || (length as number) < 0 || (length as number) > 2 ** 32 - 1)
    throw new Error('A sparse array tag starts with its length');
  const array = new Array<unknown>(length as number);
  let last = -1;
  for (let i = 1; i < fields.length; i += 2) {
    const index: unknown = fields[i];
    if (!Number.isInteger(index) || (index as number) <= last || (index as number) >= array.length)
      throw new Error('A sparse array tag holds its items after their indexes, in order');
    last = index as number;
    array[last] = fromWire(fields[i + 1]);
  }
  return array;
}
