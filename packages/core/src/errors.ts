import {
  CairnError,
  isErrorCode,
  reportedCode,
  type ErrorCode,
  type ErrorInfo,
} from '@cairn/store';

/**
 * Thrown by a step to stop retrying: the step fails at once, whatever its retry options.
 */
export class TerminalError extends Error {
  override readonly name = 'TerminalError';
}

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

/**
 * An error as plain data, to be checkpointed. Its `code` is the code the failure is reported
 * with: the error's own when it is one of Cairn's, otherwise `fallback` (`STEP_FAILED` for what
 * a step threw, `RUN_FAILED` for what the workflow threw). The error's class stays in `name`,
 * and a code of its own that is not Cairn's in `details.originalCode`.
 */
export function toErrorInfo(thrown: unknown, fallback: ErrorCode): ErrorInfo {
  const error = toError(thrown);
  const own = (error as { code?: unknown }).code;
  const info: { -readonly [K in keyof ErrorInfo]: ErrorInfo[K] } = {
    code: isErrorCode(own) ? own : fallback,
    name: errorText(error.name),
    message: errorText(error.message),
  };
  if (error.stack !== undefined) info.stack = errorText(error.stack);
  if (error instanceof CairnError && error.details !== undefined) {
    info.details = plainDetails(error.details);
  } else if (typeof own === 'string' && own !== info.code) {
    info.details = { originalCode: errorText(own) };
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
 * A checkpointed error as a `CairnError` with the code it is reported with (see
 * `reportedCode`: its own, or `fallback` for one stored without a Cairn code), its original
 * name in `details.name` and a code of its own that is not Cairn's in `details.originalCode`.
 */
export function fromErrorInfo(info: ErrorInfo, fallback: ErrorCode): CairnError {
  const code = reportedCode(info, fallback);
  const error = new CairnError(code, info.message, {
    details: {
      ...(info.details ?? {}),
      ...(info.name === undefined ? {} : { name: info.name }),
      ...(info.code === undefined || info.code === code ? {} : { originalCode: info.code }),
    },
  });
  if (info.stack !== undefined) error.stack = info.stack;
  return error;
}
