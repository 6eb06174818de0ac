import { randomBytes } from 'node:crypto';

let lastMs = 0;

// Random bytes are drawn 4 KiB at a time: one call to the system per 256 ids.
const POOL = 4096;
let pool = Buffer.alloc(0);
let offset = POOL;

/** Makes sure the pool holds `n` more random bytes. */
function reserve(n: number): void {
  if (offset + n > pool.length) {
    pool = randomBytes(POOL);
    offset = 0;
  }
}

function nextRandom(into: Buffer): void {
  reserve(into.length);
  pool.copy(into, 0, offset, offset + into.length);
  offset += into.length;
}
let counter = 0;

/**
 * A UUIDv7 (RFC 9562): 48 bits of Unix milliseconds, then a 12-bit counter that keeps ids
 * made in the same millisecond in order, then random bits. Ids sort by creation time.
 */
export function uuidv7(now: number = Date.now()): string {
  if (now > lastMs) {
    lastMs = now;
    reserve(1);
    counter = pool[offset++]! & 0x3f;
  } else {
    counter++;
    if (counter > 0xfff) {
      lastMs++;
      counter = 0;
    }
  }
  const ms = lastMs;
  const bytes = Buffer.allocUnsafe(16);
  nextRandom(bytes);
  bytes[0] = Math.floor(ms / 2 ** 40) & 0xff;
  bytes[1] = Math.floor(ms / 2 ** 32) & 0xff;
  bytes[2] = (ms >>> 24) & 0xff;
  bytes[3] = (ms >>> 16) & 0xff;
  bytes[4] = (ms >>> 8) & 0xff;
  bytes[5] = ms & 0xff;
  bytes[6] = 0x70 | ((counter >>> 8) & 0x0f);
  bytes[7] = counter & 0xff;
  bytes[8] = 0x80 | (bytes[8]! & 0x3f);
  const hex = bytes.toString('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

export function isUuid(value: string): boolean {
  return UUID_RE.test(value);
}
