import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { afterAll, afterEach, describe, expect, it, vi } from 'vitest';
import { DEFAULT_STORE_DIR, LevelStore, STORE_DIR_ENV } from '@cairn/store';
import { runChild } from './helpers/child.js';
import { tempDir } from './helpers/temp.js';

/**
 * Where the store lives: an explicit `path` wins, then `CAIRN_STORE_DIR`, then `.cairn`
 * under the working directory; missing directories are created when the store opens.
 */

const cleanups: Array<() => Promise<void>> = [];
async function dir(label: string): Promise<string> {
  const { path, cleanup } = await tempDir(label);
  cleanups.push(cleanup);
  return path;
}

afterEach(() => {
  vi.unstubAllEnvs();
});
afterAll(async () => {
  for (const cleanup of cleanups) await cleanup();
});

/** This process's environment without `CAIRN_STORE_DIR`, plus `extra`. */
function envWith(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env = { ...process.env, ...extra };
  if (!(STORE_DIR_ENV in extra)) delete env[STORE_DIR_ENV];
  return env;
}

async function locate(
  cwd: string,
  env: NodeJS.ProcessEnv,
  args: string[] = [],
): Promise<{ location: string; cwd: string }> {
  const { exit, lines, stderr } = await runChild('store-location.ts', args, { cwd, env });
  expect(exit.code, stderr).toBe(0);
  return JSON.parse(lines[0]!) as { location: string; cwd: string };
}

describe('store location, in a process of its own', () => {
  it('defaults to .cairn under the working directory, created on open', async () => {
    const cwd = await dir('loc-default');
    const out = await locate(cwd, envWith(), ['--open']);
    expect(out.cwd).toBe(cwd);
    expect(out.location).toBe(join(cwd, '.cairn'));
    expect(existsSync(join(cwd, '.cairn', 'CURRENT'))).toBe(true);
  });

  it('uses CAIRN_STORE_DIR when set, relative to the working directory', async () => {
    const cwd = await dir('loc-env');
    const out = await locate(cwd, envWith({ [STORE_DIR_ENV]: 'data/nested/store' }), ['--open']);
    expect(out.location).toBe(join(cwd, 'data', 'nested', 'store'));
    expect(existsSync(join(cwd, 'data', 'nested', 'store', 'CURRENT'))).toBe(true);
    expect(existsSync(join(cwd, '.cairn'))).toBe(false);
  });

  it('uses an explicit path over CAIRN_STORE_DIR', async () => {
    const cwd = await dir('loc-explicit');
    const elsewhere = await dir('loc-explicit-target');
    const env = envWith({ [STORE_DIR_ENV]: join(cwd, 'from-env') });
    const out = await locate(cwd, env, [join(elsewhere, 'store'), '--open']);
    expect(out.location).toBe(join(elsewhere, 'store'));
    expect(existsSync(join(elsewhere, 'store', 'CURRENT'))).toBe(true);
    expect(existsSync(join(cwd, 'from-env'))).toBe(false);
    expect(existsSync(join(cwd, '.cairn'))).toBe(false);
  });
});

describe('store location, resolved in this process', () => {
  it('is .cairn under the working directory with no path and no env (or an empty one)', () => {
    const fallback = resolve(process.cwd(), DEFAULT_STORE_DIR);
    vi.stubEnv(STORE_DIR_ENV, undefined);
    expect(process.env[STORE_DIR_ENV]).toBeUndefined();
    expect(new LevelStore().location).toBe(fallback);
    vi.stubEnv(STORE_DIR_ENV, '');
    expect(new LevelStore().location).toBe(fallback);
  });

  it('follows CAIRN_STORE_DIR, and an explicit path over it', () => {
    vi.stubEnv(STORE_DIR_ENV, '/srv/cairn/data');
    expect(new LevelStore().location).toBe('/srv/cairn/data');
    expect(new LevelStore({ path: '/var/lib/cairn' }).location).toBe('/var/lib/cairn');
    expect(new LevelStore({ path: 'relative/dir' }).location).toBe(
      resolve(process.cwd(), 'relative/dir'),
    );
  });

  it('creates missing nested directories on open, not before', async () => {
    const root = await dir('loc-nested');
    const path = join(root, 'a', 'b', 'c', 'store');
    const store = new LevelStore({ path });
    expect(store.location).toBe(path);
    expect(existsSync(join(root, 'a'))).toBe(false);
    await store.open();
    expect(existsSync(join(path, 'CURRENT'))).toBe(true);
    await store.putMeta('greeting', 'hello');
    await store.close();

    const reopened = new LevelStore({ path });
    await reopened.open();
    expect(await reopened.getMeta('greeting')).toBe('hello');
    await reopened.close();
  });
});
