import { spawn, type ChildProcess } from 'node:child_process';
import { createRequire } from 'node:module';
import { fileURLToPath, pathToFileURL } from 'node:url';

/**
 * Child processes run TypeScript from source: tsx's loader, resolved from this package (so
 * the child finds it whatever its working directory), and the `@cairn/source` condition.
 */
const TSX_LOADER = pathToFileURL(createRequire(import.meta.url).resolve('tsx')).href;
const CHILDREN_DIR = fileURLToPath(new URL('../children/', import.meta.url));

export interface ChildOptions {
  readonly cwd?: string;
  /** The whole environment of the child (default: this process's). */
  readonly env?: NodeJS.ProcessEnv;
  /**
   * Runs `program script ...args` instead, `script` being a path (default: Node with tsx,
   * running `script` from test/children/).
   */
  readonly program?: string;
}

export interface Exit {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
}

/** A child process whose stdout is read as complete lines. */
export class Child {
  readonly process: ChildProcess;
  /** Every complete line the child wrote to stdout (a line cut short by a kill is not one). */
  readonly lines: string[] = [];
  readonly exited: Promise<Exit>;
  #stderr = '';
  #partial = '';
  #watchers = new Set<() => void>();
  #exit: Exit | null = null;

  constructor(script: string, args: readonly string[], options: ChildOptions = {}) {
    const command =
      options.program === undefined
        ? [
            process.execPath,
            '--import',
            TSX_LOADER,
            '--conditions=@cairn/source',
            CHILDREN_DIR + script,
          ]
        : [options.program, script];
    this.process = spawn(command[0]!, [...command.slice(1), ...args], {
      cwd: options.cwd,
      env: options.env ?? process.env,
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    this.process.stdout!.setEncoding('utf8');
    this.process.stdout!.on('data', (chunk: string) => {
      const parts = (this.#partial + chunk).split('\n');
      this.#partial = parts.pop()!;
      this.lines.push(...parts);
      this.#notify();
    });
    this.process.stderr!.setEncoding('utf8');
    this.process.stderr!.on('data', (chunk: string) => {
      this.#stderr += chunk;
    });
    this.exited = new Promise((resolve) => {
      this.process.on('close', (code, signal) => {
        this.#exit = { code, signal };
        this.#notify();
        resolve(this.#exit);
      });
    });
  }

  get stderr(): string {
    return this.#stderr;
  }

  /** Resolves with the first line that matches; rejects if the child exits first or on timeout. */
  waitForLine(match: (line: string) => boolean, timeoutMs = 20_000): Promise<string> {
    return new Promise((resolve, reject) => {
      const check = (): void => {
        const line = this.lines.find(match);
        if (line !== undefined) {
          done();
          resolve(line);
        } else if (this.#exit) {
          done();
          reject(new Error(`child exited (${JSON.stringify(this.#exit)}): ${this.#stderr}`));
        }
      };
      const timer = setTimeout(() => {
        done();
        reject(new Error(`no matching line after ${timeoutMs} ms; stderr: ${this.#stderr}`));
      }, timeoutMs);
      const done = (): void => {
        clearTimeout(timer);
        this.#watchers.delete(check);
      };
      this.#watchers.add(check);
      check();
    });
  }

  /** SIGKILL, then wait until the process is gone (and its lock on the store released). */
  async kill(): Promise<Exit> {
    if (!this.#exit) this.process.kill('SIGKILL');
    return this.exited;
  }

  #notify(): void {
    for (const watcher of [...this.#watchers]) watcher();
  }
}

/** Runs a child to completion and returns its exit and stdout lines. */
export async function runChild(
  script: string,
  args: readonly string[],
  options: ChildOptions = {},
): Promise<{ exit: Exit; lines: string[]; stderr: string }> {
  const child = new Child(script, args, options);
  child.process.stdin!.end();
  const exit = await child.exited;
  return { exit, lines: child.lines, stderr: child.stderr };
}
