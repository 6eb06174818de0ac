import { afterAll, describe, expect, it } from 'vitest';
import { CairnError, LevelStore } from '@cairn/store';
import { Child, runChild } from './helpers/child.js';
import { tempDir } from './helpers/temp.js';

/**
 * One owner: LevelDB lets one process at a time open a directory. Another process is
 * refused with STORE_LOCKED naming the path, not a raw LevelDB error, and can open the
 * store once the holder is gone, whether it closed the store or was killed.
 */

const dirs: Array<() => Promise<void>> = [];
afterAll(async () => {
  for (const cleanup of dirs) await cleanup();
});

async function holder(path: string): Promise<Child> {
  const child = new Child('hold-store.ts', [path]);
  await child.waitForLine((line) => line === 'ready');
  return child;
}

async function openError(store: LevelStore): Promise<CairnError> {
  const error: unknown = await store.open().then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(CairnError);
  return error as CairnError;
}

function causeCodes(error: unknown): unknown[] {
  const codes: unknown[] = [];
  for (let e = error; e instanceof Error; e = e.cause) codes.push((e as { code?: unknown }).code);
  return codes;
}

interface TryOpen {
  readonly ok: boolean;
  readonly code?: string;
  readonly message?: string;
  readonly details?: Record<string, unknown>;
  readonly runs?: string[];
}

async function tryOpenInChild(path: string): Promise<TryOpen> {
  const { exit, lines, stderr } = await runChild('try-open.ts', [path]);
  expect(exit.code, stderr).toBe(0);
  return JSON.parse(lines[0]!) as TryOpen;
}

describe('LevelStore locking across processes', () => {
  it('refuses a second process with STORE_LOCKED naming the path, then opens once the holder closed', async () => {
    const { path, cleanup } = await tempDir('lock');
    dirs.push(cleanup);
    const child = await holder(path);
    try {
      const store = new LevelStore({ path });
      const error = await openError(store);
      expect(error.code).toBe('STORE_LOCKED');
      expect(error.details).toMatchObject({ location: path, holder: 'another process' });
      expect(error.message).toContain(path);
      // The LevelDB error is kept as the cause, not parsed.
      expect(causeCodes(error)).toContain('LEVEL_LOCKED');
      expect(store.status).toBe('closed');

      child.process.stdin!.write('close\n');
      await child.waitForLine((line) => line === 'closed');
      expect((await child.exited).code).toBe(0);

      // The same instance opens now, and sees what the holder wrote.
      await store.open();
      const runs = await store.listRuns();
      expect(runs.items.map((run) => run.id)).toEqual([`held-${child.process.pid}`]);
      await store.close();
    } finally {
      await child.kill();
    }
  });

  it('refuses a second child too, and opens after the holder was killed with SIGKILL', async () => {
    const { path, cleanup } = await tempDir('lock-kill');
    dirs.push(cleanup);
    const child = await holder(path);
    try {
      const refused = await tryOpenInChild(path);
      expect(refused).toMatchObject({
        ok: false,
        code: 'STORE_LOCKED',
        details: { location: path },
      });
      expect(refused.message).toContain(path);
    } finally {
      await child.kill();
    }
    const opened = await tryOpenInChild(path);
    expect(opened).toEqual({ ok: true, runs: [`held-${child.process.pid}`] });

    const store = new LevelStore({ path });
    await store.open();
    expect((await store.verify()).ok).toBe(true);
    await store.close();
  });

  it('refuses a child while this process holds the store', async () => {
    const { path, cleanup } = await tempDir('lock-parent');
    dirs.push(cleanup);
    const store = new LevelStore({ path });
    await store.open();
    try {
      const refused = await tryOpenInChild(path);
      expect(refused).toMatchObject({
        ok: false,
        code: 'STORE_LOCKED',
        details: { location: path },
      });
    } finally {
      await store.close();
    }
    expect(await tryOpenInChild(path)).toEqual({ ok: true, runs: [] });
  });
});
