/** A LevelStore's write path through its log (`CAIRN-WAL`) in both durabilities: acknowledgement, LevelDB behind, replay on open, and failures. */
import { storePort } from '../src/engine-port.js';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { encode } from '../src/codec.js';
import { faults } from '../src/faults.js';
import {
  CURRENT_SCHEMA_VERSION,
  LevelStore,
  MIGRATIONS,
  type Run,
  type Task,
} from '../src/index.js';
import { metaKey, runKey, taskKey } from '../src/keys.js';
import { LOG_FILE, StoreLog } from '../src/log-file.js';
import { encodeFileHeader, encodeRecord, type LogBatch } from '../src/log-format.js';
import { APPLY_AT_BATCHES } from '../src/logged-writes.js';
import { makeRun, makeTask } from '../src/suite/fixtures.js';
import { changedEntries, dumpDb, withRawDb } from '../../../test/helpers/raw.js';

const dirs: string[] = [];
const open: LevelStore[] = [];

afterEach(async () => {
  for (const store of open.splice(0)) await store.close();
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

function tempPath(): string {
  const dir = mkdtempSync(join(tmpdir(), 'cairn-store-log-'));
  dirs.push(dir);
  return dir;
}

async function openStore(path: string, durability: 'strict' | 'process'): Promise<LevelStore> {
  const store = new LevelStore({ path, durability });
  await store.open();
  open.push(store);
  return store;
}

async function closeStore(store: LevelStore): Promise<void> {
  open.splice(open.indexOf(store), 1);
  await store.close();
}

const logFile = (path: string): string => join(path, LOG_FILE);

/** A new store (in process durability unless told), holding one running run. */
async function storeWithRun(
  durability: 'strict' | 'process' = 'process',
): Promise<{ path: string; store: LevelStore; run: Run }> {
  const path = tempPath();
  const store = await openStore(path, durability);
  const run = makeRun();
  await store.createRun(run);
  return { path, store, run };
}

/**
 * Holds back every batch LevelDB is asked to write until the returned function is called;
 * with `fail`, every batch fails then (including those asked for later).
 */
function holdBatches(store: LevelStore, fail = false): () => void {
  const db = store.level as unknown as { batch: (...args: unknown[]) => unknown };
  const original = db.batch;
  let release!: () => void;
  const released = new Promise<void>((resolve) => (release = resolve));
  db.batch = function (this: unknown, ...args: unknown[]) {
    const batch = original.apply(this, args) as { write: (o: object) => Promise<void> };
    const write = batch.write.bind(batch);
    batch.write = async (options: object) => {
      await released;
      if (fail) throw Object.assign(new Error('disk gone'), { code: 'LEVEL_IO_ERROR' });
      return write(options);
    };
    return batch;
  };
  return release;
}

/** Waits (polling, up to 5 s) until `condition` holds. */
async function until(condition: () => boolean | Promise<boolean>): Promise<void> {
  const end = Date.now() + 5000;
  while (!(await condition())) {
    if (Date.now() > end) throw new Error('the condition never held');
    await new Promise((resolve) => setImmediate(resolve));
  }
}

/** The batches the log at `path` holds (since it last started). */
const logged = (path: string): LogBatch[] => StoreLog.read(logFile(path))?.records ?? [];

/** Writes a log at `path` that starts after `base` and holds `batches`. */
function writeLog(path: string, base: number, batches: readonly LogBatch[], synced = base): void {
  writeFileSync(
    logFile(path),
    Buffer.concat([encodeFileHeader(base), ...batches.map((b) => encodeRecord(b, synced))]),
  );
}

/** The base of the log at `path`. */
const baseOf = (path: string): number => StoreLog.read(logFile(path))!.base!;

/** The raw entries a checkpoint of `run` and `task` writes (as the store would). */
function recordBatch(seq: number, run: Run, task: Task): LogBatch {
  return {
    seq,
    entries: [
      [runKey(run.id), encode(run)],
      [taskKey(run.id, task.taskId), encode(task)],
    ],
  };
}

describe('a LevelStore in process durability', () => {
  it('acknowledges writes through its log, reads them at once, and starts the log again on close', async () => {
    const path = tempPath();
    const store = await openStore(path, 'process');
    expect(store.writesThroughLog).toBe(true);
    const run = makeRun();
    await store.createRun(run);
    const task = makeTask(run);
    await store.checkpoint({ tasks: [task] });
    expect(logged(path)).toHaveLength(2);
    // Read straight after being acknowledged: point reads from what is logged, listings once
    // LevelDB has it.
    expect(await store.getRun(run.id)).toEqual(run);
    expect(await store.listTasks(run.id)).toEqual([task]);
    expect((await store.listRuns()).items.map((r) => r.id)).toEqual([run.id]);
    await closeStore(store);
    expect(logged(path)).toEqual([]);
    const again = await openStore(path, 'strict');
    expect(again.writesThroughLog).toBe(true);
    expect(await again.listTasks(run.id)).toEqual([task]);
    // The log writes zeros ahead of its records, to sync them in place.
    await again.checkpoint({ tasks: [makeTask(run, { taskId: 'b' })] });
    expect(readFileSync(logFile(path)).length).toBeGreaterThanOrEqual(64 * 1024);
    expect((await again.verify()).ok).toBe(true);
  });

  it('applies on open what the log has and LevelDB does not, in order', async () => {
    const path = tempPath();
    const store = await openStore(path, 'process');
    const run = makeRun({ status: 'running' });
    await store.createRun(run);
    await closeStore(store);
    const base = baseOf(path);
    // What a process that died after logging, before LevelDB had its batches, leaves behind:
    // three batches, the last of which replaces the run written by the first.
    const first = makeTask(run, { taskId: 'a', seq: 0 });
    const second = makeTask(run, { taskId: 'b', seq: 1 });
    const done: Run = { ...run, status: 'completed', endedAt: run.createdAt + 5 };
    writeLog(path, base, [
      { seq: base + 1, entries: [[runKey(run.id), encode({ ...run, tags: ['x'] })]] },
      recordBatch(base + 2, run, first),
      recordBatch(base + 3, done, second),
    ]);
    await withRawDb(path, (db) => db.put(metaKey('logOpen'), encode(true)));
    // A store opened in strict durability replays the log too.
    const reopened = await openStore(path, 'strict');
    expect(await reopened.getRun(run.id)).toEqual(done);
    expect((await reopened.listTasks(run.id)).map((t) => t.taskId)).toEqual(['a', 'b']);
    expect(logged(path)).toEqual([]);
    expect(baseOf(path)).toBe(base + 3);
    await closeStore(reopened);
    // LevelDB says where it is: base + 3, and the next batches follow on from it.
    expect(await withRawDb(path, (db) => db.get(metaKey('appliedSeq')))).toEqual(encode(base + 3));
  });

  it('a log cut in the middle of a record applies the records before the cut', async () => {
    const { path, store, run } = await storeWithRun();
    await closeStore(store);
    const base = baseOf(path);
    const whole = encodeRecord(recordBatch(base + 1, run, makeTask(run, { taskId: 'kept' })), base);
    const cut = encodeRecord(recordBatch(base + 2, run, makeTask(run, { taskId: 'torn' })), base);
    writeFileSync(
      logFile(path),
      Buffer.concat([encodeFileHeader(base), whole, cut.subarray(0, cut.length - 7)]),
    );
    const reopened = await openStore(path, 'process');
    expect((await reopened.listTasks(run.id)).map((t) => t.taskId)).toEqual(['kept']);
    expect((await reopened.verify()).ok).toBe(true);
  });

  it('a batch LevelDB refuses after it was logged stops the store; reopening applies it', async () => {
    const { path, store, run } = await storeWithRun();
    await store.settled();
    const release = holdBatches(store, true);
    const task = makeTask(run);
    // Acknowledged: the log has it. Then LevelDB refuses it.
    await store.checkpoint({ tasks: [task] });
    release();
    await expect(store.listTasks(run.id)).rejects.toMatchObject({ code: 'WRITE_FAILED' });
    await expect(store.checkpoint({ tasks: [{ ...task, meta: { n: 2 } }] })).rejects.toMatchObject({
      code: 'WRITE_FAILED',
    });
    await closeStore(store);
    expect(logged(path).length).toBeGreaterThan(0);
    const reopened = await openStore(path, 'process');
    expect(await reopened.listTasks(run.id)).toEqual([task]);
    expect((await reopened.verify()).ok).toBe(true);
  });

  it('keeps its log bounded: past 16 MiB it starts again once LevelDB has it all', async () => {
    const { path, store, run } = await storeWithRun();
    const big = 'x'.repeat(1024 * 1024);
    const writes: Promise<void>[] = [];
    for (let i = 0; i < 24; i++) {
      writes.push(store.checkpoint({ tasks: [makeTask(run, { taskId: `t${i}`, meta: { big } })] }));
      // One batch each: the next is issued after this one is acknowledged.
      await writes[i];
    }
    // 16 MiB, the record that crossed it, and the megabyte the file grows ahead.
    expect(statSync(logFile(path)).size).toBeLessThan(19 * 1024 * 1024);
    expect(baseOf(path)).toBeGreaterThan(0);
    expect(await store.listTasks(run.id)).toHaveLength(24);
    await closeStore(store);
    const reopened = await openStore(path, 'process');
    expect(await reopened.listTasks(run.id)).toHaveLength(24);
  });

  it('a log that cannot be read or opened fails the open with STORE_OPEN_FAILED, and releases the store', async () => {
    const path = tempPath();
    const store = await openStore(path, 'strict');
    const run = makeRun();
    await store.createRun(run);
    await closeStore(store);
    rmSync(logFile(path));
    mkdirSync(logFile(path));
    for (const durability of ['strict', 'process'] as const) {
      const failing = new LevelStore({ path, durability });
      await expect(failing.open()).rejects.toMatchObject({
        code: 'STORE_OPEN_FAILED',
        details: { file: logFile(path) },
      });
      expect(failing.status).toBe('closed');
    }
    rmSync(logFile(path), { recursive: true });
    // Nothing was left holding the database's lock, and nothing changed.
    const again = await openStore(path, 'process');
    expect(await again.getRun(run.id)).toEqual(run);
  });

  it('a damaged log is started again on open, so what is logged next can be read back', async () => {
    const { path, store, run } = await storeWithRun();
    await closeStore(store);
    // A first record torn by a kill: nothing in it can be read.
    const base = baseOf(path);
    const torn = encodeRecord(recordBatch(base + 1, run, makeTask(run, { taskId: 'torn' })), base);
    writeFileSync(logFile(path), Buffer.concat([encodeFileHeader(base), torn.subarray(0, -3)]));
    const reopened = await openStore(path, 'process');
    expect(logged(path)).toEqual([]);
    // Hold LevelDB's write back: what is acknowledged must be readable from the log alone.
    const release = holdBatches(reopened);
    const task = makeTask(run, { taskId: 'kept' });
    await reopened.checkpoint({ tasks: [task] });
    expect(logged(path).map((b) => b.entries.map(([k]) => k))).toEqual([[taskKey(run.id, 'kept')]]);
    release();
    expect(await reopened.listTasks(run.id)).toEqual([task]);
  });

  it('a point read waits for what was acknowledged before it, not for later writes', async () => {
    const { store, run } = await storeWithRun();
    let written = 0;
    let stop = false;
    const writer = (async () => {
      // The engine's path: nothing read before a write, so writes never wait for LevelDB.
      while (!stop && written < 3000) {
        const task = makeTask(run, { taskId: `t${written % 50}` });
        await storePort(store).write({ tasks: [task] }, { durable: true });
        written++;
      }
    })();
    while (written < 10) await new Promise((resolve) => setImmediate(resolve));
    const got = await store.getRun(run.id);
    const when = written;
    stop = true;
    await writer;
    expect(got).toEqual(run);
    // It answered while the writer was still going, long before its 3,000 writes.
    expect(when).toBeLessThan(1000);
  });

  it('verify() right after a write sees it whole', async () => {
    const path = tempPath();
    const store = await openStore(path, 'process');
    for (let i = 0; i < 20; i++) {
      const run = makeRun();
      void storePort(store).write(
        { runs: [run], tasks: [makeTask(run)] },
        { durable: true, created: true },
      );
      expect(await store.verify()).toMatchObject({ ok: true, problems: [] });
    }
  });

  it('lets timers and other callbacks run between the batches of a busy writer', async () => {
    const { store, run } = await storeWithRun();
    let written = 0;
    let firedAt = -1;
    setTimeout(() => (firedAt = written), 0);
    for (; written < 2000; written++) {
      const task = makeTask(run, { taskId: `t${written}` });
      await storePort(store).write({ tasks: [task] }, { durable: true });
    }
    // It ran while the writer was going, not after its last write.
    expect(firedAt).toBeGreaterThanOrEqual(0);
    expect(firedAt).toBeLessThan(2000);
  });

  it('the same store object reopened after a refused apply starts from what is on disk', async () => {
    const { path, store, run } = await storeWithRun();
    await store.settled();
    const release = holdBatches(store, true);
    // The engine's path: no read before the write (a public checkpoint would wait for 'a').
    await storePort(store).write({ tasks: [makeTask(run, { taskId: 'a' })] }, { durable: true });
    await storePort(store).write({ tasks: [makeTask(run, { taskId: 'b' })] }, { durable: true });
    release();
    await expect(store.listTasks(run.id)).rejects.toMatchObject({ code: 'WRITE_FAILED' });
    await closeStore(store);
    expect(logged(path).length).toBeGreaterThan(0);
    await store.open();
    open.push(store);
    await store.checkpoint({ tasks: [makeTask(run, { taskId: 'c' })] });
    expect((await store.listTasks(run.id)).map((t) => t.taskId)).toEqual(['a', 'b', 'c']);
    expect((await store.verify()).ok).toBe(true);
  });

  it("needs format 3: Cairn without the store's log refuses it; a format-2 store is only restamped", async () => {
    const { path, store } = await storeWithRun();
    expect(store.schemaVersion).toBe(CURRENT_SCHEMA_VERSION);
    await closeStore(store);
    const older = new LevelStore({
      path,
      targetSchemaVersion: 2,
      migrations: MIGRATIONS.filter((m) => m.to <= 2),
    });
    await expect(older.open()).rejects.toMatchObject({ code: 'STORE_TOO_NEW' });
    // Stamped 2 again, as a store written before the log: opening it changes the stamp only.
    await withRawDb(path, (db) => db.put(metaKey('schemaVersion'), encode(2)));
    const before = await dumpDb(path);
    const reopened = await openStore(path, 'strict');
    expect(reopened.schemaVersion).toBe(CURRENT_SCHEMA_VERSION);
    await closeStore(reopened);
    expect(changedEntries(before, await dumpDb(path))).toEqual([
      [metaKey('schemaVersion'), Buffer.from(encode(CURRENT_SCHEMA_VERSION)).toString('hex')],
    ]);
  });

  it('a store on the memory backend has no log', async () => {
    const { MemoryStore } = await import('../src/index.js');
    const store = new MemoryStore({ durability: 'process' });
    await store.open();
    expect(store.writesThroughLog).toBe(false);
    await store.close();
  });
});

describe('a LevelStore in strict durability', () => {
  it('acknowledges a batch once its log record is synced; LevelDB gets it behind, unsynced', async () => {
    const { path, store, run } = await storeWithRun('strict');
    expect(store.writesThroughLog).toBe(true);
    // LevelDB is held back: the acknowledged batch is in the log, and a read waits for LevelDB.
    const release = holdBatches(store);
    const task = makeTask(run, { taskId: 'a' });
    await store.checkpoint({ tasks: [task] });
    expect(
      logged(path)
        .map((b) => b.entries.map(([k]) => k))
        .flat(),
    ).toContain(taskKey(run.id, 'a'));
    let read = false;
    const listing = store.listTasks(run.id).then((tasks) => {
      read = true;
      return tasks;
    });
    // LevelDB's write is held: however many turns pass, the listing waits for it.
    for (let i = 0; i < 50; i++) await new Promise((resolve) => setImmediate(resolve));
    expect(read).toBe(false);
    release();
    expect(await listing).toEqual([task]);
  });

  it('a batch of soft writes is acknowledged before any sync, and synced with the next durable one or before a read', async () => {
    const { path, store, run } = await storeWithRun('strict');
    let syncs = 0;
    faults.arm('log.sync', () => void syncs++);
    try {
      const soft = makeTask(run, { taskId: 'soft', status: 'running' });
      await store.checkpoint({ tasks: [soft] }, { durable: false });
      expect(syncs).toBe(0);
      // One sync covers the soft batch and the durable one after it (the engine's path: a
      // public checkpoint reads first, and a read has the soft batch synced).
      const done = makeTask(run, { taskId: 'done' });
      await storePort(store).write({ tasks: [done] }, { durable: true });
      expect(syncs).toBe(1);
      expect((await store.listTasks(run.id)).map((t) => t.taskId).sort()).toEqual(['done', 'soft']);
      // A soft batch alone is synced before a read sees it.
      await store.checkpoint(
        { tasks: [makeTask(run, { taskId: 'later', status: 'running' })] },
        {
          durable: false,
        },
      );
      expect(syncs).toBe(1);
      expect((await store.getTask(run.id, 'later'))?.status).toBe('running');
      expect(syncs).toBe(2);
    } finally {
      faults.disarm('log.sync');
    }
    await closeStore(store);
    const reopened = await openStore(path, 'strict');
    expect(await reopened.listTasks(run.id)).toHaveLength(3);
  });

  it('with nothing reading, a soft batch is synced and synced batches reach LevelDB on their own', async () => {
    const { store, run } = await storeWithRun('strict');
    const db = store.level;
    let syncs = 0;
    faults.arm('log.sync', () => void syncs++);
    try {
      const soft = makeTask(run, { taskId: 'soft', status: 'running' });
      await store.checkpoint({ tasks: [soft] }, { durable: false });
      await until(() => syncs === 1);
      await until(async () => (await db.get(taskKey(run.id, 'soft'))) !== undefined);
      const durable = makeTask(run, { taskId: 'durable' });
      await storePort(store).write({ tasks: [durable] }, { durable: true });
      await until(async () => (await db.get(taskKey(run.id, 'durable'))) !== undefined);
      expect(syncs).toBe(2);
    } finally {
      faults.disarm('log.sync');
    }
  });

  it(`sends synced batches to LevelDB at once when ${APPLY_AT_BATCHES} are waiting, without their timer`, async () => {
    const { store, run } = await storeWithRun('strict');
    const db = store.level;
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    try {
      for (let i = 0; i < APPLY_AT_BATCHES - 1; i++) {
        await storePort(store).write(
          { tasks: [makeTask(run, { taskId: `t${i}`, seq: i })] },
          { durable: true },
        );
      }
      await new Promise((resolve) => setImmediate(resolve));
      expect(await db.get(taskKey(run.id, 't0'))).toBeUndefined();
      const last = `t${APPLY_AT_BATCHES - 1}`;
      await storePort(store).write({ tasks: [makeTask(run, { taskId: last })] }, { durable: true });
      await until(async () => (await db.get(taskKey(run.id, last))) !== undefined);
      expect(await db.get(taskKey(run.id, 't0'))).toBeDefined();
    } finally {
      vi.useRealTimers();
    }
    expect(await store.listTasks(run.id)).toHaveLength(APPLY_AT_BATCHES);
  });

  it('batches synced while LevelDB writes others go with the next timer, not straight after', async () => {
    const { store, run } = await storeWithRun('strict');
    const db = store.level;
    const release = holdBatches(store);
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    try {
      await storePort(store).write({ tasks: [makeTask(run, { taskId: 'a' })] }, { durable: true });
      // Taking `level` sends the batch waiting for its timer; LevelDB is held while writing it.
      void store.level;
      await storePort(store).write(
        { tasks: [makeTask(run, { taskId: 'b', seq: 1 })] },
        { durable: true },
      );
      expect(await db.get(taskKey(run.id, 'a'))).toBeUndefined();
      release();
      await until(async () => (await db.get(taskKey(run.id, 'a'))) !== undefined);
      for (let i = 0; i < 20; i++) await new Promise((resolve) => setImmediate(resolve));
      expect(await db.get(taskKey(run.id, 'b'))).toBeUndefined();
      vi.advanceTimersByTime(10);
      await until(async () => (await db.get(taskKey(run.id, 'b'))) !== undefined);
    } finally {
      vi.useRealTimers();
    }
    expect((await store.listTasks(run.id)).map((t) => t.taskId).sort()).toEqual(['a', 'b']);
  });

  it('a log sync that fails is WRITE_FAILED and stops the store; reopening applies what the log has', async () => {
    const { path, store, run } = await storeWithRun('strict');
    const task = makeTask(run, { taskId: 'a' });
    faults.arm('log.sync', 'throw');
    try {
      await expect(store.checkpoint({ tasks: [task] })).rejects.toMatchObject({
        code: 'WRITE_FAILED',
      });
    } finally {
      faults.disarm('log.sync');
    }
    // Whether the batch reached the disk is unknown: nothing more is read or written.
    await expect(store.getRun(run.id)).rejects.toMatchObject({ code: 'WRITE_FAILED' });
    await expect(
      store.checkpoint({ tasks: [makeTask(run, { taskId: 'b' })] }),
    ).rejects.toMatchObject({ code: 'WRITE_FAILED' });
    await closeStore(store);
    const reopened = await openStore(path, 'strict');
    expect(await reopened.getRun(run.id)).toEqual(run);
    // The record was written before its sync failed, and nothing after it was.
    expect((await reopened.listTasks(run.id)).map((t) => t.taskId)).toEqual(['a']);
    expect((await reopened.verify()).ok).toBe(true);
  });

  it('applies a log whole when LevelDB has some of it already, out of order (as a power cut leaves it)', async () => {
    const { path, store, run } = await storeWithRun('strict');
    await closeStore(store);
    // LevelDB kept batch 2 (unsynced, with its position) and lost batch 1.
    const done: Run = { ...run, status: 'completed', endedAt: run.createdAt + 5 };
    const first = makeTask(run, { taskId: 'a', seq: 0 });
    const base = baseOf(path);
    writeLog(path, base, [
      recordBatch(base + 1, run, first),
      recordBatch(base + 2, done, makeTask(run, { taskId: 'b', seq: 1 })),
    ]);
    await withRawDb(path, async (db) => {
      await db.put(runKey(run.id), encode(done));
      await db.put(metaKey('appliedSeq'), encode(base + 2));
      await db.put(metaKey('logOpen'), encode(true));
    });
    const reopened = await openStore(path, 'strict');
    expect(await reopened.getRun(run.id)).toEqual(done);
    expect((await reopened.listTasks(run.id)).map((t) => t.taskId)).toEqual(['a', 'b']);
    expect(logged(path)).toEqual([]);
  });
});

describe("LevelDB and the log's position in it", () => {
  for (const durability of ['strict', 'process'] as const) {
    it(`${durability}: every LevelDB batch records how far into the log it is; a clean close marks the log closed`, async () => {
      const { path, store, run } = await storeWithRun(durability);
      const db = store.level;
      expect(await db.get(metaKey('logOpen'))).toEqual(encode(true));
      for (let i = 0; i < 5; i++) {
        await storePort(store).write(
          { tasks: [makeTask(run, { taskId: `t${i}` })] },
          { durable: true },
        );
      }
      await store.settled();
      const last = logged(path).at(-1)!.seq;
      expect(await db.get(metaKey('appliedSeq'))).toEqual(encode(last));
      await closeStore(store);
      const dump = await dumpDb(path);
      expect(dump.get(metaKey('logOpen'))).toBe(Buffer.from(encode(false)).toString('hex'));
      expect(dump.get(metaKey('appliedSeq'))).toBe(Buffer.from(encode(last)).toString('hex'));
      expect(baseOf(path)).toBe(last);
    });

    it(`${durability}: LevelDB gets nothing the log has not synced: a failed sync stops the store before LevelDB has the batch`, async () => {
      const { store, run } = await storeWithRun(durability);
      await store.settled();
      faults.arm('log.sync', 'throw');
      try {
        const written = storePort(store).write(
          { tasks: [makeTask(run, { taskId: 'a' })] },
          { durable: true },
        );
        // `process` acknowledges before the sync; `strict` fails the write itself.
        if (durability === 'strict')
          await expect(written).rejects.toMatchObject({ code: 'WRITE_FAILED' });
        else await written;
        await expect(store.listTasks(run.id)).rejects.toMatchObject({ code: 'WRITE_FAILED' });
        expect(await store.level.get(taskKey(run.id, 'a'))).toBeUndefined();
      } finally {
        faults.disarm('log.sync');
      }
    });

    it(`${durability}: a point read answers from the log while LevelDB has not got the batch yet`, async () => {
      const { store, run } = await storeWithRun(durability);
      await store.settled();
      const release = holdBatches(store);
      const task = makeTask(run, { taskId: 'a' });
      await storePort(store).write({ tasks: [task] }, { durable: true });
      expect(await store.getTask(run.id, 'a')).toEqual(task);
      await storePort(store).write(
        { tasks: [{ ...task, status: 'completed' }] },
        { durable: true },
      );
      expect((await store.getTask(run.id, 'a'))?.status).toBe('completed');
      expect(await store.level.get(taskKey(run.id, 'a'))).toBeUndefined();
      release();
      await store.settled();
      expect((await store.getTask(run.id, 'a'))?.status).toBe('completed');
    });
  }

  for (const durability of ['strict', 'process'] as const) {
    it(`${durability}: the engine's soft writes of one turn reach the log in one record of their own, before their promises resolve`, async () => {
      const { path, store, run } = await storeWithRun(durability);
      await store.settled();
      const durable = storePort(store).write(
        { tasks: [makeTask(run, { taskId: 'a' })] },
        { durable: true },
      );
      const markers = ['b', 'c', 'd'].map((taskId) =>
        storePort(store).write(
          { tasks: [makeTask(run, { taskId, status: 'running' })] },
          { durable: false },
        ),
      );
      await Promise.all(markers);
      const records = logged(path).filter((b) =>
        b.entries.some(([k]) => k === taskKey(run.id, 'b')),
      );
      expect(records).toHaveLength(1);
      expect(records[0]!.entries.map(([k]) => k)).toEqual(
        ['b', 'c', 'd'].map((t) => taskKey(run.id, t)),
      );
      await durable;
      expect((await store.getTask(run.id, 'd'))?.status).toBe('running');
    });
  }
});
