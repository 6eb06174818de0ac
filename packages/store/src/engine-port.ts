import type { ChangeTracker } from './change-tracker.js';
import type { Store } from './store.js';
import type { Checkpoint } from './store-types.js';

/**
 * The engine's one door into a store: `@cairn/store/engine`. The engine reads through the
 * public `Store` contract and writes through this port; nothing else. A backend implements it
 * by implementing the contract's protected `_checkpoint` (and `soleWriter`, for the change
 * tracker); the conformance suite checks the port (suite/engine-port.ts).
 */

/** How the engine writes a checkpoint. */
export interface WriteOptions {
  /**
   * `true` for a state change the engine acknowledges (a step's result, a pause): synced in
   * `strict` durability before the write resolves. `false` for a soft write whose loss costs
   * at most a repeat (a step's "started" marker, a recorded `ctx.now()`): it reaches the
   * store (a `LevelStore`'s log) by the end of the current turn, with the others of the turn,
   * and resolves then, without a sync of its own.
   */
  readonly durable: boolean;
  /**
   * The checkpoint creates its runs, with ids just generated: nothing of theirs is on disk,
   * so there are no index entries of another status to delete. @default false
   */
  readonly created?: boolean;
}

/** What the contract's `_checkpoint` gets: the engine's options, and whose records they are. */
export interface BackendWriteOptions {
  readonly durable: boolean;
  /** The engine built the records (through the port): they are not read back or checked. */
  readonly trusted: boolean;
  readonly created?: boolean;
}

/** The engine's port on one store. */
export interface StorePort {
  /**
   * Writes a checkpoint the engine built itself, without checking its records again (they are
   * checked on every read, and in the test suite on every write: `CAIRN_VALIDATE_WRITES=1`).
   * Throws synchronously when the store will write nothing (closed, a record too large), so
   * the engine knows at once; the promise settles when the batch is written.
   */
  write(checkpoint: Checkpoint, options: WriteOptions): Promise<void>;
  /** Which runs were written since the engine last looked (change-tracker.ts). */
  readonly changes: ChangeTracker;
}

/** The key of a store's port; not exported from the main entry (see `storePort`). */
export const PORT: unique symbol = Symbol('cairn.store.port');

/** The engine's port on `store`. */
export function storePort(store: Store): StorePort {
  return store[PORT]();
}

export type { ChangeTracker } from './change-tracker.js';
