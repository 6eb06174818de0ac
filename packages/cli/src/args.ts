import { parseArgs, type ParseArgsConfig } from 'node:util';
import { CliError, EXIT } from './errors.js';

type OptionsConfig = NonNullable<ParseArgsConfig['options']>;

/** Options every command takes. */
export const COMMON_OPTIONS = {
  store: { type: 'string' },
  json: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
} as const satisfies OptionsConfig;

/** Durations as the engine reads them: `500ms`, `45s`, `15m`, `12h`, `30d`, `2w`. */
const DURATION = /^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)\s*$/;
const UNITS: Record<string, number> = {
  ms: 1,
  s: 1000,
  m: 60_000,
  h: 3_600_000,
  d: 86_400_000,
  w: 604_800_000,
};
/** At most ten years, as the engine. */
const MAX_DURATION = 10 * 365 * 86_400_000;

/** Bad arguments: exit code 2 and one line on stderr. */
export function usageError(message: string): CliError {
  return new CliError(EXIT.usage, message, 'USAGE');
}

export interface Parsed<O extends OptionsConfig> {
  readonly values: ReturnType<
    typeof parseArgs<{ options: O & typeof COMMON_OPTIONS; strict: true; allowPositionals: true }>
  >['values'];
  readonly positionals: string[];
}

/**
 * Parses a command's arguments with node:util `parseArgs` (strict: unknown options are
 * refused). `positionals` is how many positional arguments the command takes, e.g. `[1, 1]`.
 */
export function parseCommand<const O extends OptionsConfig>(
  argv: readonly string[],
  options: O,
  positionals: readonly [min: number, max: number, name?: string] = [0, 0],
): Parsed<O> {
  let parsed: { values: Record<string, unknown>; positionals: string[] };
  try {
    parsed = parseArgs({
      args: [...argv],
      options: { ...options, ...COMMON_OPTIONS },
      strict: true,
      allowPositionals: true,
    });
  } catch (error) {
    throw usageError(parseArgsMessage(error));
  }
  const [min, max, name = 'argument'] = positionals;
  if (parsed.values.help !== true) {
    if (parsed.positionals.length < min) throw usageError(`missing ${name}`);
    if (parsed.positionals.length > max) {
      throw usageError(`unexpected argument "${parsed.positionals[max] ?? ''}"`);
    }
  }
  return { values: parsed.values as Parsed<O>['values'], positionals: parsed.positionals };
}

/** node's messages, made short: "unknown option --x", "option --limit needs a value". */
function parseArgsMessage(error: unknown): string {
  const message = error instanceof Error ? error.message : String(error);
  const code = (error as { code?: unknown }).code;
  const option = /'(-[^' ]+)/.exec(message)?.[1];
  if (code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION' && option) return `unknown option ${option}`;
  if (code === 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE' && option) {
    if (message.includes('does not take an argument')) return `option ${option} takes no value`;
    return `option ${option} needs a value`;
  }
  return message.split('\n')[0] ?? message;
}

/** A whole number from `--name`, within bounds. */
export function intOption(
  value: string | undefined,
  name: string,
  { min = 1, max = Number.MAX_SAFE_INTEGER } = {},
): number | undefined {
  if (value === undefined) return undefined;
  const n = /^\d+$/.test(value.trim()) ? Number(value) : NaN;
  if (!Number.isSafeInteger(n) || n < min || n > max) {
    throw usageError(`--${name} must be a whole number from ${min} to ${max}; got "${value}"`);
  }
  return n;
}

/** Milliseconds in a duration such as `30d`, `12h`, `15m`, `45s`, `2w` (as the engine reads them). */
export function durationOption(value: string | undefined, name: string): number | undefined {
  if (value === undefined) return undefined;
  const m = DURATION.exec(value);
  const ms = m ? Number(m[1]) * (UNITS[m[2] ?? ''] ?? NaN) : NaN;
  if (!Number.isFinite(ms) || ms > MAX_DURATION) {
    throw usageError(`--${name} must be a duration such as 30d, 12h, 15m or 45s; got "${value}"`);
  }
  return Math.round(ms);
}

/**
 * A point in time: a duration back from now (`7d` = seven days ago) or a date (ISO 8601,
 * e.g. `2025-01-31` or `2025-01-31T12:00:00Z`). Epoch milliseconds.
 */
export function timeOption(
  value: string | undefined,
  name: string,
  now: number,
): number | undefined {
  if (value === undefined) return undefined;
  if (DURATION.test(value)) {
    return now - (durationOption(value, name) ?? 0);
  }
  const at = /^\d{4}-\d{2}-\d{2}/.test(value) ? Date.parse(value) : NaN;
  if (Number.isNaN(at)) {
    throw usageError(
      `--${name} must be a duration back from now (7d, 12h) or a date; got "${value}"`,
    );
  }
  return at;
}

/** One of a fixed set of words. */
export function choiceOption<const T extends string>(
  value: string | undefined,
  name: string,
  choices: readonly T[],
): T | undefined {
  if (value === undefined) return undefined;
  if (!(choices as readonly string[]).includes(value)) {
    throw usageError(`--${name} must be one of ${choices.join(', ')}; got "${value}"`);
  }
  return value as T;
}
