/**
 * Shared helpers of the core unit tests: promise gates, store snapshots and an in-process
 * "restart" over the same memory database.
 */
import { MemoryStore } from '@cairn/store';
import { expect, onTestFinished } from 'vitest';
import { settle } from '../src/clock.js';
import { createEngine, type Engine, type EngineOptions, type ManualClock } from '../src/index.js';

export interface Deferred<T> {
  readonly promise: Promise<T>;
  resolve(value: T): void;
  reject(error: unknown): void;
}

/** A promise gate: resolve or reject it from the outside. */
export function deferred<T = void>(): Deferred<T> {
  let resolve!: (value: T) => void;
  let reject!: (error: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

/** A promise that never settles (a step that hangs until the process "dies"). */
export function never<T>(): Promise<T> {
  return new Promise<T>(() => undefined);
}

/**
 * Lets the engine's promise callbacks and I/O settle until `condition` holds (a bounded
 * number of event-loop turns, no wall-clock guesses). Fails the test if it never does.
 */
export async function until(
  condition: () => boolean | Promise<boolean>,
  what = 'condition',
  rounds = 500,
): Promise<void> {
  for (let i = 0; i < rounds; i++) {
    if (await condition()) return;
    await settle();
  }
  throw new Error(`Timed out waiting for ${what}`);
}

export { settle };

/** Every raw key and value (hex) of the store's database, in key order. */
export async function snapshot(store: MemoryStore): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  for await (const [k, v] of store.level.iterator()) out.set(k, Buffer.from(v).toString('hex'));
  return out;
}

/** An engine on a fresh memory store. */
export async function open(
  options: Omit<EngineOptions, 'store'> & { store?: MemoryStore },
): Promise<{ engine: Engine; store: MemoryStore }> {
  const store = options.store ?? new MemoryStore();
  const engine = await createEngine({ ...options, store });
  return { engine, store };
}

/**
 * Simulates a restart in-process: closes the engine and its store, opens a new store on the
 * same memory database and a new engine on it (recovery runs in `createEngine`).
 */
export async function restart(
  engine: Engine,
  store: MemoryStore,
  options: Omit<EngineOptions, 'store'>,
): Promise<{ engine: Engine; store: MemoryStore }> {
  await engine.close();
  await store.close();
  return reopen(store, options);
}

/** A new store and engine on the memory database of a closed store. */
export async function reopen(
  store: MemoryStore,
  options: Omit<EngineOptions, 'store'>,
): Promise<{ engine: Engine; store: MemoryStore }> {
  const next = new MemoryStore({ db: store.memory });
  return { engine: await createEngine({ ...options, store: next }), store: next };
}

/** Asserts that `promise` rejects with an error carrying `code` (and returns it). */
export async function rejectsWithCode(promise: Promise<unknown>, code: string): Promise<Error> {
  let error: unknown;
  try {
    await promise;
  } catch (e) {
    error = e;
  }
  expect(error, `expected a rejection with code ${code}`).toBeInstanceOf(Error);
  expect((error as { code?: unknown }).code).toBe(code);
  return error as Error;
}

/** Asserts that `fn` throws (synchronously or by rejecting) an error carrying `code`. */
export async function throwsWithCode(fn: () => unknown, code: string): Promise<Error> {
  return rejectsWithCode(
    (async () => {
      await fn();
    })(),
    code,
  );
}

/**
 * Simulates a crash: the store is closed under the running engine (what was written stays,
 * nothing more gets written; the old engine is abandoned, as a dead process would be), and a
 * new engine opens the same memory database.
 */
export async function crash(
  store: MemoryStore,
  options: Omit<EngineOptions, 'store'>,
): Promise<{ engine: Engine; store: MemoryStore }> {
  await store.close();
  return reopen(store, options);
}

/**
 * Waits until something is waiting on the manual clock (a retry delay, a timeout), then
 * moves it forward by `ms`.
 */
export async function tick(clock: ManualClock, ms: number): Promise<void> {
  await until(() => clock.pending > 0, 'a timer on the clock');
  await clock.advance(ms);
}

/** Closes `store` when the current test ends (however it ends). */
export function closeAfterTest(store: MemoryStore): void {
  onTestFinished(() => store.close().catch(() => undefined));
}

/**
 * The core tests' fixture: `open`, with the store closed when the current test ends. A store
 * given in `options` (a restart over the same memory) is closed then too.
 */
export async function openForTest(
  options: Omit<EngineOptions, 'store'> & { store?: MemoryStore },
): Promise<{ engine: Engine; store: MemoryStore }> {
  const opened = await open(options);
  closeAfterTest(opened.store);
  return opened;
}
