import type { Colours } from './output.js';

/** `850 ms`, `1.24 s`, `3m 05s`, `2h 03m`, `3d 4h`. */
export function formatDuration(ms: number | null | undefined): string {
  if (ms === null || ms === undefined || !Number.isFinite(ms)) return '-';
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 10_000) return `${(ms / 1000).toFixed(2)} s`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)} s`;
  const s = Math.floor(ms / 1000);
  if (s < 3600) return `${Math.floor(s / 60)}m ${pad2(s % 60)}s`;
  if (s < 86_400) return `${Math.floor(s / 3600)}h ${pad2(Math.floor(s / 60) % 60)}m`;
  return `${Math.floor(s / 86_400)}d ${Math.floor(s / 3600) % 24}h`;
}

/** `2025-01-31 14:03:09` in local time. */
export function formatTime(at: number | null | undefined): string {
  if (at === null || at === undefined) return '-';
  const d = new Date(at);
  return (
    `${d.getFullYear()}-${pad2(d.getMonth() + 1)}-${pad2(d.getDate())} ` +
    `${pad2(d.getHours())}:${pad2(d.getMinutes())}:${pad2(d.getSeconds())}`
  );
}

/** `5s ago`, `3m ago`, `in 2h`. */
export function formatAge(at: number | null | undefined, now: number): string {
  if (at === null || at === undefined) return '-';
  const diff = now - at;
  const text = formatRough(Math.abs(diff));
  return diff >= 0 ? `${text} ago` : `in ${text}`;
}

function formatRough(ms: number): string {
  const s = Math.floor(ms / 1000);
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m`;
  if (s < 86_400) return `${Math.floor(s / 3600)}h`;
  return `${Math.floor(s / 86_400)}d`;
}

function pad2(n: number): string {
  return String(n).padStart(2, '0');
}

/** Compact JSON cut to `max` characters. */
export function snippet(value: unknown, max = 100): string {
  if (value === undefined) return '-';
  let text: string;
  try {
    text = JSON.stringify(value) ?? typeof value;
  } catch {
    text = typeof value;
  }
  return text.length > max ? `${text.slice(0, max - 1)}…` : text;
}

/** `1,234` */
export function formatInt(n: number): string {
  return n.toLocaleString('en-US');
}

/** A run or task status in its colour: green done, red failed, yellow waiting or paused. */
export function paintStatus(status: string, c: Colours): string {
  switch (status) {
    case 'completed':
      return c.green(status);
    case 'failed':
    case 'timed_out':
      return c.red(status);
    case 'cancelled':
      return c.magenta(status);
    case 'paused':
    case 'waiting':
    case 'sleeping':
      return c.yellow(status);
    case 'running':
    case 'queued':
      return c.cyan(status);
    default:
      return status;
  }
}

/** `1 run`, `3 runs`. */
export function plural(n: number, one: string, many = `${one}s`): string {
  return `${formatInt(n)} ${n === 1 ? one : many}`;
}

/** Whitespace collapsed, cut to `max` characters. */
export function oneLine(text: string, max: number): string {
  const line = text.replace(/\s+/g, ' ').trim();
  return line.length > max ? `${line.slice(0, max - 1)}…` : line;
}
