import { CairnError, checkOptionNames } from '@cairn/store';
import type { RetryOptions } from './context.js';
import { toMs } from './duration.js';
import { TerminalError } from './errors.js';
import { RETRY_OPTIONS } from './option-names.js';

export interface RetryPolicy {
  readonly attempts: number;
  readonly initialDelay: number;
  readonly factor: number;
  readonly maxDelay: number;
  readonly jitter: number;
  readonly retryable: ((error: Error) => boolean) | undefined;
}

export const DEFAULT_RETRY: RetryPolicy = {
  attempts: 3,
  initialDelay: 200,
  factor: 2,
  maxDelay: 30_000,
  jitter: 0.2,
  retryable: undefined,
};

/** Checks and fills in retry options; `INVALID_ARGUMENT` for values out of range. */
export function retryPolicy(
  options: RetryOptions | number | undefined,
  base: RetryPolicy,
): RetryPolicy {
  if (options === undefined) return base;
  if (typeof options === 'number') return retryPolicy({ attempts: options }, base);
  if (typeof options !== 'object' || options === null) {
    throw Object.assign(new TypeError('retry must be a number of attempts or an object'), {
      code: 'INVALID_ARGUMENT',
    });
  }
  checkOptionNames('retry', options, RETRY_OPTIONS);
  const attempts = options.attempts ?? base.attempts;
  if (
    typeof attempts !== 'number' ||
    !Number.isInteger(attempts) ||
    attempts < 1 ||
    attempts > 1000
  ) {
    throw new CairnError(
      'INVALID_ARGUMENT',
      'retry.attempts must be a whole number from 1 to 1000',
    );
  }
  const factor = options.factor ?? base.factor;
  if (typeof factor !== 'number' || !Number.isFinite(factor) || factor < 1 || factor > 100) {
    throw new CairnError('INVALID_ARGUMENT', 'retry.factor must be a number from 1 to 100');
  }
  const jitter = options.jitter ?? base.jitter;
  if (typeof jitter !== 'number' || !(jitter >= 0 && jitter <= 1)) {
    throw new CairnError('INVALID_ARGUMENT', 'retry.jitter must be a number from 0 to 1');
  }
  if (options.retryable !== undefined && typeof options.retryable !== 'function') {
    throw Object.assign(new TypeError('retry.retryable must be a function'), {
      code: 'INVALID_ARGUMENT',
    });
  }
  return {
    attempts,
    factor,
    jitter,
    initialDelay:
      options.initialDelay === undefined
        ? base.initialDelay
        : toMs(options.initialDelay, 'retry.initialDelay'),
    maxDelay:
      options.maxDelay === undefined ? base.maxDelay : toMs(options.maxDelay, 'retry.maxDelay'),
    retryable: options.retryable ?? base.retryable,
  };
}

/** Whether `error`, thrown by attempt number `attempt`, should be retried. */
export function shouldRetry(policy: RetryPolicy, attempt: number, error: Error): boolean {
  if (attempt >= policy.attempts) return false;
  if (error instanceof TerminalError) return false;
  if (
    error instanceof CairnError &&
    (error.code === 'CANCELLED' ||
      error.code === 'NOT_SERIALIZABLE' ||
      error.code === 'NESTED_STEP')
  )
    return false;
  if (policy.retryable) {
    try {
      return policy.retryable(error);
    } catch {
      return false;
    }
  }
  return true;
}

/** Exponential backoff with jitter before retry number `attempt` (1 = first retry). */
export function backoff(
  policy: RetryPolicy,
  attempt: number,
  random: () => number = Math.random,
): number {
  const base = Math.min(policy.maxDelay, policy.initialDelay * policy.factor ** (attempt - 1));
  const spread = base * policy.jitter * (2 * random() - 1);
  return Math.max(0, Math.round(base + spread));
}
