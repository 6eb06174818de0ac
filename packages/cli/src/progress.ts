import type { Stream } from './output.js';

/** Progress on stderr, redrawn in place; silent when stderr is not a terminal. */
export interface Progress {
  /** A bar: `done` of `total`. */
  bar(done: number, total: number, label?: string): void;
  /** A line of text, for work whose total is not known (`Exporting: 150 runs`). */
  text(line: string): void;
  /** Clears the line. */
  done(): void;
}

const WIDTH = 28;
const EVERY_MS = 80;

export function progress(stderr: Stream, label: string, enabled = stderr.isTTY === true): Progress {
  if (!enabled) return { bar: () => undefined, text: () => undefined, done: () => undefined };
  let last = 0;
  let shown = false;
  const draw = (line: string, force: boolean) => {
    const now = Date.now();
    if (!force && now - last < EVERY_MS) return;
    last = now;
    shown = true;
    stderr.write(`\r\x1b[K${line}`);
  };
  return {
    bar: (done, total, text = label) => draw(renderBar(text, done, total), done >= total),
    text: (line) => draw(line, false),
    done() {
      if (shown) stderr.write('\r\x1b[K');
      shown = false;
    },
  };
}

/** `label ████████░░░░░░░░░░░░  45%  450/1000` */
export function renderBar(label: string, done: number, total: number): string {
  const ratio = total > 0 ? Math.min(1, Math.max(0, done / total)) : 1;
  const full = Math.round(ratio * WIDTH);
  const bar = '█'.repeat(full) + '░'.repeat(WIDTH - full);
  const percent = `${Math.floor(ratio * 100)}%`.padStart(4);
  return `${label} ${bar} ${percent}  ${done}/${total}`;
}
