import { execFile } from 'node:child_process';
import {
  closeSync,
  existsSync,
  fsyncSync,
  openSync,
  readFileSync,
  readdirSync,
  renameSync,
  statSync,
  unlinkSync,
  writeFileSync,
  writeSync,
} from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import { ClassicLevel } from 'classic-level';
import { afterAll, afterEach, expect, it } from 'vitest';
import { Child } from './helpers/child.js';
import { levelBatch, levelValue } from './helpers/level-batches.js';
import {
  CUT_MODES,
  POWERCUT_PYTHON,
  describePowercut,
  mountIn,
  unmountAll,
  type CutMode,
  type CutReport,
  type PowercutMount,
} from './helpers/powercut.js';
import { tempDir } from './helpers/temp.js';

/**
 * The filesystem that loses power (test/powercut/powercut_fs.py) does what the power-cut
 * tests rely on: synced data survives every cut, unsynced data is lost as each mode says,
 * pending data follows its file through renames and goes away with it, reads (mmap too) see
 * the pending data, and a LevelDB on it keeps every write it synced.
 */

const cleanups: Array<() => Promise<void>> = [];
afterEach(unmountAll);
afterAll(async () => {
  await unmountAll();
  for (const cleanup of cleanups) await cleanup();
});

async function freshMount(): Promise<PowercutMount> {
  const { path, cleanup } = await tempDir('powercut-fs');
  cleanups.push(cleanup);
  return mountIn(path);
}

/** Writes each part with its own write(2) at the file's end, the file opened with `flags`. */
function writeParts(file: string, parts: readonly Buffer[], flags = 'a'): void {
  const fd = openSync(file, flags);
  try {
    for (const part of parts) writeSync(fd, part);
  } finally {
    closeSync(fd);
  }
}

