/** The store's log file: its records (log-format.ts) and the file written and read (log-file.ts). */
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { faults } from '../src/faults.js';
import { LOG_FILE, StoreLog } from '../src/log-file.js';
import {
  FILE_HEADER,
  RECORD_HEADER,
  bufferReader,
  crc32,
  encodeFileHeader,
  encodeRecord,
  keysOfDamaged,
  readLog,
  readRecordAt,
  scanRecords,
  type LogBatch,
  type LogContents,
} from '../src/log-format.js';

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
  { seq: 4, entries: [['meta\x00appliedSeq', bytes(9)]] },
];

/** Batches in a form that compares by content (values decode as Buffers). */
function plain(batches: readonly LogBatch[]): unknown {
  return batches.map((batch) => ({
    seq: batch.seq,
    entries: batch.entries.map(([key, value]) => [key, value === null ? null : [...value]]),
  }));
}

/** A log file's bytes: a header with `base`, then each batch's record. */
function logBytes(base: number, batches: readonly LogBatch[], synced = 0): Buffer {
  return Buffer.concat([encodeFileHeader(base), ...batches.map((b) => encodeRecord(b, synced))]);
}

const read = (buf: Uint8Array): LogContents => readLog(bufferReader(buf));

describe('records', () => {
  it('round-trip: unicode and \\x00 keys, bytes, deletions, no entries, the writer`s synced position', () => {
    const contents = read(logBytes(0, BATCHES, 0));
    expect(plain(contents.records)).toEqual(plain(BATCHES));
    expect(contents.records[0]!.entries[0]![1]).toBeInstanceOf(Uint8Array);
    expect(contents.records[0]!.entries[2]![1]).toBeNull();
    expect(contents.records[1]!.entries).toEqual([]);
    expect(contents.stop).toEqual({
      offset: contents.records[3]!.offset + contents.records[3]!.length,
      reason: 'end',
    });
    const record = encodeRecord(BATCHES[2]!, 1);
    const found = readRecordAt(bufferReader(record), 0);
    expect(found).toMatchObject({
      record: { seq: 3, synced: 1, offset: 0, length: record.length },
    });
  });

  it('checks a CRC-32 over the sequence numbers and the body', () => {
    const record = encodeRecord(BATCHES[0]!, 0);
    expect(record.readUInt32LE(4)).toBe(record.length - RECORD_HEADER);
    expect(record.readUInt32LE(8)).toBe(crc32(record.subarray(12)));
  });

  it('reads nothing from a file shorter than its header, and an empty file as ending at once', () => {
    expect(read(new Uint8Array(0))).toEqual({
      base: undefined,
      records: [],
      stop: { offset: 0, reason: 'end' },
    });
    expect(read(encodeFileHeader(3).subarray(0, 9)).stop).toEqual({ offset: 0, reason: 'damaged' });
    expect(read(encodeFileHeader(3))).toEqual({
      base: 3,
      records: [],
      stop: { offset: FILE_HEADER, reason: 'end' },
    });
  });
});

