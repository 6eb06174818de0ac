import type { Stream } from './output.js';

/** A progress bar on stderr; silent when stderr is not a terminal. */
export interface Progress {
  /** `done` of `total` (total unknown: a counter without a bar). */
  update(done: number, total?: number, label?: string): void;
  /** Clears the bar. */
  done(): void;
}

const WIDTH = 28;
const EVERY_MS = 80;

export function progressBar(
  stderr: Stream,
  label: string,
  enabled = stderr.isTTY === true,
): Progress {
  if (!enabled) return { update: () => undefined, done: () => undefined };
  let last = 0;
  let shown = false;
  return {
    update(done, total, text = label) {
      const now = Date.now();
      const finished = total !== undefined && done >= total;
      if (!finished && now - last < EVERY_MS) return;
      last = now;
      shown = true;
      stderr.write(`\r\x1b[K${render(text, done, total)}`);
    },
    done() {
      if (shown) stderr.write('\r\x1b[K');
      shown = false;
    },
  };
}

/** `label [█████████░░░░░░░░░░░]  45%  450/1000`, or `label 450` when the total is unknown. */
export function render(label: string, done: number, total?: number): string {
  if (total === undefined || total <= 0) return `${label} ${done}`;
  const ratio = Math.min(1, Math.max(0, done / total));
  const full = Math.round(ratio * WIDTH);
  const bar = '█'.repeat(full) + '░'.repeat(WIDTH - full);
  const percent = `${Math.floor(ratio * 100)}%`.padStart(4);
  return `${label} ${bar} ${percent}  ${done}/${total}`;
}
