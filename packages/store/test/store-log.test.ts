import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { encode } from '../src/codec.js';
import { faults } from '../src/faults.js';
import {
  FILE_HEADER,
  StoreLog,
  crc32,
  decodeLog,
  decodeRecords,
  encodeFileHeader,
  encodeRecord,
  type LogBatch,
} from '../src/store-log.js';

const bytes = (...values: number[]): Uint8Array => Uint8Array.from(values);

const BATCHES: readonly LogBatch[] = [
  {
    seq: 1,
    entries: [
      ['run\x00019a-ü-日本\x00state', bytes(1, 2, 3, 0, 255)],
      ['idx\x00status\x00running\x00🪨', new Uint8Array(0)],
      ['timer\x00gone', null],
    ],
  },
  { seq: 2, entries: [] },
  {
    seq: 3,
    entries: [
      ['a', null],
      ['\x00\x01\x02', bytes(...Array.from({ length: 300 }, (_, i) => i & 0xff))],
    ],
  },
  { seq: 4_294_967_296, entries: [['meta\x00appliedSeq', bytes(9)]] },
];

/** Batches in a form that compares by content (values decode as Buffers). */
function plain(batches: readonly LogBatch[]): unknown {
  return batches.map((batch) => ({
    seq: batch.seq,
    entries: batch.entries.map(([key, value]) => [key, value === null ? null : [...value]]),
  }));
}

function concat(batches: readonly LogBatch[]): Buffer {
  return Buffer.concat(batches.map(encodeRecord));
}

/** A record with this exact payload and a correct header (magic and length and CRC). */
function rawRecord(payload: Uint8Array): Buffer {
  const header = Buffer.alloc(12);
  header.writeUInt32LE(encodeRecord(BATCHES[0]!).readUInt32LE(0), 0);
  header.writeUInt32LE(payload.byteLength, 4);
  header.writeUInt32LE(crc32(payload), 8);
  return Buffer.concat([header, payload]);
}

describe('encodeRecord / decodeRecords', () => {
  it('round-trips several batches: unicode and \\x00 keys, bytes, deletes, no entries', () => {
    const decoded = decodeRecords(concat(BATCHES));
    expect(decoded).toHaveLength(BATCHES.length);
    expect(plain(decoded)).toEqual(plain(BATCHES));
    expect(decoded[0]!.entries[0]![1]).toBeInstanceOf(Uint8Array);
    expect(decoded[0]!.entries[2]![1]).toBeNull();
    expect(decoded[1]!.entries).toEqual([]);
  });

  it('writes a 12-byte header: length and CRC-32 of the payload', () => {
    const record = encodeRecord(BATCHES[0]!);
    const payload = record.subarray(12);
    expect(record.readUInt32LE(4)).toBe(payload.length);
    expect(record.readUInt32LE(8)).toBe(crc32(payload));
    expect(record.readUInt32LE(0)).toBe(encodeRecord(BATCHES[1]!).readUInt32LE(0));
  });

  it('decodes records inside a larger buffer (byteOffset respected)', () => {
    const records = concat(BATCHES);
    const outer = new Uint8Array(records.length + 10);
    outer.set(records, 7);
    const view = outer.subarray(7, 7 + records.length);
    expect(plain(decodeRecords(view))).toEqual(plain(BATCHES));
  });

  it('reads nothing from empty or header-short input', () => {
    expect(decodeRecords(new Uint8Array(0))).toEqual([]);
    expect(decodeRecords(encodeRecord(BATCHES[0]!).subarray(0, 11))).toEqual([]);
  });
});