describe('where reading in sequence stops, and why', () => {
  const records = BATCHES.map((b) => encodeRecord(b, 0));
  const at = (i: number): number =>
    FILE_HEADER + records.slice(0, i).reduce((n, r) => n + r.length, 0);
  const withSecond = (second: Buffer): Buffer =>
    Buffer.concat([encodeFileHeader(0), records[0]!, second, records[2]!, records[3]!]);

  it('a last record cut at any length: incomplete, after exactly the complete ones', () => {
    const head = logBytes(0, BATCHES.slice(0, 3));
    const last = records[3]!;
    for (let cut = 1; cut < last.length; cut++) {
      const contents = read(Buffer.concat([head, last.subarray(0, cut)]));
      expect(plain(contents.records), `cut at ${cut}`).toEqual(plain(BATCHES.slice(0, 3)));
      expect(contents.stop, `cut at ${cut}`).toEqual({ offset: at(3), reason: 'incomplete' });
    }
    expect(read(Buffer.concat([head, last])).records).toHaveLength(4);
  });

  it('a flipped bit anywhere in a record: damaged', () => {
    for (let i = 0; i < records[1]!.length * 8; i += 7) {
      const second = Buffer.from(records[1]!);
      second[i >> 3]! ^= 1 << (i & 7);
      const contents = read(withSecond(second));
      expect(plain(contents.records), `bit ${i}`).toEqual(plain(BATCHES.slice(0, 1)));
      // A flipped length may run past the end of the file.
      expect(['damaged', 'incomplete'], `bit ${i}`).toContain(contents.stop.reason);
      expect(contents.stop.offset).toBe(at(1));
    }
  });

  it('a body whose lengths do not add up, with a correct CRC: damaged', () => {
    const second = Buffer.from(encodeRecord(BATCHES[2]!, 0));
    second.writeUInt32LE(7, RECORD_HEADER); // 7 entries, where there are 2
    second.writeUInt32LE(crc32(second.subarray(12)), 8);
    expect(read(Buffer.concat([encodeFileHeader(0), records[0]!, second])).stop.reason).toBe(
      'damaged',
    );
  });

  it('zeros, a record of an earlier start (sequence at most the base), a record out of sequence', () => {
    expect(read(Buffer.concat([logBytes(0, BATCHES.slice(0, 1)), Buffer.alloc(64)])).stop).toEqual({
      offset: at(1),
      reason: 'zeros',
    });
    const stale = Buffer.concat([
      encodeFileHeader(3),
      encodeRecord({ seq: 4, entries: [] }, 0),
      records[0]!,
    ]);
    const contents = read(stale);
    expect(contents.records.map((r) => r.seq)).toEqual([4]);
    expect(contents.stop.reason).toBe('stale');
    const skipped = Buffer.concat([
      encodeFileHeader(3),
      encodeRecord({ seq: 4, entries: [] }, 0),
      encodeRecord({ seq: 6, entries: [] }, 0),
    ]);
    expect(read(skipped).stop.reason).toBe('out-of-sequence');
  });

  it('a damaged header: no base, and nothing read', () => {
    const file = logBytes(5, [{ seq: 6, entries: [] }]);
    for (const i of [0, 4, 9, 15]) {
      const damaged = Buffer.from(file);
      damaged[i]! ^= 0x10;
      expect(read(damaged)).toEqual({
        base: undefined,
        records: [],
        stop: { offset: 0, reason: 'damaged' },
      });
    }
    // A base that is not a sequence number, with a matching CRC.
    expect(read(encodeFileHeader(1.5)).base).toBeUndefined();
  });
});

