import { appendFileSync } from 'node:fs';

/**
 * The examples' stand-in for the outside world. Every call to a fake service is appended
 * to the file named by CAIRN_EXAMPLES_JOURNAL (when set), one JSON line per call, the way a
 * payment provider or mail server would keep a record. Tests read it to count side effects.
 */
export function journal(service: string, key: string, data: Record<string, unknown> = {}): void {
  const file = process.env.CAIRN_EXAMPLES_JOURNAL;
  if (!file) return;
  appendFileSync(file, JSON.stringify({ service, key, at: Date.now(), ...data }) + '\n');
}

/** Waits `ms` milliseconds (the examples' fake services take a little time). */
export function delay(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(resolve, ms);
    signal?.addEventListener('abort', () => {
      clearTimeout(timer);
      reject(signal.reason instanceof Error ? signal.reason : new Error('aborted'));
    });
  });
}

/** How long the fake services take; tests set CAIRN_EXAMPLES_SPEED=0 to go fast. */
export function serviceDelay(ms: number): number {
  const speed = Number(process.env.CAIRN_EXAMPLES_SPEED ?? '1');
  return Number.isFinite(speed) && speed >= 0 ? ms * speed : ms;
}