describe('decodeRecords on damaged logs', () => {
  it('returns exactly the complete records before a last record cut at any length', () => {
    const before = BATCHES.slice(0, 3);
    const head = concat(before);
    const last = encodeRecord(BATCHES[3]!);
    for (let cut = 0; cut < last.length; cut++) {
      const log = Buffer.concat([head, last.subarray(0, cut)]);
      expect(plain(decodeRecords(log)), `cut at ${cut}`).toEqual(plain(before));
    }
    // The whole record is read (the loop above did check something that can pass).
    expect(decodeRecords(Buffer.concat([head, last]))).toHaveLength(4);
  });

  it('stops at a record whose payload has a flipped byte (CRC mismatch)', () => {
    const records = BATCHES.map(encodeRecord);
    const second = Buffer.from(records[1]!);
    second[second.length - 1]! ^= 0x01;
    const log = Buffer.concat([records[0]!, second, records[2]!, records[3]!]);
    expect(plain(decodeRecords(log))).toEqual(plain(BATCHES.slice(0, 1)));

    const first = Buffer.from(records[0]!);
    first[20]! ^= 0x80;
    expect(decodeRecords(Buffer.concat([first, records[1]!]))).toEqual([]);
  });

  it('stops at a record with a wrong CRC in its header', () => {
    const records = BATCHES.map(encodeRecord);
    const third = Buffer.from(records[2]!);
    third.writeUInt32LE((third.readUInt32LE(8) + 1) >>> 0, 8);
    const log = Buffer.concat([records[0]!, records[1]!, third, records[3]!]);
    expect(plain(decodeRecords(log))).toEqual(plain(BATCHES.slice(0, 2)));
  });

  it('stops at a wrong magic', () => {
    const records = BATCHES.map(encodeRecord);
    const third = Buffer.from(records[2]!);
    third[0]! ^= 0xff;
    const log = Buffer.concat([records[0]!, records[1]!, third, records[3]!]);
    expect(plain(decodeRecords(log))).toEqual(plain(BATCHES.slice(0, 2)));
    expect(decodeRecords(Buffer.concat([third, records[3]!]))).toEqual([]);
  });

  it('stops at a length that runs past the end', () => {
    const records = BATCHES.map(encodeRecord);
    const second = Buffer.from(records[1]!);
    second.writeUInt32LE(0xffff_ffff, 4);
    const log = Buffer.concat([records[0]!, second, records[2]!]);
    expect(plain(decodeRecords(log))).toEqual(plain(BATCHES.slice(0, 1)));
  });

  it('ignores garbage after the valid records', () => {
    const valid = concat(BATCHES);
    const garbage = [
      Buffer.from('not a record at all, just some trailing bytes'),
      Buffer.alloc(64, 0),
      Buffer.alloc(5, 0xff),
      Buffer.from(Array.from({ length: 257 }, (_, i) => (i * 31 + 7) & 0xff)),
    ];
    for (const tail of garbage) {
      expect(plain(decodeRecords(Buffer.concat([valid, tail])))).toEqual(plain(BATCHES));
    }
  });

  it('stops at a payload that is valid msgpack but not [seq, entries]', () => {
    const good = encodeRecord(BATCHES[0]!);
    const after = encodeRecord(BATCHES[1]!);
    const wrongShapes: unknown[] = [
      { seq: 2, entries: [] },
      [2],
      [2, [], 'extra'],
      ['2', []],
      [0, []],
      [-1, []],
      [1.5, []],
      [2, 'entries'],
      [2, [['key']]],
      [2, [['key', bytes(1), 'extra']]],
      [2, [[7, bytes(1)]]],
      [2, [['key', 'a string value']]],
      [2, [['key', 5]]],
      [2, [['key', { bytes: 1 }]]],
      [2, ['not an entry']],
      'text',
      42,
      null,
    ];
    // The same record with a well-formed payload is read: only the shape is wrong below.
    const control = rawRecord(encode([2, [['key', bytes(1)]]]));
    expect(decodeRecords(Buffer.concat([good, control, after]))).toHaveLength(3);
    for (const shape of wrongShapes) {
      const log = Buffer.concat([good, rawRecord(encode(shape)), after]);
      expect(plain(decodeRecords(log)), JSON.stringify(shape)).toEqual(plain(BATCHES.slice(0, 1)));
    }
  });

  it('stops at a payload that is not msgpack at all (with a correct CRC)', () => {
    const good = encodeRecord(BATCHES[0]!);
    const after = encodeRecord(BATCHES[1]!);
    for (const payload of [bytes(0xc1), bytes(0x92, 0x01), new Uint8Array(0)]) {
      const log = Buffer.concat([good, rawRecord(payload), after]);
      expect(plain(decodeRecords(log))).toEqual(plain(BATCHES.slice(0, 1)));
    }
  });
});