describe('scanRecords and keysOfDamaged', () => {
  it('finds every intact record past a damaged one, with what its writer knew synced', () => {
    const first = encodeRecord({ seq: 1, entries: [['a', bytes(1)]] }, 0);
    const second = Buffer.from(encodeRecord({ seq: 2, entries: [['runs\x00r1', bytes(2)]] }, 1));
    const third = encodeRecord({ seq: 3, entries: [['b', bytes(3)]] }, 2);
    second[RECORD_HEADER + 19]! ^= 0xff; // its value: the key still reads
    const file = Buffer.concat([encodeFileHeader(0), first, second, third, Buffer.alloc(100)]);
    expect(read(file).stop).toEqual({ offset: FILE_HEADER + first.length, reason: 'damaged' });
    const found = scanRecords(file, FILE_HEADER);
    expect(found.map((r) => [r.seq, r.synced])).toEqual([
      [1, 0],
      [3, 2],
    ]);
    expect(keysOfDamaged(file, FILE_HEADER + first.length)).toEqual(['runs\x00r1']);
  });

  it('finds records inside garbage and ignores a magic that starts no intact record', () => {
    const record = encodeRecord({ seq: 9, entries: [['k', bytes(1, 2)]] }, 4);
    const garbage = Buffer.from(Array.from({ length: 300 }, (_, i) => (i * 31 + 7) & 0xff));
    const fakeMagic = Buffer.concat([record.subarray(0, 8), Buffer.alloc(30, 0xee)]);
    const file = Buffer.concat([garbage, fakeMagic, record, garbage]);
    const found = scanRecords(file, 0);
    expect(found.map((r) => [r.seq, r.offset])).toEqual([[9, garbage.length + fakeMagic.length]]);
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
  const seqs = (): number[] => StoreLog.read(file)!.records.map((r) => r.seq);

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'cairn-log-file-'));
    file = join(dir, LOG_FILE);
  });

  afterEach(() => {
    rmSync(dir, { recursive: true, force: true });
  });

  it('is called CAIRN-WAL; reads a missing file as null and throws reading a directory', () => {
    expect(LOG_FILE).toBe('CAIRN-WAL');
    expect(StoreLog.read(file)).toBeNull();
    expect(() => StoreLog.read(dir)).toThrow();
  });

  it('starts with a header naming its base, appends batches after it and reads them back', () => {
    const log = StoreLog.start(file, 41);
    const batches = after(41, 4);
    try {
      expect(log.size).toBe(FILE_HEADER);
      expect(readFileSync(file).subarray(0, FILE_HEADER).equals(encodeFileHeader(41))).toBe(true);
      let expected = FILE_HEADER;
      for (const [i, batch] of batches.entries()) {
        log.append(batch, 41 + i);
        expected += encodeRecord(batch, 0).length;
        expect(log.size).toBe(expected);
      }
      // Readable while still open: each append is in the file once it returns.
      const contents = StoreLog.read(file)!;
      expect(contents.base).toBe(41);
      expect(plain(contents.records)).toEqual(plain(batches));
      expect(contents.records.map((r) => r.synced)).toEqual([41, 42, 43, 44]);
      // Without fillAhead the file ends with the last record.
      expect(statSync(file).size).toBe(expected);
    } finally {
      log.close();
    }
  });

  it('started again, reads none of the old records, even those its new records do not cover', async () => {
    const log = StoreLog.start(file, 0);
    try {
      for (const batch of after(0, 6)) log.append(batch, 0);
      // The header's sync runs on the thread pool: the log is started again once it resolves.
      const restarted = log.restart(6);
      expect(log.size).toBeGreaterThan(FILE_HEADER);
      await restarted;
      expect(log.size).toBe(FILE_HEADER);
      expect(StoreLog.read(file)).toMatchObject({
        base: 6,
        records: [],
        stop: { reason: 'stale' },
      });
      for (const batch of after(6, 2)) log.append(batch, 6);
      // The old records 3 to 6 are still in the file, behind the new ones.
      expect(seqs()).toEqual([7, 8]);
      expect(StoreLog.read(file)!.stop.reason).toBe('stale');
    } finally {
      log.close();
    }
    // Opening it again starts it again as well.
    StoreLog.start(file, 8).close();
    expect(StoreLog.read(file)).toMatchObject({ base: 8, records: [] });
  });

  it('reads a file record by record: a length past the end of the file stops it, without reading that much', () => {
    const record = encodeRecord({ seq: 3, entries: [] }, 0);
    record.writeUInt32LE(0xffff_fff0, 4);
    writeFileSync(file, Buffer.concat([logBytes(0, after(0, 2)), record]));
    const contents = StoreLog.read(file)!;
    expect(contents.records.map((r) => r.seq)).toEqual([1, 2]);
    expect(contents.stop.reason).toBe('incomplete');
  });

  it('a record cut short by a failed write is written over by the next append', () => {
    const log = StoreLog.start(file, 0);
    try {
      faults.arm('log.append', 'throw');
      expect(() => log.append(after(0, 1)[0]!, 0)).toThrow();
      faults.disarm('log.append');
      log.append(after(0, 1)[0]!, 0);
      expect(seqs()).toEqual([1]);
    } finally {
      faults.disarm('log.append');
      log.close();
    }
  });

  it('sync() resolves once the file is synced, and rejects when the sync fails', async () => {
    const log = StoreLog.start(file, 0);
    try {
      log.append(after(0, 1)[0]!, 0);
      await expect(log.sync()).resolves.toBeUndefined();
      faults.arm('log.sync', 'throw');
      await expect(log.sync()).rejects.toThrow();
    } finally {
      faults.disarm('log.sync');
      log.close();
    }
  });

  const big = (seq: number): LogBatch => ({
    seq,
    entries: [[`k${seq}`, new Uint8Array(10_000).fill(seq % 251)]],
  });

  it('with fillAhead, writes zeros ahead of its records, which appends write over and reads stop at', () => {
    const log = StoreLog.start(file, 0, { fillAhead: true });
    try {
      log.append(big(1), 0);
      // Zeros from the end of the record on, at least 64 KB of them.
      let content = readFileSync(file);
      expect(content.length).toBeGreaterThanOrEqual(log.size + 64 * 1024);
      expect(content.subarray(log.size).every((b) => b === 0)).toBe(true);
      // Three megabytes of records: the zeros stay ahead of them, a megabyte at most.
      for (let seq = 2; seq <= 300; seq++) {
        log.append(big(seq), 0);
        const size = statSync(file).size;
        expect(size).toBeGreaterThan(log.size);
        expect(size).toBeLessThanOrEqual(log.size + 64 * 1024 + 1024 * 1024);
      }
      content = readFileSync(file);
      expect(content.subarray(log.size).every((b) => b === 0)).toBe(true);
      expect(seqs()).toEqual(Array.from({ length: 300 }, (_, i) => i + 1));
      expect(StoreLog.read(file)!.stop.reason).toBe('zeros');
    } finally {
      log.close();
    }
  });

  it('with fillAhead, writes its zeros past everything the file has, never over old records', () => {
    // 200 KB of records written without zeros ahead.
    const first = StoreLog.start(file, 0);
    for (let seq = 1; seq <= 20; seq++) first.append(big(seq), 0);
    first.close();
    const before = readFileSync(file);
    const log = StoreLog.start(file, 20, { fillAhead: true });
    try {
      let seq = 21;
      while (statSync(file).size === before.length) {
        log.append(big(seq++), 20);
        expect(log.size).toBeLessThan(before.length);
      }
      // The zeros went after the old records; those not yet written over are as they were.
      const now = readFileSync(file);
      expect(now.subarray(log.size, before.length)).toEqual(before.subarray(log.size));
      expect(now.subarray(before.length).every((b) => b === 0)).toBe(true);
      expect(seqs()).toEqual(Array.from({ length: seq - 21 }, (_, i) => 21 + i));
    } finally {
      log.close();
    }
  });

  it('with fillAhead, zeros that cannot be written are skipped: the record is written all the same', async () => {
    faults.arm('log.fill', 'throw');
    const log = StoreLog.start(file, 0, { fillAhead: true });
    try {
      log.append(after(0, 1)[0]!, 0);
      expect(statSync(file).size).toBe(log.size);
      await expect(log.sync()).resolves.toBeUndefined();
      faults.disarm('log.fill');
      log.append(after(1, 1)[0]!, 1);
      expect(statSync(file).size).toBeGreaterThan(log.size);
      expect(seqs()).toEqual([1, 2]);
    } finally {
      faults.disarm('log.fill');
      log.close();
    }
  });

  it('with fillAhead, a failed sync of the zeros fails every later sync', async () => {
    faults.arm('log.fill-sync', 'throw');
    const log = StoreLog.start(file, 0, { fillAhead: true });
    try {
      log.append(after(0, 1)[0]!, 0);
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

describe('crc32', () => {
  const ascii = (text: string): Uint8Array => new TextEncoder().encode(text);

  it('matches the known vectors, unsigned', () => {
    expect(crc32(ascii('123456789'))).toBe(0xcbf43926);
    expect(crc32(new Uint8Array(0))).toBe(0);
    expect(crc32(ascii('The quick brown fox jumps over the lazy dog'))).toBe(0x414fa339);
    expect(crc32(bytes(0))).toBe(0xd202ef8d);
  });

  it('computes the same values, and checks records the same way, without zlib.crc32 (Node before 20.15)', async () => {
    vi.resetModules();
    vi.doMock('node:zlib', async (importOriginal) => {
      const actual = await importOriginal<typeof import('node:zlib')>();
      return { ...actual, crc32: undefined, default: { ...actual, crc32: undefined } };
    });
    try {
      const fallback = await import('../src/log-format.js');
      expect(fallback.crcIsNative).toBe(false);
      expect(fallback.crc32(ascii('123456789'))).toBe(0xcbf43926);
      const sample = Uint8Array.from({ length: 4096 }, (_, i) => (i * 131 + (i >> 3)) & 0xff);
      expect(fallback.crc32(sample)).toBe(crc32(sample));
      // Records written by either read with the other.
      const written = fallback.encodeRecord(BATCHES[2]!, 2);
      expect(written.equals(encodeRecord(BATCHES[2]!, 2))).toBe(true);
      expect(plain(read(Buffer.concat([encodeFileHeader(2), written])).records)).toEqual(
        plain([BATCHES[2]!]),
      );
      const file = Buffer.concat([encodeFileHeader(2), encodeRecord(BATCHES[2]!, 2)]);
      expect(plain(fallback.readLog(fallback.bufferReader(file)).records)).toEqual(
        plain([BATCHES[2]!]),
      );
      const damaged = Buffer.from(file);
      damaged[damaged.length - 1]! ^= 1;
      expect(fallback.readLog(fallback.bufferReader(damaged)).stop.reason).toBe('damaged');
    } finally {
      vi.doUnmock('node:zlib');
      vi.resetModules();
    }
  });
});
