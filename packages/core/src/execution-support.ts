/** Types and rules shared by the parts of a run's execution. */
import { CairnError } from '@cairn/store';
import { z } from 'zod';

export interface PendingWait {
  readonly kind: 'wait';
  readonly taskId: string;
  readonly schema: z.ZodType;
  readonly onTimeout: 'fail' | { readonly default: unknown };
  resolve(value: unknown): void;
  reject(error: unknown): void;
}

export interface PendingSleep {
  readonly kind: 'sleep';
  readonly taskId: string;
  resolve(): void;
  reject(error: unknown): void;
}

export interface PendingChild {
  readonly kind: 'child';
  readonly taskId: string;
  reject(error: unknown): void;
}

export type Pending = PendingWait | PendingSleep | PendingChild;

export interface Held {
  readonly taskId: string;
  readonly isNew: boolean;
  resolve(): void;
  reject(error: unknown): void;
}

/** `parked`: paused waiting for input, kept in memory (the engine's cache of paused runs). */
export type State = 'active' | 'parked' | 'evicted' | 'finished';

export type AttemptOutcome<T> =
  | { readonly ok: true; readonly started: true; readonly value: T }
  | { readonly ok: false; readonly started: boolean; readonly error: Error };

export const FINAL_TASK = new Set(['completed', 'failed', 'timed_out', 'cancelled']);
export const NAME_RE = /^[^\x00-\x1f\x7f#$][^\x00-\x1f\x7f#]{0,99}$/;

export function typeError(message: string): TypeError {
  return Object.assign(new TypeError(message), { code: 'INVALID_ARGUMENT' });
}

export function checkName(what: string, name: unknown): string {
  if (typeof name !== 'string') throw typeError(`${what} id must be a string`);
  // A name is part of a key, which is UTF-8: half of a surrogate pair would come back as U+FFFD.
  if (!NAME_RE.test(name) || !name.isWellFormed()) {
    throw new CairnError(
      'INVALID_ARGUMENT',
      `${what} id "${name}" must be 1-100 characters, not start with "$", and contain no "#", control characters or half of a surrogate pair`,
    );
  }
  return name;
}

/** Errors a store raises while checking a checkpoint, before it writes anything. */
export function refusedBeforeWriting(error: unknown): boolean {
  return (
    error instanceof CairnError &&
    (error.code === 'VALUE_TOO_LARGE' ||
      error.code === 'NOT_SERIALIZABLE' ||
      error.code === 'INVALID_ARGUMENT')
  );
}

/**
 * The number of a parallel group (`g<seq>`, the seq of the group's first call): groups are
 * numbered in the order their turns came. Null for a task recorded without one.
 */
export function groupNumber(group: string | null): number | null {
  const match = group === null ? null : /^g(\d+)$/.exec(group);
  return match ? Number(match[1]) : null;
}

/** Milliseconds from `start` to `now`, never negative (clocks can step back). */
export function elapsed(start: number, now: number): number {
  return Math.max(0, now - start);
}

export function isThenable<T>(value: T | PromiseLike<T>): value is PromiseLike<T> {
  return (
    (typeof value === 'object' || typeof value === 'function') &&
    value !== null &&
    typeof (value as PromiseLike<T>).then === 'function'
  );
}

/** The JSON schema of what a form must send: the schema's input side (before defaults and transforms). */
export function jsonSchema(schema: z.ZodType): unknown {
  try {
    return z.toJSONSchema(schema, { unrepresentable: 'any', io: 'input' });
  } catch {
    return {};
  }
}

const ONE_OFF = { jitless: true } as const;

/**
 * Parses input with a wait's schema. That schema is usually made by the workflow function
 * at each call (so again at each replay) and parsed once, so zod's compiled fast path, built
 * on a schema's first parse, would cost several times what it saves.
 */
export function parseWaitInput<S extends z.ZodType>(schema: S, data: unknown) {
  return schema.safeParse(data, ONE_OFF);
}
