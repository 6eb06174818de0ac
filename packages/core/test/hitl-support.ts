import { MemoryStore } from '@cairn/store';
import {
  ManualClock,
  createEngine,
  type AnyWorkflow,
  type Engine,
  type EngineEventName,
  type EngineEvents,
  type EngineOptions,
} from '../src/index.js';
import { snapshot } from './support.js';

/** Lets promise callbacks and I/O callbacks run (a few turns of the event loop). */
export async function settle(turns = 3): Promise<void> {
  for (let i = 0; i < turns; i++) await new Promise<void>((resolve) => setImmediate(resolve));
}

/** Polls `check` (letting the engine work in between) until it holds; fails after `tries`. */
export async function until(
  check: () => boolean | Promise<boolean>,
  what = 'condition',
  tries = 500,
): Promise<void> {
  for (let i = 0; i < tries; i++) {
    if (await check()) return;
    await settle(1);
  }
  throw new Error(`timed out waiting for ${what}`);
}

export { deferred, snapshot, type Deferred } from './support.js';

export type RecordedEvent = {
  [K in EngineEventName]: { readonly name: K; readonly event: EngineEvents[K] };
}[EngineEventName];

const RECORDED: readonly EngineEventName[] = [
  'run:started',
  'run:completed',
  'run:failed',
  'run:cancelled',
  'run:paused',
  'run:resumed',
  'run:recovered',
  'task:started',
  'task:completed',
  'task:failed',
  'task:waiting',
  'task:resumed',
  'task:input-refused',
  'task:timed-out',
  'warning',
  'problem',
];

/**
 * An engine on an in-memory store with a manual clock, that can be "restarted": the engine
 * and store are closed and a new store over the same memory database is opened by a new
 * engine (which recovers runs, as a new process would).
 */
export class Harness {
  readonly clock: ManualClock;
  store: MemoryStore;
  engine: Engine;
  /** Every event of every engine of this harness (recovery included), in order. */
  readonly events: RecordedEvent[];
  #options: Omit<EngineOptions, 'store' | 'clock'>;

  private constructor(
    clock: ManualClock,
    store: MemoryStore,
    engine: Engine,
    events: RecordedEvent[],
    options: Omit<EngineOptions, 'store' | 'clock'>,
  ) {
    this.clock = clock;
    this.store = store;
    this.engine = engine;
    this.events = events;
    this.#options = options;
  }

  static async create(
    workflows: readonly AnyWorkflow[],
    options: Omit<EngineOptions, 'store' | 'clock' | 'workflows' | 'on'> = {},
  ): Promise<Harness> {
    const clock = new ManualClock();
    const store = new MemoryStore();
    const events: RecordedEvent[] = [];
    const all = { ...options, workflows, on: recorder(events) };
    const engine = await createEngine({ ...all, store, clock });
    return new Harness(clock, store, engine, events, all);
  }

  /** Closes engine and store and opens both again over the same data (a new "process"). */
  async restart(workflows?: readonly AnyWorkflow[]): Promise<void> {
    await this.engine.close();
    const memory = this.store.memory;
    await this.store.close();
    this.store = new MemoryStore({ db: memory });
    if (workflows) this.#options = { ...this.#options, workflows };
    this.engine = await createEngine({ ...this.#options, store: this.store, clock: this.clock });
  }

  /** Events with this name, in order. */
  named<K extends EngineEventName>(name: K): EngineEvents[K][] {
    return this.events.filter((e) => e.name === name).map((e) => e.event as EngineEvents[K]);
  }

  async close(): Promise<void> {
    await this.engine.close();
    await this.store.close();
  }

  /** Waits until the run has this status and is out of memory if it is paused. */
  async untilStatus(runId: string, status: string): Promise<void> {
    await until(async () => {
      const run = await this.store.getRun(runId);
      if (run?.status !== status) return false;
      return status !== 'paused' || this.engine.activeRuns === 0;
    }, `run ${runId} to be ${status}`);
  }

  /** Every raw key and value of the store (values as hex). */
  async snapshot(): Promise<Map<string, string>> {
    return snapshot(this.store);
  }
}

/** Listeners, passed as `EngineOptions.on`, that record every event (recovery's too). */
function recorder(events: RecordedEvent[]): NonNullable<EngineOptions['on']> {
  const on: Record<string, (event: unknown) => void> = {};
  for (const name of RECORDED) {
    on[name] = (event) => events.push({ name, event } as RecordedEvent);
  }
  return on;
}
