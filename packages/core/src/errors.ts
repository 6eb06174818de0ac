import { CairnError, ERROR_CODES, type ErrorCode, type ErrorInfo } from '@cairn/store';

/**
 * Thrown by a step to stop retrying: the step fails at once, whatever its retry options.
 */
export class TerminalError extends Error {
  override readonly name = 'TerminalError';
}

const CODES: ReadonlySet<string> = new Set(ERROR_CODES);

/** Whatever a step or workflow threw, as an `Error`. */
export function toError(thrown: unknown): Error {
  if (thrown instanceof Error) return thrown;
  let text: string | undefined;
  try {
    text = typeof thrown === 'string' ? thrown : JSON.stringify(thrown);
  } catch {
    text = undefined;
  }
  return new Error(text ?? safeString(thrown));
}

/** `String(value)`, or its tag when even that throws (an object without a prototype). */
function safeString(value: unknown): string {
  try {
    return String(value);
  } catch {
    return Object.prototype.toString.call(value);
  }
}

/** The longest message or stack checkpointed: longer ones are cut (a record has a size limit). */
const MAX_ERROR_TEXT = 8 * 1024;

function errorText(value: unknown): string {
  const text = typeof value === 'string' ? value : safeString(value);
  return text.length > MAX_ERROR_TEXT
    ? `${text.slice(0, MAX_ERROR_TEXT)}… (${text.length - MAX_ERROR_TEXT} more characters)`
    : text;
}

/** An error as plain data, to be checkpointed. */
export function toErrorInfo(thrown: unknown): ErrorInfo {
  const error = toError(thrown);
  const info: { -readonly [K in keyof ErrorInfo]: ErrorInfo[K] } = {
    name: errorText(error.name),
    message: errorText(error.message),
  };
  const code = (error as { code?: unknown }).code;
  if (typeof code === 'string') info.code = errorText(code);
  if (error.stack !== undefined) info.stack = errorText(error.stack);
  if (error instanceof CairnError && error.details !== undefined) {
    info.details = plainDetails(error.details);
  }
  return info;
}

function plainDetails(details: Record<string, unknown>): Record<string, unknown> {
  try {
    const json = JSON.stringify(details);
    if (json.length > 4 * MAX_ERROR_TEXT) return { truncated: true };
    return JSON.parse(json) as Record<string, unknown>;
  } catch {
    return {};
  }
}

/**
 * A checkpointed error as a `CairnError`: its own code when it was a Cairn code, otherwise
 * `fallback` (e.g. `STEP_FAILED`), with the original name and code in `details`.
 */
export function fromErrorInfo(info: ErrorInfo, fallback: ErrorCode): CairnError {
  const code =
    info.code !== undefined && CODES.has(info.code) ? (info.code as ErrorCode) : fallback;
  const error = new CairnError(code, info.message, {
    details: {
      ...(info.details ?? {}),
      ...(info.name === undefined ? {} : { name: info.name }),
      ...(info.code === undefined ? {} : { originalCode: info.code }),
    },
  });
  if (info.stack !== undefined) error.stack = info.stack;
  return error;
}
