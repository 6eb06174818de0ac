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