function fsyncFile(file: string): void {
  const fd = openSync(file, 'r+');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

const filled = (length: number, byte: number): Buffer => Buffer.alloc(length, byte);

/** Cuts, then unmounts, and returns the report. */
async function cutAndUnmount(
  mount: PowercutMount,
  mode: CutMode,
  seed: number,
): Promise<CutReport> {
  const report = await mount.cut(mode, seed);
  await mount.unmount();
  return report;
}

await describePowercut('the power-cut filesystem', () => {
  it('serves reads, sizes and mmap reads from pending data, then fails everything with EIO once cut', async () => {
    const mount = await freshMount();
    const file = join(mount.path, 'a');
    writeParts(file, [filled(5000, 1), filled(5000, 2)]);
    expect(statSync(file).size).toBe(10_000);
    expect(statSync(join(mount.backing, 'a')).size).toBe(0);
    expect(readFileSync(file)).toEqual(Buffer.concat([filled(5000, 1), filled(5000, 2)]));
    // A write inside the file, across the two before.
    const fd = openSync(file, 'r+');
    writeSync(fd, filled(10, 9), 0, 10, 4995);
    closeSync(fd);
    const mapped = await promisify(execFile)(POWERCUT_PYTHON, [
      '-c',
      'import mmap, sys\nf = open(sys.argv[1], "rb")\nm = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)\nsys.stdout.write(m[4990:5010].hex())',
      file,
    ]);
    expect(mapped.stdout).toBe('01'.repeat(5) + '09'.repeat(10) + '02'.repeat(5));
    // A write(2) that starts inside a page may reach the filesystem as two writes.
    expect((await mount.stats()).pending).toBeGreaterThanOrEqual(3);

    await mount.cut('drop', 1);
    expect(() => readFileSync(file)).toThrow(expect.objectContaining({ code: 'EIO' }));
    expect(() => writeFileSync(join(mount.path, 'b'), 'b')).toThrow(
      expect.objectContaining({ code: 'EIO' }),
    );
    await mount.unmount();
    expect(readFileSync(join(mount.backing, 'a'))).toEqual(Buffer.alloc(0));
  });

  for (const mode of CUT_MODES) {
    it(`keeps synced data through a cut (${mode})`, async () => {
      const mount = await freshMount();
      const synced = Buffer.concat([filled(7000, 1), filled(9000, 2), filled(300, 3)]);
      const file = join(mount.path, 'kept');
      writeParts(file, [synced.subarray(0, 7000), synced.subarray(7000)], 'w');
      fsyncFile(file);
      writeParts(file, [filled(20_000, 4), filled(3000, 5)]);
      writeParts(join(mount.path, 'other'), [filled(8000, 6)], 'w');
      const report = await cutAndUnmount(mount, mode, 7);
      expect(report.pending).toBeGreaterThanOrEqual(3);
      const after = readFileSync(join(mount.backing, 'kept'));
      expect(after.subarray(0, synced.length)).toEqual(synced);
      if (mode === 'drop') expect(after.length).toBe(synced.length);
    });
  }

  it('loses every unsynced write with drop: appended data, a new file contents, a truncation', async () => {
    const mount = await freshMount();
    const base = join(mount.path, 'base');
    writeParts(base, [Buffer.from('synced\n')], 'w');
    fsyncFile(base);
    writeParts(base, [Buffer.from('not synced\n')]);
    writeParts(join(mount.path, 'fresh'), [Buffer.from('fresh\n')], 'w');
    const cut = join(mount.path, 'cut');
    writeParts(cut, [Buffer.from('whole file\n')], 'w');
    fsyncFile(cut);
    writeFileSync(cut, 'short'); // opened with O_TRUNC: a truncation, then a write
    expect(readFileSync(base, 'utf8')).toBe('synced\nnot synced\n');
    expect(readFileSync(cut, 'utf8')).toBe('short');
    await cutAndUnmount(mount, 'drop', 3);
    expect(readFileSync(join(mount.backing, 'base'), 'utf8')).toBe('synced\n');
    // Creating the file is metadata, durable at once; its contents were never synced.
    expect(readFileSync(join(mount.backing, 'fresh'), 'utf8')).toBe('');
    expect(readFileSync(join(mount.backing, 'cut'), 'utf8')).toBe('whole file\n');
  });

  /** 64 writes of 4 KiB, chunk i filled with i + 1, then a subset cut: the file and report. */
  async function subsetOf(seed: number): Promise<{ bytes: Buffer; report: CutReport }> {
    const mount = await freshMount();
    writeParts(
      join(mount.path, 'chunks'),
      Array.from({ length: 64 }, (_, i) => filled(4096, i + 1)),
      'w',
    );
    const report = await cutAndUnmount(mount, 'subset', seed);
    return { bytes: readFileSync(join(mount.backing, 'chunks')), report };
  }

  it('keeps a seeded subset of the writes with subset, zeros where a lost write lay before a kept one', async () => {
    const first = await subsetOf(11);
    const again = await subsetOf(11);
    const other = await subsetOf(12);
    expect(again.bytes.equals(first.bytes)).toBe(true);
    expect(other.bytes.equals(first.bytes)).toBe(false);
    for (const { bytes, report } of [first, other]) {
      expect(report.pending).toBe(64);
      expect(report.kept).toBeGreaterThan(0);
      expect(report.kept).toBeLessThan(64);
      expect(bytes.length % 4096).toBe(0);
      const chunks = Array.from({ length: bytes.length / 4096 }, (_, i) =>
        bytes.subarray(i * 4096, (i + 1) * 4096),
      );
      const kept = chunks.filter((chunk, i) => chunk.equals(filled(4096, i + 1)));
      const zeros = chunks.filter((chunk) => chunk.equals(filled(4096, 0)));
      expect(kept.length).toBe(report.kept);
      expect(kept.length + zeros.length).toBe(chunks.length);
      // The file ends with the last kept write: the lost ones before it read as zeros.
      expect(chunks.at(-1)!.equals(filled(4096, chunks.length))).toBe(true);
      expect(zeros.length).toBeGreaterThan(0);
    }
  });

  it('keeps the writes in order up to a torn one with torn, torn at a sector boundary', async () => {
    const parts = Array.from({ length: 12 }, (_, i) => filled(3000, i + 1));
    const whole = Buffer.concat(parts);
    const partial: CutReport[] = [];
    for (const seed of [1, 2, 3, 4, 5]) {
      const mount = await freshMount();
      writeParts(join(mount.path, 'log'), parts, 'w');
      const report = await cutAndUnmount(mount, 'torn', seed);
      const bytes = readFileSync(join(mount.backing, 'log'));
      expect(report.torn).toBe(1);
      expect(bytes.equals(whole.subarray(0, bytes.length))).toBe(true);
      // The kernel may split a write at a page boundary: whole writes end at a multiple of
      // 3000 or of 4096, a torn one at a multiple of 512.
      expect(bytes.length % 3000 === 0 || bytes.length % 512 === 0).toBe(true);
      if (report.tornBytes > 0) {
        expect(bytes.length % 512).toBe(0);
        partial.push(report);
      }
    }
    expect(partial.length, 'no seed tore a write in part').toBeGreaterThan(0);
  });

  it('keeps a synced temporary file renamed over another, and loses an unsynced one', async () => {
    const mount = await freshMount();
    const current = join(mount.path, 'CURRENT');
    writeParts(current, [Buffer.from('MANIFEST-000001\n')], 'w');
    fsyncFile(current);
    writeParts(join(mount.path, 'tmp'), [Buffer.from('MANIFEST-000002\n')], 'w');
    fsyncFile(join(mount.path, 'tmp'));
    renameSync(join(mount.path, 'tmp'), current);
    // Pending data follows its file: written under one name, synced under another.
    writeParts(join(mount.path, 'moved-then-synced'), [Buffer.from('kept')], 'w');
    renameSync(join(mount.path, 'moved-then-synced'), join(mount.path, 'synced-here'));
    fsyncFile(join(mount.path, 'synced-here'));
    const other = join(mount.path, 'OTHER');
    writeParts(other, [Buffer.from('old\n')], 'w');
    fsyncFile(other);
    writeParts(join(mount.path, 'tmp2'), [Buffer.from('new\n')], 'w');
    renameSync(join(mount.path, 'tmp2'), other);
    expect(readFileSync(other, 'utf8')).toBe('new\n');
    await cutAndUnmount(mount, 'drop', 5);
    expect(readFileSync(join(mount.backing, 'CURRENT'), 'utf8')).toBe('MANIFEST-000002\n');
    expect(readFileSync(join(mount.backing, 'synced-here'), 'utf8')).toBe('kept');
    // The rename is durable, the contents renamed in were never synced.
    expect(readFileSync(join(mount.backing, 'OTHER'), 'utf8')).toBe('');
    expect(existsSync(join(mount.backing, 'tmp2'))).toBe(false);
  });

  it('drops the pending data of a file that is deleted, or replaced by a rename', async () => {
    const mount = await freshMount();
    writeParts(join(mount.path, 'gone'), [filled(9000, 1)], 'w');
    writeParts(join(mount.path, 'replaced'), [filled(9000, 2)], 'w');
    writeParts(join(mount.path, 'new'), [filled(100, 3)], 'w');
    expect(await mount.stats()).toMatchObject({ files: 3, pending: 3 });
    unlinkSync(join(mount.path, 'gone'));
    renameSync(join(mount.path, 'new'), join(mount.path, 'replaced'));
    expect(await mount.stats()).toMatchObject({ files: 1, pending: 1 });
    writeParts(join(mount.path, 'gone'), [filled(10, 4)], 'w');
    const report = await cutAndUnmount(mount, 'subset', 1);
    expect(report.pending).toBe(2);
    const gone = readFileSync(join(mount.backing, 'gone'));
    expect(gone.equals(filled(10, 4)) || gone.length === 0).toBe(true);
    const replaced = readFileSync(join(mount.backing, 'replaced'));
    expect(replaced.equals(filled(100, 3)) || replaced.length === 0).toBe(true);
  });

  for (const mode of CUT_MODES) {
    it(`runs a LevelDB that keeps every synced write through a cut (${mode})`, async () => {
      const mount = await freshMount();
      const writer = new Child('level-writer.ts', [join(mount.path, 'db')]);
      let report: CutReport;
      try {
        await writer.waitForLine((line) => line === 'ready', 60_000);
        // Long enough for flushes and compactions, which read tables back through mmap.
        await writer.waitForLine((line) => line === 'ack 300', 60_000);
        await sleep(200 + CUT_MODES.indexOf(mode) * 150);
        report = await mount.cut(mode, 100 + CUT_MODES.indexOf(mode));
      } finally {
        await writer.kill();
        await mount.unmount();
      }
      expect(writer.lines.some((line) => !/^(ready|ack \d+|soft \d+)$/.test(line))).toBe(false);
      const acked = writer.lines
        .filter((line) => line.startsWith('ack '))
        .map((line) => Number(line.slice(4)));
      const dir = join(mount.backing, 'db');
      expect(readdirSync(dir).some((name) => name.endsWith('.ldb'))).toBe(true);
      const db = new ClassicLevel<string, string>(dir);
      await db.open();
      try {
        for (const n of acked) {
          const keys = levelBatch(n).map(([key]) => key);
          const values = await db.getMany(keys);
          expect(values, `synced batch ${n} after ${JSON.stringify(report!)}`).toEqual(
            keys.map(levelValue),
          );
        }
        for await (const [key, value] of db.iterator()) expect(value).toBe(levelValue(key));
      } finally {
        await db.close();
      }
    });
  }
});
