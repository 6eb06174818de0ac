/**
 * Opening a LevelStore whose log was left by a crash, a power cut or damage: what is replayed,
 * what is refused with LOG_DAMAGED, and what a salvage keeps (log-recovery.ts).
 */
import { existsSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import { encode } from '../src/codec.js';
import { CairnError, LevelStore, diagnose, isCairnError, type Run } from '../src/index.js';
import { metaKey, runKey } from '../src/keys.js';
import { LOG_FILE, StoreLog } from '../src/log-file.js';
import { FILE_HEADER, encodeFileHeader, encodeRecord } from '../src/log-format.js';
import { makeRun } from '../src/suite/fixtures.js';
import {
  crashed,
  damageRecord,
  logFile,
  removeCrashed,
  stepTask,
} from '../../../test/helpers/damaged-log.js';
import { dumpDb, withRawDb } from '../../../test/helpers/raw.js';

const opened: LevelStore[] = [];

afterEach(async () => {
  for (const store of opened.splice(0)) await store.close();
  removeCrashed();
});

async function open(path: string, options: { salvage?: boolean } = {}): Promise<LevelStore> {
  const store = new LevelStore({ path, ...(options.salvage ? { onLogDamage: 'salvage' } : {}) });
  await store.open();
  opened.push(store);
  return store;
}

/** The error opening `path` fails with. */
async function refusal(path: string): Promise<CairnError> {
  const store = new LevelStore({ path });
  const error: unknown = await store.open().then(
    () => null,
    (e: unknown) => e,
  );
  if (error === null) opened.push(store);
  expect(isCairnError(error, 'LOG_DAMAGED')).toBe(true);
  expect(store.status).toBe('closed');
  return error as CairnError;
}

const stepOf = async (store: LevelStore, run: Run): Promise<unknown> =>
  (await store.getTask(run.id, 'step'))?.output;

describe('a log that reaches as far as LevelDB', () => {
  it('is replayed from its base over a LevelDB that has part of it: the state of its last record', async () => {
    const { path, run, base } = await crashed(5, 3);
    const store = await open(path);
    expect(await stepOf(store, run)).toBe(5);
    expect(store.salvage).toBeNull();
    // The log started again past every record.
    expect(StoreLog.read(logFile(path))!.base).toBe(base + 5);
  });

  it('a last record cut short or damaged, with nothing after it, is a torn end: the records before it are kept', async () => {
    const torn = await crashed(5, 2);
    writeFileSync(logFile(torn.path), readFileSync(logFile(torn.path)).subarray(0, -5));
    expect(await stepOf(await open(torn.path), torn.run)).toBe(4);
    const flipped = await crashed(5, 2);
    damageRecord(flipped.path, flipped.records, 5);
    expect(await stepOf(await open(flipped.path), flipped.run)).toBe(4);
  });

  it('a damaged record that no later record proves synced is a torn end too (a power cut), and the next log starts past every record seen', async () => {
    // Records 4 and 5 were written before record 3's sync had ended (synced: base + 2).
    const { path, run, base, records } = await crashed(5, 2, (n) => Math.min(n - 1, 2));
    damageRecord(path, records, 3);
    const store = await open(path);
    expect(await stepOf(store, run)).toBe(2);
    expect(StoreLog.read(logFile(path))!.base).toBe(base + 5);
    // New records are numbered past the old records 4 and 5, which stay in the file behind
    // them: they can never be read as new ones.
    await store.checkpoint({ tasks: [stepTask(run, 10)] });
    expect(StoreLog.read(logFile(path))!.records.map((r) => r.seq)).toEqual([base + 6]);
  });
});

describe('a damaged log is refused with LOG_DAMAGED, and nothing changes', () => {
  /** Opens `path` expecting a refusal, and checks that LevelDB and the log are untouched. */
  async function refused(path: string): Promise<CairnError> {
    const before = await dumpDb(path);
    const log = existsSync(logFile(path)) ? readFileSync(logFile(path)) : null;
    const error = await refusal(path);
    expect(await dumpDb(path)).toEqual(before);
    if (log !== null) expect(readFileSync(logFile(path))).toEqual(log);
    expect(error.details).toMatchObject({ file: logFile(path) });
    return error;
  }

  it('a log that ends before LevelDB: never an older batch over a newer one', async () => {
    // LevelDB has batches up to 4; record 2 is damaged, so the log reads only as far as 1.
    const { path, run, base, records } = await crashed(5, 4);
    const offset = damageRecord(path, records, 2);
    const error = await refused(path);
    expect(error.details).toMatchObject({
      reason: 'behind',
      offset,
      applied: base + 4,
      runs: [run.id],
    });
  });

  it('a damaged record that a later record proves synced', async () => {
    const { path, base, records } = await crashed(5, 1);
    const offset = damageRecord(path, records, 3);
    const error = await refused(path);
    expect(error.details).toMatchObject({ reason: 'record', offset, logged: base + 2 });
    expect(error.details?.droppedRecords).toBe(2);
  });

  it('an intact record out of sequence', async () => {
    const { path, base, records } = await crashed(3, 1);
    const skipped = encodeRecord({ seq: base + 5, entries: [] }, base + 3);
    writeFileSync(logFile(path), Buffer.concat([readFileSync(logFile(path)), skipped]));
    const error = await refused(path);
    expect(error.details).toMatchObject({ reason: 'out-of-sequence' });
    expect(error.details?.offset).toBe(FILE_HEADER + records.reduce((n, r) => n + r.length, 0));
  });

  it('a damaged header with records LevelDB lacks behind it', async () => {
    const { path } = await crashed(3, 1);
    const bytes = readFileSync(logFile(path));
    bytes[10] = bytes[10]! ^ 0x40;
    writeFileSync(logFile(path), bytes);
    expect((await refused(path)).details).toMatchObject({ reason: 'header', offset: 0 });
  });

  it('a header whose base is past LevelDB', async () => {
    const { path, base } = await crashed(2, 2);
    const bytes = readFileSync(logFile(path));
    encodeFileHeader(base + 7).copy(bytes, 0);
    writeFileSync(logFile(path), bytes);
    expect((await refused(path)).details).toMatchObject({ reason: 'base-ahead' });
  });

  it('a log missing although the store did not close cleanly', async () => {
    const { path } = await crashed(3, 1);
    rmSync(logFile(path));
    expect((await refused(path)).details).toMatchObject({ reason: 'missing', offset: 0 });
  });
});

describe('what is not damage', () => {
  it('a log missing after a clean close: nothing was in it', async () => {
    const { path, run } = await crashed(3, 1);
    const store = await open(path);
    await store.close();
    rmSync(logFile(path));
    const again = await open(path);
    expect(await stepOf(again, run)).toBe(3);
    expect(existsSync(logFile(path))).toBe(true);
  });

  it('a header torn while the log started again, LevelDB having every record behind it', async () => {
    const { path, run, base } = await crashed(3, 3);
    await withRawDb(path, (db) => db.put(metaKey('appliedSeq'), encode(base + 3)));
    const bytes = readFileSync(logFile(path));
    bytes.fill(0xab, 0, 9);
    writeFileSync(logFile(path), bytes);
    const store = await open(path);
    expect(await stepOf(store, run)).toBe(3);
    expect(StoreLog.read(logFile(path))!.base).toBe(base + 3);
  });
});

describe("onLogDamage: 'salvage'", () => {
  it('keeps LevelDB (never rolled back), applies the records that follow it without a gap, and marks the runs', async () => {
    // LevelDB has 4; records 2 is damaged; 5 and 6 follow LevelDB's position and are intact.
    const { path, run, base, records } = await crashed(6, 4);
    const offset = damageRecord(path, records, 2);
    const damagedLog = readFileSync(logFile(path));
    const store = await open(path, { salvage: true });
    expect(await stepOf(store, run)).toBe(6);
    const report = store.salvage!;
    expect(report).toMatchObject({ reason: 'behind', offset, applied: 2, dropped: 0 });
    expect(report.runs).toEqual([run.id]);
    // The damaged log is kept beside the store, byte for byte.
    expect(readFileSync(report.file)).toEqual(damagedLog);
    expect(readdirSync(path).filter((f) => f.startsWith(`${LOG_FILE}.damaged-`))).toHaveLength(1);
    expect(await store.salvages()).toEqual([report]);
    // diagnose() names it first.
    const diagnosis = await diagnose(store, run.id);
    expect(diagnosis.salvage).toEqual(report);
    expect(diagnosis.findings[0]).toContain('salvaged');
    expect((await store.verify()).problems.filter((p) => !p.key.startsWith('tasks'))).toEqual([]);
    await store.close();
    // The next open is an ordinary one, and the salvage is still on record.
    const again = await open(path);
    expect(again.salvage).toBeNull();
    expect(await again.salvages()).toEqual([report]);
    expect(StoreLog.read(logFile(path))!.base).toBeGreaterThanOrEqual(base + 6);
  });

  it('a damaged record proven synced: the records before it are applied, those after it dropped', async () => {
    const { path, run, records } = await crashed(5, 1);
    damageRecord(path, records, 3);
    const store = await open(path, { salvage: true });
    expect(await stepOf(store, run)).toBe(2);
    expect(store.salvage).toMatchObject({ reason: 'record', applied: 1, dropped: 2 });
    expect(store.salvage!.runs).toEqual([run.id]);
  });

  it('a missing log: LevelDB as it is, and every run not ended marked', async () => {
    const { path, run } = await crashed(3, 2);
    rmSync(logFile(path));
    const store = await open(path, { salvage: true });
    expect(await stepOf(store, run)).toBe(2);
    expect(store.salvage).toMatchObject({ reason: 'missing', applied: 0, runs: [run.id] });
    // A new log was started.
    expect(StoreLog.read(logFile(path))).not.toBeNull();
  });

  it('an undamaged log opens the same with or without it', async () => {
    const { path, run } = await crashed(3, 1);
    const store = await open(path, { salvage: true });
    expect(await stepOf(store, run)).toBe(3);
    expect(store.salvage).toBeNull();
    expect(await store.salvages()).toEqual([]);
  });

  it('is refused when it is not "refuse" or "salvage"; the meta it keeps cannot be written from outside', async () => {
    for (const bad of ['repair', true, 1, null]) {
      expect(() => new LevelStore({ onLogDamage: bad as never })).toThrow(
        expect.objectContaining({ code: 'INVALID_ARGUMENT' }),
      );
    }
    const { path } = await crashed(1, 1);
    const store = await open(path);
    for (const name of ['salvage', 'logOpen', 'appliedSeq']) {
      await expect(store.putMeta(name, [])).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
    }
    expect(await store.getMeta('logOpen')).toBe(true);
  });
});

describe('the run a salvage names', () => {
  it('is read from a damaged record where its checksum fails', async () => {
    const { path, records } = await crashed(4, 1, (n) => n - 1);
    const other = makeRun();
    // Record 3 writes another run's record too: damaged, its keys still name it.
    const bytes = readFileSync(logFile(path));
    const at = FILE_HEADER + records[0]!.length + records[1]!.length;
    const third = encodeRecord(
      {
        seq: bytes.readDoubleLE(at + 12),
        entries: [
          [runKey(other.id), encode(other)],
          ['x', new Uint8Array([1, 2, 3])],
        ],
      },
      bytes.readDoubleLE(at + 20),
    );
    third[third.length - 2] = third[third.length - 2]! ^ 0xff;
    const rebuilt = Buffer.concat([bytes.subarray(0, at), third, records[3]!]);
    writeFileSync(logFile(path), rebuilt);
    const error = await refusal(path);
    expect(error.details?.runs).toEqual(expect.arrayContaining([other.id]));
  });
});
