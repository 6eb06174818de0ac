import type { CairnError, ErrorInfo, TaskKind } from '@cairn/store';

/** Lifecycle events, for applications that embed the engine. */
export interface EngineEvents {
  'run:started': {
    runId: string;
    workflow: string;
    version: string;
    namespace: string;
    parentRunId: string | null;
  };
  'run:completed': { runId: string; workflow: string; output: unknown; durationMs: number };
  'run:failed': { runId: string; workflow: string; error: ErrorInfo };
  'run:cancelled': { runId: string; workflow: string };
  'run:paused': {
    runId: string;
    workflow: string;
    pausedTaskId: string | null;
    reason: 'waiting' | 'operator';
  };
  'run:resumed': { runId: string; workflow: string };
  'run:recovered': { runId: string; workflow: string; recoveries: number };
  'task:started': { runId: string; taskId: string; kind: TaskKind; attempt: number };
  'task:completed': { runId: string; taskId: string; kind: TaskKind; durationMs: number };
  'task:failed': {
    runId: string;
    taskId: string;
    kind: TaskKind;
    error: ErrorInfo;
    willRetry: boolean;
  };
  'task:waiting': { runId: string; taskId: string; schema: unknown; timeoutAt: number | null };
  'task:resumed': { runId: string; taskId: string; by: string | null };
  /**
   * Input sent before the run reached the wait was refused by the wait's schema when it got
   * there (`issues`: the zod issues). It is kept on the wait's record; the wait waits on.
   */
  'task:input-refused': { runId: string; taskId: string; issues: readonly unknown[] };
  'task:timed-out': { runId: string; taskId: string; kind: TaskKind };
  /** Something went wrong that did not stop the engine: a log write failed, a listener threw. */
  warning: { message: string; runId?: string; cause?: unknown };
  /** A run that could not be recovered or continued, and was left as it is. */
  problem: { runId: string; error: CairnError };
}

export type EngineEventName = keyof EngineEvents;
export type Listener<K extends EngineEventName> = (event: EngineEvents[K]) => void;

const EVENT_NAMES: Record<EngineEventName, true> = {
  'run:started': true,
  'run:completed': true,
  'run:failed': true,
  'run:cancelled': true,
  'run:paused': true,
  'run:resumed': true,
  'run:recovered': true,
  'task:started': true,
  'task:completed': true,
  'task:failed': true,
  'task:waiting': true,
  'task:resumed': true,
  'task:input-refused': true,
  'task:timed-out': true,
  warning: true,
  problem: true,
};

/** A listener for an event that does not exist would never be called: refused instead. */
function checkListener(name: unknown, listener: unknown): void {
  if (typeof name !== 'string' || !Object.hasOwn(EVENT_NAMES, name)) {
    const shown = typeof name === 'string' ? `"${name}"` : `A ${typeof name}`;
    throw Object.assign(new TypeError(`${shown} is not an engine event`), {
      code: 'INVALID_ARGUMENT',
    });
  }
  if (typeof listener !== 'function') {
    throw Object.assign(new TypeError(`The listener for "${name}" must be a function`), {
      code: 'INVALID_ARGUMENT',
    });
  }
}

/** A small typed emitter: listeners that throw are reported as warnings, never break the engine. */
export class Emitter {
  #listeners = new Map<EngineEventName, Set<(event: never) => void>>();

  on<K extends EngineEventName>(name: K, listener: Listener<K>): () => void {
    checkListener(name, listener);
    let set = this.#listeners.get(name);
    if (!set) this.#listeners.set(name, (set = new Set()));
    set.add(listener);
    return () => this.off(name, listener);
  }

  off<K extends EngineEventName>(name: K, listener: Listener<K>): void {
    checkListener(name, listener);
    this.#listeners.get(name)?.delete(listener);
  }

  has(name: EngineEventName): boolean {
    return (this.#listeners.get(name)?.size ?? 0) > 0;
  }

  emit<K extends EngineEventName>(name: K, event: EngineEvents[K]): void {
    const set = this.#listeners.get(name);
    if (!set) return;
    for (const listener of set) {
      try {
        (listener as Listener<K>)(event);
      } catch (cause) {
        if (name !== 'warning')
          this.emit('warning', { message: `A "${name}" listener threw`, cause });
      }
    }
  }
}
