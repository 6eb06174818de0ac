/** How the CLI names the errors stored with runs, tasks and attempts. */
import type { ErrorInfo } from '@cairn/store';

/**
 * The store's reading of stored error codes (errors stored before every error had a code are
 * named by the code they stand for). Passed in, since the store package is loaded only once
 * the arguments are checked.
 */
export type ErrorCodes = Pick<typeof import('@cairn/store'), 'reportedCode' | 'taskFailureCode'>;

/** The code a task's error (or one of its attempts') is reported with. */
export function taskErrorCode(codes: ErrorCodes, kind: string, error: ErrorInfo): string {
  return codes.reportedCode(error, codes.taskFailureCode(kind));
}

/** An error's code, and what the error itself was (its own code, its class) when that says more. */
export function errorLabel(error: ErrorInfo, code: string): string {
  const original = error.details?.originalCode;
  const own =
    typeof original === 'string'
      ? original
      : error.code !== undefined && error.code !== code
        ? error.code
        : error.name;
  return own === undefined || own === code || own === 'Error' || own === 'CairnError'
    ? code
    : `${code} (${own})`;
}