describe('StoreLog on a file', () => {
  let dir: string;
  let file: string;
  /** Batches numbered after `base`, with BATCHES' entries. */
  const after = (base: number, count: number): LogBatch[] =>
    Array.from({ length: count }, (_, i) => ({
      seq: base + i + 1,
      entries: BATCHES[i % BATCHES.length]!.entries,
    }));

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'cairn-store-log-'));
    file = join(dir, 'CAIRN-LOG');
  });

  afterEach(() => {
    rmSync(dir, { recursive: true, force: true });
  });

  it('reads a missing file as no batches', () => {
    expect(StoreLog.read(file)).toEqual({ base: undefined, batches: [] });
    expect(StoreLog.read(join(dir, 'no', 'such', 'dir', 'CAIRN-LOG')).batches).toEqual([]);
  });

  it('throws reading a path that is not a file', () => {
    expect(() => StoreLog.read(dir)).toThrow();
  });

  it('starts with a header naming its base, appends batches after it and reads them back', () => {
    const log = StoreLog.start(file, 41);
    const batches = after(41, 4);
    try {
      expect(log.size).toBe(FILE_HEADER);
      expect(readFileSync(file).subarray(0, FILE_HEADER).equals(encodeFileHeader(41))).toBe(true);
      let expected = FILE_HEADER;
      for (const batch of batches) {
        log.append(batch);
        expected += encodeRecord(batch).length;
        expect(log.size).toBe(expected);
      }
      // Readable while still open: each append is in the file once it returns.
      const read = StoreLog.read(file);
      expect(read.base).toBe(41);
      expect(plain(read.batches)).toEqual(plain(batches));
      // Without fillAhead the file ends with the last record.
      expect(statSync(file).size).toBe(expected);
    } finally {
      log.close();
    }
    expect(plain(StoreLog.read(file).batches)).toEqual(plain(batches));
  });

  it('reads only records that follow the base in sequence', () => {
    const log = StoreLog.start(file, 10);
    try {
      log.append(after(10, 1)[0]!);
      log.append({ seq: 13, entries: [] });
      log.append({ seq: 14, entries: [] });
    } finally {
      log.close();
    }
    expect(StoreLog.read(file).batches.map((b) => b.seq)).toEqual([11]);
    const wrongStart = StoreLog.start(file, 10);
    wrongStart.append({ seq: 12, entries: [] });
    wrongStart.close();
    expect(StoreLog.read(file)).toEqual({ base: 10, batches: [] });
  });

  it('started again, reads none of the old records, even those its new records do not cover', async () => {
    const log = StoreLog.start(file, 0);
    try {
      for (const batch of after(0, 6)) log.append(batch);
      // The header's sync runs on the thread pool: the log is started again once it resolves.
      const restarted = log.restart(6);
      expect(log.size).toBeGreaterThan(FILE_HEADER);
      await restarted;
      expect(log.size).toBe(FILE_HEADER);
      expect(StoreLog.read(file)).toEqual({ base: 6, batches: [] });
      const fresh = after(6, 2);
      for (const batch of fresh) log.append(batch);
      // The old records 3 to 6 are still in the file, behind the new ones.
      const read = StoreLog.read(file);
      expect(read.base).toBe(6);
      expect(plain(read.batches)).toEqual(plain(fresh));
    } finally {
      log.close();
    }
    // Opening it again starts it again as well.
    StoreLog.start(file, 8).close();
    expect(StoreLog.read(file)).toEqual({ base: 8, batches: [] });
  });

  it('reads the complete batches of a file whose last append was cut short', () => {
    const log = StoreLog.start(file, 0);
    const batches = after(0, 3);
    log.append(batches[0]!);
    log.append(batches[1]!);
    const end = log.size;
    log.close();
    const bytes = readFileSync(file);
    encodeRecord(batches[2]!).subarray(0, 20).copy(bytes, end);
    writeFileSync(file, bytes);
    expect(plain(StoreLog.read(file).batches)).toEqual(plain(batches.slice(0, 2)));
  });

  it('reads a file record by record: a length past the end of the file stops it, without reading that much', () => {
    const batches = after(0, 2);
    const record = encodeRecord({ seq: 3, entries: [] });
    record.writeUInt32LE(0xffff_fff0, 4);
    writeFileSync(file, Buffer.concat([encodeFileHeader(0), concat(batches), record]));
    const read = StoreLog.read(file);
    expect(read.base).toBe(0);
    expect(plain(read.batches)).toEqual(plain(batches));
    expect(plain(decodeLog(readFileSync(file)).batches)).toEqual(plain(batches));
  });

  it('a record cut short by a failed write is written over by the next append', () => {
    const log = StoreLog.start(file, 0);
    try {
      faults.arm('log.append', 'throw');
      expect(() => log.append(after(0, 1)[0]!)).toThrow();
      faults.disarm('log.append');
      log.append(after(0, 1)[0]!);
      expect(StoreLog.read(file).batches.map((b) => b.seq)).toEqual([1]);
    } finally {
      faults.disarm('log.append');
      log.close();
    }
  });

  it('a torn header reads as no batches; garbage or a format-3 log reads as records without a base', () => {
    const log = StoreLog.start(file, 5);
    log.append(after(5, 1)[0]!);
    log.close();
    const bytes = readFileSync(file);
    bytes[9] = bytes[9]! ^ 0xff;
    writeFileSync(file, bytes);
    expect(StoreLog.read(file)).toEqual({ base: undefined, batches: [] });
    writeFileSync(file, Buffer.from('garbage that is long enough for a header'));
    expect(StoreLog.read(file)).toEqual({ base: undefined, batches: [] });
    writeFileSync(file, concat(BATCHES.slice(0, 2)));
    const old = StoreLog.read(file);
    expect(old.base).toBeUndefined();
    expect(plain(old.batches)).toEqual(plain(BATCHES.slice(0, 2)));
    // Started again, a format-3 log is a log with a header.
    StoreLog.start(file, 2).close();
    expect(StoreLog.read(file)).toEqual({ base: 2, batches: [] });
  });

  it('sync() resolves once the file is synced, and rejects when the sync fails', async () => {
    const log = StoreLog.start(file, 0);
    try {
      log.append(after(0, 1)[0]!);
      await expect(log.sync()).resolves.toBeUndefined();
      faults.arm('log.sync', 'throw');
      await expect(log.sync()).rejects.toThrow();
    } finally {
      faults.disarm('log.sync');
      log.close();
    }
  });

  it('with fillAhead, writes zeros ahead of its records, which appends write over and reads stop at', () => {
    const log = StoreLog.start(file, 0, { fillAhead: true });
    const big = (seq: number): LogBatch => ({
      seq,
      entries: [[`k${seq}`, new Uint8Array(10_000).fill(seq % 251)]],
    });
    const batches: LogBatch[] = [];
    try {
      log.append(big(1));
      batches.push(big(1));
      // Zeros from the end of the record on, at least 64 KB of them.
      let bytes = readFileSync(file);
      expect(bytes.length).toBeGreaterThanOrEqual(log.size + 64 * 1024);
      expect(bytes.subarray(log.size).every((b) => b === 0)).toBe(true);
      // Three megabytes of records: the zeros stay ahead of them, a megabyte at most.
      for (let seq = 2; seq <= 300; seq++) {
        log.append(big(seq));
        batches.push(big(seq));
        const size = statSync(file).size;
        expect(size).toBeGreaterThan(log.size);
        expect(size).toBeLessThanOrEqual(log.size + 64 * 1024 + 1024 * 1024);
      }
      bytes = readFileSync(file);
      expect(bytes.subarray(log.size).every((b) => b === 0)).toBe(true);
      expect(plain(StoreLog.read(file).batches)).toEqual(plain(batches));
    } finally {
      log.close();
    }
  });

  it('with fillAhead, writes its zeros past everything the file has, never over old records', () => {
    const big = (seq: number): LogBatch => ({
      seq,
      entries: [[`k${seq}`, new Uint8Array(10_000).fill(seq % 251)]],
    });
    // 200 KB of records written without zeros ahead (as `process` durability writes them).
    const first = StoreLog.start(file, 0);
    for (let seq = 1; seq <= 20; seq++) first.append(big(seq));
    first.close();
    const before = readFileSync(file);
    const log = StoreLog.start(file, 20, { fillAhead: true });
    try {
      let seq = 21;
      while (statSync(file).size === before.length) {
        log.append(big(seq++));
        expect(log.size).toBeLessThan(before.length);
      }
      // The zeros went after the old records; those not yet written over are as they were.
      const now = readFileSync(file);
      expect(now.subarray(log.size, before.length)).toEqual(before.subarray(log.size));
      expect(now.subarray(before.length).every((b) => b === 0)).toBe(true);
      expect(StoreLog.read(file).batches.map((b) => b.seq)).toEqual(
        Array.from({ length: seq - 21 }, (_, i) => 21 + i),
      );
    } finally {
      log.close();
    }
  });

  it('with fillAhead, zeros that cannot be written are skipped: the record is written all the same', async () => {
    faults.arm('log.fill', 'throw');
    const log = StoreLog.start(file, 0, { fillAhead: true });
    try {
      const batch = after(0, 1)[0]!;
      log.append(batch);
      expect(statSync(file).size).toBe(log.size);
      await expect(log.sync()).resolves.toBeUndefined();
      faults.disarm('log.fill');
      log.append(after(1, 1)[0]!);
      expect(statSync(file).size).toBeGreaterThan(log.size);
      expect(StoreLog.read(file).batches.map((b) => b.seq)).toEqual([1, 2]);
    } finally {
      faults.disarm('log.fill');
      log.close();
    }
  });

  it('with fillAhead, a failed sync of the zeros fails every later sync', async () => {
    faults.arm('log.fill-sync', 'throw');
    const log = StoreLog.start(file, 0, { fillAhead: true });
    try {
      log.append(after(0, 1)[0]!);
      // The zeros' sync ends on the thread pool, some time after the append.
      let failed = false;
      for (let i = 0; i < 1000 && !failed; i++)
        failed = await log.sync().then(
          () => false,
          () => true,
        );
      expect(failed).toBe(true);
      faults.disarm('log.fill-sync');
      await expect(log.sync()).rejects.toThrow();
    } finally {
      faults.disarm('log.fill-sync');
      log.close();
    }
  });

  it('closes its descriptor: a second close throws', () => {
    const log = StoreLog.start(file, 0);
    log.close();
    expect(() => log.close()).toThrow();
  });
});

