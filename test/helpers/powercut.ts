import { execFile, execFileSync } from 'node:child_process';
import {
  closeSync,
  existsSync,
  fsyncSync,
  mkdirSync,
  openSync,
  readFileSync,
  writeSync,
} from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { describe, it } from 'vitest';
import { Child } from './child.js';
import { tempDir } from './temp.js';

/**
 * The filesystem that loses power (test/powercut/powercut_fs.py), driven from tests: mount it
 * over a backing directory, cut the power, unmount. What a cut keeps, by mode, is described
 * in the daemon's docstring.
 */

/** Debian's Python, which has python3-fusepy (the `python3` first on PATH may be another). */
export const POWERCUT_PYTHON = '/usr/bin/python3';
const DAEMON = fileURLToPath(new URL('../powercut/powercut_fs.py', import.meta.url));
const run = promisify(execFile);

export const CUT_MODES = ['drop', 'subset', 'torn'] as const;
export type CutMode = (typeof CUT_MODES)[number];

/** What a cut did: changes pending at the cut, kept whole, and the torn one (torn mode). */
export interface CutReport {
  readonly mode: CutMode;
  readonly seed: number;
  /** Files with pending changes. */
  readonly files: number;
  readonly pending: number;
  readonly kept: number;
  /** 1 when a write was drawn to tear, with the bytes of it kept and its length. */
  readonly torn: number;
  readonly tornBytes: number;
  readonly tornOf: number;
  /** Pending changes by file (its name when the first of them came). */
  readonly byFile: Record<string, number>;
}

export interface PowercutStats {
  readonly files: number;
  readonly pending: number;
  /** Changes applied by syncs so far. */
  readonly synced: number;
  readonly off: boolean;
}

/** Mounts not unmounted yet: unmounted by `unmountAll` and, at the latest, when the process exits. */
const live = new Set<PowercutMount>();

function isMounted(path: string): boolean {
  const mounts = readFileSync('/proc/self/mounts', 'utf8');
  return mounts.split('\n').some((line) => line.split(' ')[1] === path);
}

process.on('exit', () => {
  for (const mount of live) {
    try {
      execFileSync('umount', ['-l', mount.path], { stdio: 'ignore' });
    } catch {
      // Gone already.
    }
  }
});

export class PowercutMount {
  readonly backing: string;
  /** Where the filesystem is mounted. */
  readonly path: string;
  readonly #daemon: Child;
  #nextId = 1;
  #gone: Promise<void> | null = null;

  private constructor(backing: string, path: string, daemon: Child) {
    this.backing = backing;
    this.path = path;
    this.#daemon = daemon;
  }

  /** Starts the daemon over `backing` (both directories created if missing), once it serves. */
  static async mount(backing: string, path: string): Promise<PowercutMount> {
    mkdirSync(backing, { recursive: true });
    mkdirSync(path, { recursive: true });
    const daemon = new Child(DAEMON, [backing, path], { program: POWERCUT_PYTHON });
    // A command written as the daemon exits must not fail the test process.
    daemon.process.stdin!.on('error', () => undefined);
    const mount = new PowercutMount(backing, path, daemon);
    live.add(mount);
    try {
      await daemon.waitForLine((line) => line === 'ready', 15_000);
    } catch (error) {
      await mount.unmount();
      throw error;
    }
    return mount;
  }

