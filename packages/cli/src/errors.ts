/** The exit codes of `cairn`, documented in `cairn --help` and the README. */
export const EXIT = {
  ok: 0,
  /** The operation failed: invalid resume data, a run that cannot be paused, ... */
  failed: 1,
  /** Bad arguments or usage. */
  usage: 2,
  /** No such run, task or store. */
  notFound: 3,
  /** Another process (a running engine) has the store open. */
  locked: 4,
  /** The store's log is damaged (LOG_DAMAGED): `cairn salvage` opens it. */
  damaged: 5,
} as const;

export type ExitCode = (typeof EXIT)[keyof typeof EXIT];

/** An error the CLI reports itself: a message for stderr and the exit code. */
export class CliError extends Error {
  override readonly name = 'CliError';
  constructor(
    readonly exitCode: ExitCode,
    message: string,
    /** A stable code for `--json` output (a Cairn error code, or `USAGE`). */
    readonly code: string,
    readonly details?: Record<string, unknown>,
    /** Lines printed after the message (not for usage errors, which are one line). */
    readonly more: readonly string[] = [],
  ) {
    super(message);
  }
}

/** The exit code for an error raised by Cairn or by the CLI. */
export function exitCodeOf(error: unknown): ExitCode {
  if (error instanceof CliError) return error.exitCode;
  // A CairnError (or a TypeError with code INVALID_ARGUMENT): told apart by its code.
  const code = (error as { code?: unknown } | null)?.code;
  if (typeof code === 'string') {
    switch (code) {
      case 'NOT_FOUND':
        return EXIT.notFound;
      case 'STORE_LOCKED':
        return EXIT.locked;
      case 'LOG_DAMAGED':
        return EXIT.damaged;
      case 'INVALID_ARGUMENT':
        return EXIT.usage;
      default:
        return EXIT.failed;
    }
  }
  return EXIT.failed;
}