describe('decodeLog', () => {
  it('reads a header and the records after it; a header alone is no batches', () => {
    const batches = BATCHES.slice(0, 3);
    const bytes = Buffer.concat([encodeFileHeader(0), concat(batches)]);
    expect(plain(decodeLog(bytes).batches)).toEqual(plain(batches));
    expect(decodeLog(encodeFileHeader(7))).toEqual({ base: 7, batches: [] });
    // A base that is not a sequence number (the CRC matching) reads as a torn header.
    const odd = encodeFileHeader(1.5);
    expect(decodeLog(odd)).toEqual({ base: undefined, batches: [] });
  });
});

describe('crc32', () => {
  const ascii = (text: string): Uint8Array => new TextEncoder().encode(text);

  it('matches the known vectors', () => {
    expect(crc32(ascii('123456789'))).toBe(0xcbf43926);
    expect(crc32(new Uint8Array(0))).toBe(0);
    expect(crc32(ascii('The quick brown fox jumps over the lazy dog'))).toBe(0x414fa339);
    expect(crc32(bytes(0))).toBe(0xd202ef8d);
  });

  it('is unsigned', () => {
    const value = crc32(ascii('123456789'));
    expect(value).toBeGreaterThan(0x7fff_ffff);
  });

  it('computes the same values without zlib.crc32 (Node before 20.15)', async () => {
    vi.resetModules();
    vi.doMock('node:zlib', async (importOriginal) => {
      const actual = await importOriginal<typeof import('node:zlib')>();
      return { ...actual, crc32: undefined, default: { ...actual, crc32: undefined } };
    });
    try {
      const fallback = await import('../src/store-log.js');
      expect(fallback.crcIsNative).toBe(false);
      expect(fallback.crc32(ascii('123456789'))).toBe(0xcbf43926);
      expect(fallback.crc32(new Uint8Array(0))).toBe(0);
      const sample = Uint8Array.from({ length: 4096 }, (_, i) => (i * 131 + (i >> 3)) & 0xff);
      expect(fallback.crc32(sample)).toBe(crc32(sample));
      const record = fallback.encodeRecord(BATCHES[0]!);
      expect(plain(decodeRecords(record))).toEqual(plain(BATCHES.slice(0, 1)));
    } finally {
      vi.doUnmock('node:zlib');
      vi.resetModules();
    }
  });
});
