/** The log formats 3 and 4 wrote (`CAIRN-LOG`): read once when such a store is opened, then replaced. */
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { encode } from '../src/codec.js';
import { CURRENT_SCHEMA_VERSION, LevelStore, MIGRATIONS, type Run } from '../src/index.js';
import { metaKey, taskKey } from '../src/keys.js';
import { LEGACY_LOG_FILE, decodeLegacyLog } from '../src/legacy-log.js';
import { LOG_FILE, StoreLog } from '../src/log-file.js';
import { crc32, type LogBatch } from '../src/log-format.js';
import { makeRun, makeTask } from '../src/suite/fixtures.js';
import { withRawDb } from '../../../test/helpers/raw.js';

/** A record as formats 3 and 4 wrote it: magic, payload length, CRC-32, msgpack payload. */
function legacyRecord(batch: LogBatch): Buffer {
  const payload = Buffer.from(encode([batch.seq, batch.entries]));
  const header = Buffer.alloc(12);
  header.writeUInt32LE(0xca1f_0106, 0);
  header.writeUInt32LE(payload.length, 4);
  header.writeUInt32LE(crc32(payload), 8);
  return Buffer.concat([header, payload]);
}

/** A format-4 file header with `base`. */
function legacyHeader(base: number): Buffer {
  const header = Buffer.alloc(16);
  header.writeUInt32LE(0xca1f_0204, 0);
  header.writeDoubleLE(base, 8);
  header.writeUInt32LE(crc32(header.subarray(8)), 4);
  return header;
}

const task = (run: Run, id: string): [string, Uint8Array] => [
  taskKey(run.id, id),
  encode(makeTask(run, { taskId: id })),
];

describe('decodeLegacyLog', () => {
  const run = makeRun();
  const batches: LogBatch[] = [1, 2, 3].map((seq) => ({ seq, entries: [task(run, `t${seq}`)] }));

  it('reads a format-4 log: the records that follow its base, up to the first damaged one', () => {
    const records = batches.map(legacyRecord);
    const log = decodeLegacyLog(Buffer.concat([legacyHeader(0), ...records]));
    expect(log.base).toBe(0);
    expect(log.batches.map((b) => b.seq)).toEqual([1, 2, 3]);
    const damaged = Buffer.from(records[1]!);
    damaged[damaged.length - 1] = damaged[damaged.length - 1]! ^ 1;
    const cut = decodeLegacyLog(
      Buffer.concat([legacyHeader(0), records[0]!, damaged, records[2]!]),
    );
    expect(cut.batches.map((b) => b.seq)).toEqual([1]);
  });

  it('reads a format-3 log (no header) as records without a base; a torn header as nothing', () => {
    const bare = decodeLegacyLog(Buffer.concat(batches.map(legacyRecord)));
    expect(bare.base).toBeUndefined();
    expect(bare.batches.map((b) => b.seq)).toEqual([1, 2, 3]);
    const torn = legacyHeader(5);
    torn[9] = torn[9]! ^ 0xff;
    expect(decodeLegacyLog(Buffer.concat([torn, legacyRecord(batches[0]!)]))).toEqual({
      base: undefined,
      batches: [],
    });
  });
});

describe('opening a store of format 4', () => {
  const dirs: string[] = [];
  afterEach(() => {
    for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
  });

  /**
   * A store as format 4 left it after a crash: LevelDB at format 4 with `appliedSeq` at the
   * legacy log's base, and `CAIRN-LOG` holding `log` (no `CAIRN-WAL`, no `meta/logOpen`).
   */
  async function format4(
    log: (base: number, run: Run) => Buffer,
  ): Promise<{ path: string; run: Run }> {
    const path = mkdtempSync(join(tmpdir(), 'cairn-legacy-log-'));
    dirs.push(path);
    const store = new LevelStore({
      path,
      targetSchemaVersion: 4,
      migrations: MIGRATIONS.filter((m) => m.to <= 4),
    });
    await store.open();
    const run = makeRun();
    await store.createRun(run);
    await store.close();
    rmSync(join(path, LOG_FILE));
    await withRawDb(path, async (db) => {
      await db.del(metaKey('logOpen'));
      await db.put(metaKey('appliedSeq'), encode(10));
    });
    writeFileSync(join(path, LEGACY_LOG_FILE), log(10, run));
    return { path, run };
  }

  it('applies what its CAIRN-LOG holds, removes it, and writes through CAIRN-WAL from then on', async () => {
    const { path, run } = await format4((base, r) =>
      Buffer.concat([
        legacyHeader(base),
        legacyRecord({ seq: base + 1, entries: [task(r, 'a')] }),
        legacyRecord({ seq: base + 2, entries: [task(r, 'b')] }),
      ]),
    );
    const store = new LevelStore({ path });
    await store.open();
    try {
      expect(store.schemaVersion).toBe(CURRENT_SCHEMA_VERSION);
      expect((await store.listTasks(run.id)).map((t) => t.taskId)).toEqual(['a', 'b']);
      expect(existsSync(join(path, LEGACY_LOG_FILE))).toBe(false);
      expect(StoreLog.read(join(path, LOG_FILE))!.base).toBe(12);
      await store.checkpoint({ tasks: [makeTask(run, { taskId: 'c' })] });
      expect(StoreLog.read(join(path, LOG_FILE))!.records.map((r) => r.seq)).toEqual([13]);
    } finally {
      await store.close();
    }
    // Cairn that knows only CAIRN-LOG refuses the store now.
    const older = new LevelStore({
      path,
      targetSchemaVersion: 4,
      migrations: MIGRATIONS.filter((m) => m.to <= 4),
    });
    await expect(older.open()).rejects.toMatchObject({ code: 'STORE_TOO_NEW' });
  });

  it('a format-3 log (no header): the records after appliedSeq, up to the first missing one', async () => {
    const { path, run } = await format4((base, r) =>
      Buffer.concat([
        legacyRecord({ seq: base, entries: [task(r, 'old')] }),
        legacyRecord({ seq: base + 1, entries: [task(r, 'a')] }),
        legacyRecord({ seq: base + 3, entries: [task(r, 'after-gap')] }),
      ]),
    );
    const store = new LevelStore({ path });
    await store.open();
    try {
      expect((await store.listTasks(run.id)).map((t) => t.taskId)).toEqual(['a']);
      expect(existsSync(join(path, LEGACY_LOG_FILE))).toBe(false);
    } finally {
      await store.close();
    }
  });

  it('a CAIRN-LOG left beside a store that already writes CAIRN-WAL is not read again, and is removed', async () => {
    const { path, run } = await format4((base, r) =>
      Buffer.concat([legacyHeader(base), legacyRecord({ seq: base + 1, entries: [task(r, 'a')] })]),
    );
    const store = new LevelStore({ path });
    await store.open();
    await store.close();
    writeFileSync(
      join(path, LEGACY_LOG_FILE),
      Buffer.concat([legacyHeader(0), legacyRecord({ seq: 1, entries: [task(run, 'stale')] })]),
    );
    const again = new LevelStore({ path });
    await again.open();
    try {
      expect((await again.listTasks(run.id)).map((t) => t.taskId)).toEqual(['a']);
      expect(existsSync(join(path, LEGACY_LOG_FILE))).toBe(false);
    } finally {
      await again.close();
    }
  });
});
