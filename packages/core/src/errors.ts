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
  let text: string;
  try {
    text = typeof thrown === 'string' ? thrown : JSON.stringify(thrown);
  } catch {
    text = String(thrown);
  }
  return new Error(text ?? String(thrown));
}

/** An error as plain data, to be checkpointed. */
export function toErrorInfo(thrown: unknown): ErrorInfo {
  const error = toError(thrown);
  const info: { -readonly [K in keyof ErrorInfo]: ErrorInfo[K] } = {
    name: error.name,
    message: error.message,
  };
  const code = (error as { code?: unknown }).code;
  if (typeof code === 'string') info.code = code;
  if (error.stack !== undefined) info.stack = error.stack;
  if (error instanceof CairnError && error.details !== undefined) {
    info.details = plainDetails(error.details);
  }
  return info;
}

function plainDetails(details: Record<string, unknown>): Record<string, unknown> {
  try {
    return JSON.parse(JSON.stringify(details)) as Record<string, unknown>;
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
