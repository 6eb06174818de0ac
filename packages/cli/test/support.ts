/** Runs the real `cairn` command (bin/cairn.js) as a child process, as an operator would. */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  LevelStore,
  type ExportResult,
  type Run,
  type UsageRow,
  type UsageTotals,
} from '@cairn/store';

export type { Diagnosis, ImportResult, PruneResult, RunDetail } from '@cairn/store';

/** What the commands print with `--json`. */
export interface ErrorOutput {
  readonly error: { code: string; message: string; details?: Record<string, unknown> };
}
export interface RunsOutput {
  readonly items: Run[];
  readonly cursor: string | null;
}
export interface WaitingOutput {
  readonly items: {
    runId: string;
    taskId: string;
    description: string | null;
    schema: { properties: Record<string, unknown> };
  }[];
  readonly cursor: string | null;
}
export interface StatsOutput {
  readonly rows: UsageRow[];
  readonly total: UsageTotals;
}
export interface ExportOutput {
  readonly ndjson?: ExportResult & { out: string };
  readonly stepsCsv?: ExportResult & { out: string };
}
export interface ResumeOutput {
  readonly status: 'resumed' | 'kept';
  readonly resumed: string[];
  readonly run: Run;
}
export interface RunOutput {
  readonly run: Run;
}

const BIN = fileURLToPath(new URL('../bin/cairn.js', import.meta.url));

export interface Result {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
  /** stderr split into lines, without the empty last one. */
  readonly errLines: string[];
  /** stdout parsed as JSON (for `--json`), as the type the command prints. */
  json<T>(): T;
}

export interface RunOptions {
  readonly env?: NodeJS.ProcessEnv;
  readonly cwd?: string;
  /** The largest file the command may write, in KiB (`ulimit -f`): past it, writes fail with EFBIG. */
  readonly fileSizeLimitKb?: number;
}

/** `cairn <args>`: resolves with its exit code and output (never rejects on a failure exit). */
export function cairn(args: readonly string[], options: RunOptions = {}): Promise<Result> {
  return new Promise((resolve, reject) => {
    // No colour unless a test asks for it (FORCE_COLOR from the outer environment is dropped).
    const env: NodeJS.ProcessEnv = { ...process.env, NO_COLOR: '1' };
    delete env.FORCE_COLOR;
    Object.assign(env, options.env);
    const command =
      options.fileSizeLimitKb === undefined
        ? [process.execPath, BIN, ...args]
        : [
            '/bin/sh',
            '-c',
            `ulimit -f ${options.fileSizeLimitKb} && exec "$0" "$@"`,
            process.execPath,
            BIN,
            ...args,
          ];
    const child = spawn(command[0]!, command.slice(1), {
      env,
      cwd: options.cwd ?? process.cwd(),
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    child.on('error', reject);
    child.on('close', (code) =>
      resolve({
        code,
        stdout,
        stderr,
        errLines: stderr.split('\n').filter((line, i, all) => line !== '' || i < all.length - 1),
        json<T>(): T {
          try {
            return JSON.parse(stdout) as T;
          } catch (error) {
            throw new Error(
              `stdout is not JSON (${String(error)}):\n${stdout}\nstderr:\n${stderr}`,
            );
          }
        },
      }),
    );
  });
}

/** A fresh temporary directory; `remove()` deletes it. */
export function tempDir(prefix = 'cairn-cli-'): { path: string; remove(): void } {
  const path = mkdtempSync(join(tmpdir(), prefix));
  return { path, remove: () => rmSync(path, { recursive: true, force: true }) };
}

/** Every raw key and value (hex) of the store at `path`, in key order. */
export async function snapshot(path: string): Promise<Map<string, string>> {
  const store = new LevelStore({ path });
  await store.open();
  try {
    const out = new Map<string, string>();
    for await (const [k, v] of store.level.iterator()) out.set(k, Buffer.from(v).toString('hex'));
    return out;
  } finally {
    await store.close();
  }
}
