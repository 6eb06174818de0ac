import { spawn } from 'node:child_process';
import type { Task } from '@cairn/core';

const tty = process.stdout.isTTY === true && process.env.NO_COLOR === undefined;
const paint = (code: number) => (text: string) => (tty ? `\x1b[${code}m${text}\x1b[0m` : text);
export const bold = paint(1);
export const dim = paint(2);
export const green = paint(32);
export const red = paint(31);
export const yellow = paint(33);
export const cyan = paint(36);

export function say(text = ''): void {
  console.log(text);
}

export function heading(text: string): void {
  say();
  say(bold(cyan(`== ${text}`)));
}

/** The tasks of a run, one line each: id, kind, status, attempts, time, annotations. */
export function timeline(tasks: readonly Task[]): string {
  return tasks
    .filter((t) => !t.taskId.startsWith('$'))
    .map((t) => {
      const status =
        t.status === 'completed'
          ? green(t.status)
          : t.status === 'failed'
            ? red(t.status)
            : yellow(t.status);
      const time = t.durationMs === null ? '' : `${t.durationMs} ms`;
      const tries = t.attempts.length > 1 ? ` attempts=${t.attempts.length}` : '';
      const tokens =
        typeof t.meta.totalTokens === 'number'
          ? ` ${String(t.meta.model)} tokens=${t.meta.totalTokens}`
          : '';
      const group = t.group ? dim(` [${t.group}]`) : '';
      return `  ${t.seq.toString().padStart(2)} ${t.kind.padEnd(5)} ${t.taskId.padEnd(20)} ${status.padEnd(tty ? 18 : 9)} ${time.padStart(8)}${tries}${tokens}${group}`;
    })
    .join('\n');
}

/**
 * Runs this program again as a separate process (a "new process" in the story) and
 * resolves with how it ended.
 */
export function runPhase(
  script: string,
  args: readonly string[],
  env: NodeJS.ProcessEnv = {},
): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [...process.execArgv, script, ...args], {
      stdio: 'inherit',
      env: { ...process.env, ...env },
    });
    child.on('error', reject);
    child.on('exit', (code, signal) => resolve({ code, signal }));
  });
}
