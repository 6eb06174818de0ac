/**
 * Every error Cairn raises on purpose is a `CairnError` with a stable string `code`.
 * Codes are part of the public contract; messages are for people and may change.
 */
export const ERROR_CODES = [
  'NOT_FOUND',
  'ALREADY_EXISTS',
  'CONFLICT',
  'INVALID_INPUT',
  'INVALID_OUTPUT',
  'INVALID_RESUME_INPUT',
  'INVALID_ARGUMENT',
  'NOT_WAITING',
  'NOT_PAUSED',
  'INVALID_TRANSITION',
  'NON_DETERMINISM',
  'NESTED_STEP',
  'STEP_FAILED',
  'CHILD_FAILED',
  'RUN_FAILED',
  'STEP_TIMEOUT',
  'WAIT_TIMEOUT',
  'CANCELLED',
  'MAX_RECOVERIES_EXCEEDED',
  'VERSION_NOT_REGISTERED',
  'WORKFLOW_NOT_REGISTERED',
  'ENGINE_CLOSED',
  'STORE_LOCKED',
  'STORE_TOO_NEW',
  'STORE_CLOSED',
  'STORE_OPEN_FAILED',
  'LOG_DAMAGED',
  'CORRUPT_RECORD',
  'WRITE_FAILED',
  'NOT_SERIALIZABLE',
  'VALUE_TOO_LARGE',
  'MIGRATION_FAILED',
  'INVALID_IMPORT',
] as const;

export type ErrorCode = (typeof ERROR_CODES)[number];

export interface CairnErrorOptions {
  readonly cause?: unknown;
  /** Structured details (zod issues, keys, ids). Stored with the error when it is checkpointed. */
  readonly details?: Record<string, unknown>;
}

export class CairnError extends Error {
  override readonly name = 'CairnError';
  readonly code: ErrorCode;
  readonly details: Record<string, unknown> | undefined;

  constructor(code: ErrorCode, message: string, options: CairnErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.details = options.details;
  }
}

/** True when `error` is a `CairnError`, optionally with the given code. */
export function isCairnError(error: unknown, code?: ErrorCode): error is CairnError {
  return error instanceof CairnError && (code === undefined || error.code === code);
}

/**
 * The operating system's reasons a write fails that a person can act on, by errno code, and
 * the text LevelDB puts in its own IO errors for them (it gives no code).
 */
const OS_ERRORS: Record<string, { readonly text: string; readonly strerror: string }> = {
  ENOSPC: { text: 'no space left on the device', strerror: 'No space left on device' },
  EFBIG: { text: 'the file is larger than this system allows', strerror: 'File too large' },
  EDQUOT: { text: 'the disk quota is exceeded', strerror: 'Disk quota exceeded' },
  EROFS: { text: 'the file system is read-only', strerror: 'Read-only file system' },
  EIO: { text: 'the disk reported an I/O error', strerror: 'Input/output error' },
  EACCES: { text: 'permission denied', strerror: 'Permission denied' },
};

/** What the operating system said, found in an error or its causes: e.g. `{ code: 'ENOSPC', … }`. */
export function osErrorOf(error: unknown): { code: string; text: string } | null {
  for (let e: unknown = error, depth = 0; e instanceof Error && depth < 10; depth++) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string' && code in OS_ERRORS) return { code, text: OS_ERRORS[code]!.text };
    for (const [name, known] of Object.entries(OS_ERRORS)) {
      if (e.message.includes(known.strerror)) return { code: name, text: known.text };
    }
    e = e.cause;
  }
  return null;
}

/** `message`, with the operating system's reason when `cause` has one (see `osErrorOf`). */
export function withOsReason(
  message: string,
  cause: unknown,
): { message: string; details: { os?: string } } {
  const os = osErrorOf(cause);
  return os === null
    ? { message, details: {} }
    : { message: `${message}: ${os.text} (${os.code})`, details: { os: os.code } };
}

const CODES: ReadonlySet<string> = new Set(ERROR_CODES);

/** Whether `code` is one of Cairn's error codes. */
export function isErrorCode(code: unknown): code is ErrorCode {
  return typeof code === 'string' && CODES.has(code);
}

/**
 * The code a stored error (a run's, a task's, an attempt's) is reported with: its own, which
 * Cairn writes with every error; for an error stored without a Cairn code (written before every
 * stored error had one), `fallback`: `RUN_FAILED` for a run, `taskFailureCode(kind)` for a task.
 */
export function reportedCode(
  error: { readonly code?: string | undefined },
  fallback: ErrorCode,
): ErrorCode {
  return isErrorCode(error.code) ? error.code : fallback;
}

/** The code a failed task of `kind` reports when its error was stored without one. */
export function taskFailureCode(kind: string): ErrorCode {
  return kind === 'child' ? 'CHILD_FAILED' : kind === 'wait' ? 'WAIT_TIMEOUT' : 'STEP_FAILED';
}