  /** The power fails: every operation fails from now on, and `mode` decides what survives. */
  async cut(mode: CutMode, seed: number): Promise<CutReport> {
    return (await this.#command(`cut ${mode} ${seed >>> 0}`)) as unknown as CutReport;
  }

  async stats(): Promise<PowercutStats> {
    return (await this.#command('stats')) as unknown as PowercutStats;
  }

  /**
   * Unmounts (`fusermount3 -u`, or `umount -l` if the mount is busy) and waits for the daemon
   * to exit, killing it if it does not. Safe to call more than once.
   */
  unmount(): Promise<void> {
    return (this.#gone ??= this.#unmount());
  }

  async #unmount(): Promise<void> {
    try {
      await run('fusermount3', ['-u', this.path]);
    } catch {
      await run('umount', ['-l', this.path]).catch(() => undefined);
    }
    this.#daemon.process.stdin!.end();
    const exited = await Promise.race([
      this.#daemon.exited.then(() => true),
      sleep(10_000).then(() => false),
    ]);
    if (!exited) await this.#daemon.kill();
    if (isMounted(this.path)) await run('umount', ['-l', this.path]).catch(() => undefined);
    live.delete(this);
  }

  async #command(words: string): Promise<Record<string, unknown>> {
    const id = String(this.#nextId++);
    this.#daemon.process.stdin!.write(`${id} ${words}\n`);
    const line = await this.#daemon.waitForLine((l) => l.startsWith(`${id} `), 30_000);
    const answer = JSON.parse(line.slice(id.length + 1)) as Record<string, unknown>;
    if (typeof answer.error === 'string') throw new Error(`powercut: ${answer.error}`);
    return answer;
  }
}

/** Unmounts every mount still up (for `afterEach`/`afterAll`). */
export async function unmountAll(): Promise<void> {
  await Promise.all([...live].map((mount) => mount.unmount()));
}

/** Mounts a fresh filesystem over `<dir>/disk` at `<dir>/mnt`. */
export function mountIn(dir: string): Promise<PowercutMount> {
  return PowercutMount.mount(join(dir, 'disk'), join(dir, 'mnt'));
}

let availability: Promise<string | null> | null = null;

/**
 * Why the power-cut filesystem cannot run here, or null when it can: FUSE and the Python
 * module are there, and a trial mount serves a synced write.
 */
export function powercutUnavailable(): Promise<string | null> {
  return (availability ??= probe());
}

async function probe(): Promise<string | null> {
  if (process.platform !== 'linux') return `FUSE is tested on Linux only, not ${process.platform}`;
  if (!existsSync('/dev/fuse')) return '/dev/fuse is missing (install fuse3)';
  if (!existsSync(POWERCUT_PYTHON)) return `${POWERCUT_PYTHON} is missing`;
  try {
    await run(POWERCUT_PYTHON, ['-c', 'import fusepy']);
  } catch {
    return `${POWERCUT_PYTHON} cannot import fusepy (install python3-fusepy)`;
  }
  const { path, cleanup } = await tempDir('powercut-probe');
  let mount: PowercutMount | null = null;
  try {
    mount = await mountIn(path);
    const fd = openSync(join(mount.path, 'probe'), 'w');
    writeSync(fd, 'probe');
    fsyncSync(fd);
    closeSync(fd);
    if (readFileSync(join(mount.backing, 'probe'), 'utf8') !== 'probe') {
      return 'a synced write did not reach the backing directory';
    }
    return null;
  } catch (error) {
    return `a trial mount failed: ${String(error)}`;
  } finally {
    await mount?.unmount();
    await cleanup();
  }
}

/** Whether this is CI, where the power-cut tests must run, never be skipped. */
export const IN_CI = !['', '0', 'false'].includes(process.env.CI ?? '');

/**
 * `describe`, for tests that need the power-cut filesystem. Where it cannot run, the tests are
 * skipped with the reason printed, except in CI, where a test fails with that reason instead.
 */
export async function describePowercut(name: string, body: () => void): Promise<void> {
  const reason = await powercutUnavailable();
  if (reason === null) {
    describe(name, body);
  } else if (IN_CI) {
    describe(name, () => {
      it('needs the power-cut filesystem', () => {
        throw new Error(`the power-cut filesystem cannot run: ${reason} (CI never skips this)`);
      });
    });
  } else {
    console.log(`skipped "${name}": the power-cut filesystem cannot run: ${reason}`);
    describe.skip(name, body);
  }
}
