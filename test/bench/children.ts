/** The bench's child processes: each mode opens a store in a fresh process and reports JSON. */
import { createEngine } from '@cairn/core';
import { LevelStore, uuidv7, type Run, type Task } from '@cairn/store';
import { approval, benchWorkflows, blocking, recoverable } from './workflows.js';

const [mode, dirArg, a] = process.argv.slice(2);
const dir = dirArg ?? '';
const n = Number(a ?? '0');
const report = (value: object): void => {
  process.stdout.write(`${JSON.stringify(value)}\n`);
};

function run(id: string, status: Run['status'], createdAt: number): Run {
  const terminal = status === 'completed';
  return {
    id,
    workflow: 'bench-approval',
    version: '1',
    namespace: 'default',
    status,
    isPaused: status === 'paused',
    pausedTaskId: status === 'paused' ? 'approve' : null,
    pauseRequested: false,
    input: { i: 0 },
    ...(terminal ? { output: true } : {}),
    error: null,
    createdAt,
    startedAt: createdAt,
    updatedAt: createdAt,
    endedAt: terminal ? createdAt : null,
    parentRunId: null,
    parentTaskId: null,
    depth: 0,
    recoveries: 0,
    tags: [],
  };
}

function task(
  runId: string,
  taskId: string,
  seq: number,
  status: Task['status'],
  at: number,
): Task {
  return {
    runId,
    taskId,
    kind: taskId === 'approve' ? 'wait' : 'step',
    seq,
    status,
    attempt: 1,
    attempts: [],
    ...(status === 'completed' ? { output: { ok: true } } : {}),
    error: null,
    startedAt: at,
    endedAt: status === 'completed' ? at : null,
    durationMs: status === 'completed' ? 0 : null,
    group: `g${seq}`,
    parentTaskId: null,
    meta: {},
    ...(taskId === 'approve'
      ? { schema: { type: 'object' }, timeoutAt: null, resumedBy: null }
      : {}),
  };
}

/** Writes `count` runs straight through the store (what the engine would have written). */
async function writeRuns(
  store: LevelStore,
  count: number,
  status: 'completed' | 'paused',
): Promise<void> {
  const base = Date.now() - count;
  const chunk = 500;
  for (let i = 0; i < count; i += chunk) {
    const writes: Promise<void>[] = [];
    for (let j = i; j < Math.min(count, i + chunk); j++) {
      const id = uuidv7(base + j);
      const tasks =
        status === 'completed'
          ? [task(id, 'a', 0, 'completed', base + j), task(id, 'approve', 1, 'completed', base + j)]
          : [task(id, 'a', 0, 'completed', base + j), task(id, 'approve', 1, 'waiting', base + j)];
      writes.push(
        store.checkpoint({ runs: [run(id, status, base + j)], tasks }, { durable: false }),
      );
    }
    await Promise.all(writes);
  }
}

async function main(): Promise<void> {
  if (mode === 'w4-build') {
    const paused = Number(process.argv[5]);
    const store = new LevelStore({ path: dir, durability: 'process' });
    await store.open();
    await writeRuns(store, n, 'completed');
    const engine = await createEngine({ store, workflows: benchWorkflows });
    let count = 0;
    const done = new Promise<void>((resolve) =>
      engine.on('run:paused', () => {
        if (++count === paused) resolve();
      }),
    );
    for (let i = 0; i < paused; i++) await engine.start(approval, { i });
    await done;
    await engine.close();
    await store.close();
    report({ built: n + paused });
  } else if (mode === 'w4-measure') {
    const t0 = performance.now();
    const store = new LevelStore({ path: dir });
    const engine = await createEngine({ store, workflows: benchWorkflows });
    const t1 = performance.now();
    const waiting: { runId: string; taskId: string }[] = [];
    let cursor: string | null = null;
    do {
      const page: Awaited<ReturnType<typeof engine.listWaiting>> = await engine.listWaiting({
        limit: 1000,
        cursor,
      });
      waiting.push(...page.items);
      cursor = page.cursor;
    } while (cursor !== null);
    const t2 = performance.now();
    for (const w of waiting) await engine.resumeTask(w.runId, w.taskId, { ok: true, by: 'bench' });
    const t3 = performance.now();
    await engine.close();
    await store.close();
    report({ open_ms: t1 - t0, list_ms: t2 - t1, resume_ms: t3 - t2, listed: waiting.length });
  } else if (mode === 'w5-start') {
    const store = new LevelStore({ path: dir, durability: 'process' });
    let slow = 0;
    const engine = await createEngine({
      store,
      workflows: benchWorkflows,
      concurrency: n,
      on: {
        'task:started': (e) => {
          if (e.taskId === 'slow' && ++slow === n) report({ ready: n });
        },
      },
    });
    for (let i = 0; i < n; i++) await engine.start(recoverable, { i });
    await new Promise(() => undefined);
  } else if (mode === 'w5-recover') {
    blocking.forever = false;
    const t0 = performance.now();
    let completed = 0;
    const store = new LevelStore({ path: dir, durability: 'process' });
    const done = new Promise<void>((resolve) => {
      void createEngine({
        store,
        workflows: benchWorkflows,
        concurrency: 64,
        on: {
          'run:completed': () => {
            if (++completed === n) resolve();
          },
        },
      }).then(async (engine) => {
        await done;
        report({ recover_ms: performance.now() - t0, completed });
        await engine.close();
        await store.close();
      });
    });
  } else if (mode === 'mem-build') {
    const store = new LevelStore({ path: dir, durability: 'process' });
    await store.open();
    await writeRuns(store, n, 'paused');
    await store.close();
    report({ built: n });
  } else if (mode === 'mem-measure') {
    const gc = (globalThis as { gc?: () => void }).gc;
    const rssNow = (): number => {
      for (let i = 0; i < 3; i++) gc?.();
      return process.memoryUsage().rss / 2 ** 20;
    };
    const store = new LevelStore({ path: dir });
    const engine = await createEngine({ store, workflows: benchWorkflows });
    // RSS settles within about a second of the start: the module loader lets go of its
    // memory, and LevelDB finishes compacting what its own log held at open. Measured once
    // it has, with the highest reading on the way.
    let peak = rssNow();
    for (let i = 0; i < 20; i++) {
      await new Promise((resolve) => setTimeout(resolve, 100));
      peak = Math.max(peak, rssNow());
    }
    report({ rss_mb: rssNow(), rss_peak_mb: peak, active: engine.activeRuns });
    await engine.close();
    await store.close();
  } else {
    throw new Error(`unknown bench mode ${mode}`);
  }
}

await main();
