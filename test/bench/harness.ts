import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ClassicLevel } from 'classic-level';
import { Packr } from 'msgpackr';

export type Durability = 'strict' | 'process';

/** A payload of about 1 KB, as a step result and as the raw baseline's record. */
export const PAYLOAD = { text: 'x'.repeat(900), n: 1, tags: ['a', 'b'] };

const packr = new Packr({ useRecords: false });
export const encodeRecord = (value: unknown): Uint8Array => packr.pack(value);

export function tempDir(prefix: string): string {
  return mkdtempSync(join(process.env.CAIRN_BENCH_DIR ?? tmpdir(), `cairn-bench-${prefix}-`));
}

export function removeDir(dir: string): void {
  rmSync(dir, { recursive: true, force: true });
}

export const SYNC = { sync: true } as object;
export const NO_SYNC = { sync: false } as object;

export async function openRaw(dir: string): Promise<ClassicLevel<string, Uint8Array>> {
  const db = new ClassicLevel<string, Uint8Array>(dir, {
    keyEncoding: 'utf8',
    valueEncoding: 'view',
  });
  await db.open();
  return db;
}

/**
 * The raw baseline's group commit: puts issued in the same turn are written as one batch,
 * and while a batch is written the next one gathers. The least a durable engine must do.
 */
export class RawGroupCommit {
  #pending: { key: string; value: Uint8Array }[] = [];
  #waiters: (() => void)[] = [];
  #busy = false;
  #scheduled = false;
  constructor(
    private readonly db: ClassicLevel<string, Uint8Array>,
    private readonly options: object,
  ) {}

  put(key: string, value: Uint8Array): Promise<void> {
    this.#pending.push({ key, value });
    const done = new Promise<void>((resolve) => this.#waiters.push(resolve));
    if (!this.#busy && !this.#scheduled) {
      this.#scheduled = true;
      setImmediate(() => {
        this.#scheduled = false;
        void this.#flush();
      });
    }
    return done;
  }

  async #flush(): Promise<void> {
    if (this.#busy || this.#pending.length === 0) return;
    this.#busy = true;
    const ops = this.#pending.map((p) => ({ type: 'put' as const, key: p.key, value: p.value }));
    const waiters = this.#waiters;
    this.#pending = [];
    this.#waiters = [];
    await this.db.batch(ops, this.options);
    this.#busy = false;
    for (const w of waiters) w();
    if (this.#pending.length > 0) await this.#flush();
  }
}

export function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

export function percentile(values: readonly number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

/** Runs a bench child process (this program with a mode) and returns the JSON it prints last. */
export function child<T>(
  script: string,
  args: readonly string[],
  options: { kill?: (line: string) => boolean; nodeArgs?: readonly string[] } = {},
): Promise<T & { killed: boolean }> {
  return new Promise((resolve, reject) => {
    const proc = spawn(
      process.execPath,
      [...process.execArgv, ...(options.nodeArgs ?? []), script, ...args],
      {
        stdio: ['ignore', 'pipe', 'inherit'],
        env: { ...process.env, NODE_OPTIONS: '' },
      },
    );
    let last = '';
    let killed = false;
    let buffer = '';
    proc.stdout.setEncoding('utf8');
    proc.stdout.on('data', (chunk: string) => {
      buffer += chunk;
      let i: number;
      while ((i = buffer.indexOf('\n')) >= 0) {
        const line = buffer.slice(0, i);
        buffer = buffer.slice(i + 1);
        if (line.startsWith('{')) last = line;
        if (!killed && options.kill?.(line)) {
          killed = true;
          proc.kill('SIGKILL');
        }
      }
    });
    proc.on('error', reject);
    proc.on('exit', (code, signal) => {
      if (code !== 0 && !killed)
        reject(new Error(`bench child ${args.join(' ')} ended with ${code ?? signal}`));
      else resolve({ ...(last ? (JSON.parse(last) as T) : ({} as T)), killed });
    });
  });
}
