import { createEngine, LevelStore, type Engine } from '@cairn/core';
import { allWorkflows } from '../workflows/index.js';

/** An engine on the embedded default store (./.cairn, or CAIRN_STORE_DIR) with every example workflow. */
export async function openEngine(): Promise<Engine> {
  return createEngine({ store: new LevelStore(), workflows: allWorkflows });
}

/** Closes the engine and the store it was given. */
export async function closeEngine(engine: Engine): Promise<void> {
  await engine.close();
  await engine.store.close();
}
