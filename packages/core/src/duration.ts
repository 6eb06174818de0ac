import { CairnError } from '@cairn/store';

/** A duration: milliseconds, or a string such as `'500ms'`, `'30s'`, `'5m'`, `'48h'`, `'7d'`. */
export type Duration = number | `${number}${DurationUnit}`;
type DurationUnit = 'ms' | 's' | 'm' | 'h' | 'd' | 'w';

const UNITS: Record<DurationUnit, number> = {
  ms: 1,
  s: 1000,
  m: 60_000,
  h: 3_600_000,
  d: 86_400_000,
  w: 604_800_000,
};

const RE = /^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)\s*$/;

/** The longest duration accepted: 10 years. */
export const MAX_DURATION_MS = 10 * 365 * 86_400_000;

/** Milliseconds in `duration`; `INVALID_ARGUMENT` for anything that is not a duration. */
export function toMs(duration: unknown, name: string): number {
  let ms: number;
  if (typeof duration === 'number') {
    ms = duration;
  } else if (typeof duration === 'string') {
    const m = RE.exec(duration);
    if (!m) throw invalid(name, duration);
    ms = Number(m[1]) * UNITS[m[2] as DurationUnit];
  } else {
    throw Object.assign(
      new TypeError(`${name} must be a number of milliseconds or a string like '30s'`),
      {
        code: 'INVALID_ARGUMENT',
      },
    );
  }
  if (!Number.isFinite(ms) || ms < 0 || ms > MAX_DURATION_MS) throw invalid(name, duration);
  return Math.round(ms);
}

function invalid(name: string, value: unknown): CairnError {
  return new CairnError(
    'INVALID_ARGUMENT',
    `${name} must be a duration from 0 to 10 years (a number of ms or e.g. '30s', '48h'); got ${String(value)}`,
    { details: { name } },
  );
}
