/** `cairn` on a damaged store log (exit 5, `cairn salvage`) and on a full disk. */
import { execFileSync } from 'node:child_process';
import { closeSync, mkdirSync, openSync, statSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { LevelStore } from '@cairn/store';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { populate } from './fixture/populate.js';
import { cairn, tempDir, type Diagnosis, type ErrorOutput, type RunsOutput } from './support.js';
import { crashed, damageRecord, removeCrashed } from '../../../test/helpers/damaged-log.js';
import { dumpDb } from '../../../test/helpers/raw.js';
import { makeRun } from '../../store/src/suite/fixtures.js';

afterEach(() => removeCrashed());

describe('a damaged log', () => {
  it('every command but salvage refuses it: exit 5, what to do, nothing changed', async () => {
    const { path, run, records } = await crashed(5, 4);
    damageRecord(path, records, 2);
    const before = await dumpDb(path);
    const runs = await cairn(['runs', '--store', path]);
    expect(runs.code).toBe(5);
    expect(runs.errLines[0]).toMatch(/^cairn: The store's log .* ends at record/);
    expect(runs.stderr).toContain(`cairn salvage --store ${path}`);
    const json = await cairn(['show', run.id, '--store', path, '--json']);
    expect(json.code).toBe(5);
    expect(json.json<ErrorOutput>().error).toMatchObject({
      code: 'LOG_DAMAGED',
      details: { reason: 'behind', runs: [run.id] },
    });
    expect((await cairn(['pause', run.id, '--store', path])).code).toBe(5);
    expect(await dumpDb(path)).toEqual(before);
  });

  it('cairn salvage opens it, lists the runs that may have lost checkpoints; doctor and the others then work', async () => {
    const { path, run, records } = await crashed(5, 4);
    damageRecord(path, records, 2);
    const salvaged = await cairn(['salvage', '--store', path, '--json']);
    expect(salvaged.code).toBe(0);
    const out = salvaged.json<{ salvaged: { runs: string[]; reason: string; file: string } }>();
    expect(out.salvaged).toMatchObject({ reason: 'behind', runs: [run.id] });
    const text = await cairn(['salvage', '--store', path]);
    expect(text.code).toBe(0);
    expect(text.stdout).toContain('nothing to salvage');
    expect(text.stdout).toContain(run.id);
    const doctor = await cairn(['doctor', run.id, '--store', path, '--json']);
    expect(doctor.code).toBe(0);
    const diagnosis = doctor.json<Diagnosis>();
    expect(diagnosis.salvage?.file).toBe(out.salvaged.file);
    expect(diagnosis.findings[0]).toContain('salvaged');
    const listed = await cairn(['runs', '--store', path, '--json']);
    expect(listed.json<RunsOutput>().items.map((r) => r.id)).toEqual([run.id]);
  });
});

/**
 * A small file system of its own (tmpfs; mounting needs root, as CI has), filled to the last
 * byte, holding a store.
 */
const root = process.getuid?.() === 0;
const fullDisk = root ? describe : describe.skip;
if (!root && process.env.CI === 'true') {
  throw new Error('the full-disk tests need root (to mount a tmpfs), and CI must run them');
}

fullDisk(`a store on a full disk${root ? '' : ' (skipped: mounting a tmpfs needs root)'}`, () => {
  const mount = tempDir('cairn-cli-full-');
  afterAll(() => {
    execFileSync('umount', [mount.path]);
    mount.remove();
  });

  it('a command that only reads still reads it; one that writes says ENOSPC', async () => {
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=8m', 'tmpfs', mount.path]);
    const path = join(mount.path, 'store');
    mkdirSync(path);
    const ids = await populate(path);
    // More runs, so that LevelDB has something to write at its next open.
    const store = new LevelStore({ path });
    await store.open();
    const extra = makeRun();
    await store.createRun(extra);
    await store.close();
    fill(mount.path);

    const runs = await cairn(['runs', '--store', path, '--json']);
    expect(runs.code).toBe(0);
    const listed = runs.json<RunsOutput>().items.map((r) => r.id);
    expect(listed).toContain(extra.id);
    expect(listed).toContain(ids.approval);
    expect(runs.stderr).toContain('ENOSPC');
    const show = await cairn(['show', ids.approval, '--store', path]);
    expect(show.code).toBe(0);

    const pause = await cairn(['cancel', ids.approval, '--store', path, '--json']);
    expect(pause.code).toBe(1);
    const error = pause.json<ErrorOutput>().error;
    expect(error.code).toBe('STORE_OPEN_FAILED');
    expect(error.details).toMatchObject({ os: 'ENOSPC' });
    expect(error.message).toContain('(ENOSPC)');
  });
});

/** Writes zeros into `dir` until its file system has no byte left. */
function fill(dir: string): void {
  const fd = openSync(join(dir, 'filler'), 'w');
  try {
    for (const size of [1 << 20, 1 << 12, 1]) {
      const chunk = Buffer.alloc(size);
      for (;;) {
        try {
          writeSync(fd, chunk);
        } catch (error) {
          if ((error as { code?: unknown }).code === 'ENOSPC') break;
          throw error;
        }
      }
    }
  } finally {
    closeSync(fd);
  }
}

describe('a file larger than the system allows', () => {
  it('a write past the limit says EFBIG', async () => {
    const source = tempDir();
    const target = tempDir();
    try {
      await populate(source.path);
      const store = new LevelStore({ path: source.path });
      await store.open();
      for (let i = 0; i < 50; i++) await store.createRun(makeRun({ input: 'x'.repeat(1000) }));
      await store.close();
      const file = join(source.path, 'export.ndjson');
      expect((await cairn(['export', '--store', source.path, '--out', file])).code).toBe(0);
      expect(statSync(file).size).toBeGreaterThan(3 * 16 * 1024);
      // Large enough for the store to open, too small for the records the import writes.
      const imported = await cairn(['import', file, '--store', target.path, '--json'], {
        fileSizeLimitKb: 16,
      });
      expect(imported.code).toBe(1);
      const error = imported.json<ErrorOutput>().error;
      expect(error.code).toBe('WRITE_FAILED');
      expect(error.details).toMatchObject({ os: 'EFBIG' });
      expect(error.message).toContain('(EFBIG)');
    } finally {
      source.remove();
      target.remove();
    }
  });
});
