import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import {
  CairnError,
  createEngine,
  faults,
  LevelStore,
  MemoryStore,
  workflow,
  type Engine,
  type EngineEventName,
  type EngineEvents,
} from '@cairn/core';
import type { Checkpoint, LogInput, LogLine, Store } from '@cairn/store';
import type { BackendWriteOptions } from '@cairn/store/engine';
import { until } from './helpers/until.js';

/**
 * Storage faults, in process (DESIGN "fail closed for state, open for telemetry"). A checkpoint
 * that cannot be written, whether the batch throws or the disk is full, stops its run with
 * WRITE_FAILED and the step is never reported done. While the store keeps failing nothing
 * more of the run is written: it stays on disk as its last checkpoint had it, and the next
 * engine recovers it and it completes. When only that one batch failed, the run ends failed
 * with WRITE_FAILED, the step recorded failed (never completed). A log line that cannot be
 * written is a `warning` and the run goes on. A resume whose checkpoint fails is refused and
 * the wait keeps waiting; a pause whose checkpoint fails is never reported, and the run pauses
 * after a restart.
 */

afterEach(() => faults.disarm());

const dirs: string[] = [];
afterAll(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

interface Deferred {
  readonly promise: Promise<void>;
  resolve(): void;
}

function deferred(): Deferred {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => (resolve = r));
  return { promise, resolve };
}

async function codeOf(promise: Promise<unknown>): Promise<string | undefined> {
  try {
    await promise;
    return 'resolved';
  } catch (error) {
    return (error as { code?: string }).code;
  }
}

/** Every event the engine emits, in order. */
class Recorder {
  readonly events: { name: EngineEventName; event: unknown }[] = [];

  attach(engine: Engine): void {
    const names: EngineEventName[] = [
      'run:completed',
      'run:failed',
      'run:paused',
      'run:resumed',
      'task:completed',
      'task:resumed',
      'warning',
      'problem',
    ];
    for (const name of names) {
      engine.on(name, (event: unknown) => this.events.push({ name, event }));
    }
  }

  of<K extends EngineEventName>(name: K): EngineEvents[K][] {
    return this.events.filter((e) => e.name === name).map((e) => e.event as EngineEvents[K]);
  }
}

/** An error like the one LevelDB gives when the disk is full. */
const diskFull = (): Error =>
  Object.assign(new Error('IO error: No space left on device'), {
    code: 'LEVEL_IO_ERROR',
    cause: Object.assign(new Error('ENOSPC: no space left on device, write'), {
      code: 'ENOSPC',
      errno: -28,
    }),
  });

/** A three-step workflow whose middle step waits on a gate, and how often each step ran. */
function threeSteps() {
  const ran = { a: 0, b: 0, c: 0 };
  let gate: Deferred | null = null;
  let entered = deferred();
  const wf = workflow('three-steps', {
    input: z.object({ x: z.number() }),
    async run(ctx, { x }) {
      const a = await ctx.step('a', () => (ran.a++, x + 1));
      const b = await ctx.step('b', async () => {
        ran.b++;
        entered.resolve();
        if (gate) await gate.promise;
        return a * 10;
      });
      const c = await ctx.step('c', () => (ran.c++, b + 1));
      return { a, b, c };
    },
  });
  return {
    wf,
    ran,
    /** Holds step b until `release()`; resolves `entered` when b is running. */
    hold(): { entered: Promise<void>; release: () => void } {
      gate = deferred();
      entered = deferred();
      const held = gate;
      return { entered: entered.promise, release: () => held.resolve() };
    },
    free(): void {
      gate = null;
    },
  };
}

const approvalSchema = z.object({ approved: z.boolean(), by: z.string() });

function approval(opts: { parallelStep?: () => Promise<void> } = {}) {
  return workflow('approval', {
    input: z.object({ amount: z.number() }),
    async run(ctx, { amount }) {
      const scored = await ctx.step('score', () => amount * 2);
      const [decision] = await Promise.all([
        ctx.waitForInput('approve', { schema: approvalSchema }),
        opts.parallelStep ? ctx.step('side', opts.parallelStep) : Promise.resolve(),
      ]);
      const paid = await ctx.step('pay', () => (decision.approved ? scored : 0));
      return { paid, by: decision.by };
    },
  });
}

describe('a checkpoint that cannot be written', () => {
  /** A store, and how to open the same data again after a restart. */
  interface Backend {
    readonly store: Store;
    readonly reopen: () => Store;
  }
  const memoryBackend = (): Backend => {
    const store = new MemoryStore();
    return { store, reopen: () => new MemoryStore({ db: store.memory }) };
  };
  const levelBackend = (): Backend => {
    const path = mkdtempSync(join(tmpdir(), 'cairn-storage-faults-'));
    dirs.push(path);
    return {
      store: new LevelStore({ path }),
      reopen: () => new LevelStore({ path }),
    };
  };
  const persistent: [string, (() => Error) | undefined, () => Backend][] = [
    ['every batch throws', undefined, memoryBackend],
    ['the disk is full (ENOSPC)', diskFull, memoryBackend],
    ['the disk is full, on LevelDB', diskFull, levelBackend],
  ];

  it.each(persistent)(
    'stops the run with WRITE_FAILED, never reports the step done, and it recovers (%s)',
    async (_label, error, backend) => {
      const { store, reopen } = backend();
      const t = threeSteps();
      const rec = new Recorder();
      let engine = await createEngine({ store, workflows: [t.wf] });
      rec.attach(engine);
      const { entered, release } = t.hold();
      const handle = await engine.start(t.wf, { x: 4 }, { id: 'r1' });
      const result = codeOf(handle.result());
      await entered;
      // b is running: its "started" marker is written; its result will not be.
      await until(
        async () => (await store.getTask('r1', 'b'))?.status === 'running',
        'the marker of b',
      );
      faults.arm('commit.before-write', 'throw', error ? { error } : {});
      release();

      expect(await result).toBe('WRITE_FAILED');
      faults.disarm();
      expect(rec.of('task:completed').map((e) => e.taskId)).toEqual(['a']);
      expect(rec.of('run:completed')).toEqual([]);
      expect(rec.of('run:failed')).toEqual([]);
      expect(rec.of('problem').map((p) => [p.runId, p.error.code])).toEqual([
        ['r1', 'WRITE_FAILED'],
      ]);
      // Fail closed: nothing after the last checkpoint that was written is on disk.
      expect((await store.getTask('r1', 'b'))?.status).toBe('running');
      expect(await store.getTask('r1', 'c')).toBeUndefined();
      const stored = await store.getRun('r1');
      expect(stored?.status).toBe('running');
      expect(stored?.endedAt).toBeNull();
      expect((await store.verify()).problems).toEqual([]);
      // The engine itself goes on: another run completes.
      t.free();
      const other = await engine.start(t.wf, { x: 1 }, { id: 'r2' });
      expect(await other.result()).toEqual({ a: 2, b: 20, c: 21 });

      // Restart on the same data: recovery runs b again (attempt 2) and the run completes.
      await engine.close();
      await store.close();
      const again = reopen();
      engine = await createEngine({ store: again, workflows: [t.wf] });
      expect(await engine.handle('r1').result()).toEqual({ a: 5, b: 50, c: 51 });
      const b = await again.getTask('r1', 'b');
      expect(b?.status).toBe('completed');
      expect(b?.attempt).toBe(2);
      // a ran once per run; b ran in r1's lost attempt, in r2, and in r1's recovery.
      expect(t.ran).toEqual({ a: 2, b: 3, c: 2 });
      expect((await again.getRun('r1'))?.recoveries).toBe(1);
      expect((await again.verify()).problems).toEqual([]);
      await engine.close();
      await again.close();
    },
  );

  it('that fails once: the run ends failed with WRITE_FAILED, the step recorded failed, never done', async () => {
    const memory = new MemoryStore();
    const t = threeSteps();
    const rec = new Recorder();
    let engine = await createEngine({ store: memory, workflows: [t.wf] });
    rec.attach(engine);
    const { entered, release } = t.hold();
    const handle = await engine.start(t.wf, { x: 4 }, { id: 'r3' });
    const result = codeOf(handle.result());
    await entered;
    await until(
      async () => (await memory.getTask('r3', 'b'))?.status === 'running',
      'the marker of b',
    );
    faults.arm('commit.before-write', 'throw', { times: 1, error: diskFull });
    release();

    expect(await result).toBe('WRITE_FAILED');
    expect(rec.of('task:completed').map((e) => e.taskId)).toEqual(['a']);
    expect(rec.of('run:completed')).toEqual([]);
    const run = await memory.getRun('r3');
    expect(run?.status).toBe('failed');
    expect(run?.error?.code).toBe('WRITE_FAILED');
    const b = await memory.getTask('r3', 'b');
    expect(b?.status).toBe('failed');
    expect(b?.output).toBeUndefined();
    expect(await memory.getTask('r3', 'c')).toBeUndefined();
    expect((await memory.verify()).problems).toEqual([]);

    // A failed run stays failed: a restart does not run it again.
    await engine.close();
    await memory.close();
    const again = new MemoryStore({ db: memory.memory });
    engine = await createEngine({ store: again, workflows: [t.wf] });
    expect(await codeOf(engine.handle('r3').result())).toBe('WRITE_FAILED');
    expect(t.ran).toEqual({ a: 1, b: 1, c: 0 });
    await engine.close();
    await again.close();
  });
});

describe('telemetry that cannot be written', () => {
  const logging = workflow('logging', {
    input: z.object({ n: z.number() }),
    async run(ctx, { n }) {
      ctx.log('starting', { n });
      const doubled = await ctx.step('double', () => n * 2);
      ctx.log('doubled', { doubled });
      return doubled;
    },
  });

  it('a log line refused at telemetry.write is a warning; the run completes', async () => {
    const store = new MemoryStore();
    const engine = await createEngine({ store, workflows: [logging] });
    const rec = new Recorder();
    rec.attach(engine);
    faults.arm('telemetry.write', 'throw');
    const handle = await engine.start(logging, { n: 21 }, { id: 'log-1' });
    expect(await handle.result()).toBe(42);
    const warnings = rec.of('warning');
    expect(warnings).toHaveLength(2);
    expect(warnings.every((w) => w.runId === 'log-1')).toBe(true);
    expect(rec.of('problem')).toEqual([]);
    expect(await store.readLogs('log-1')).toEqual([]);
    expect((await store.getRun('log-1'))?.status).toBe('completed');
    await engine.close();
    await store.close();
  });

  it('logs the store fails to append (a full disk) are warnings; the run completes', async () => {
    class LogsFail extends MemoryStore {
      protected override async _appendLogs(_lines: readonly LogInput[]): Promise<LogLine[]> {
        throw new CairnError('WRITE_FAILED', 'A batch could not be written to the store', {
          cause: diskFull(),
        });
      }
    }
    const store = new LogsFail();
    const engine = await createEngine({ store, workflows: [logging] });
    const rec = new Recorder();
    rec.attach(engine);
    const handle = await engine.start(logging, { n: 5 }, { id: 'log-2' });
    expect(await handle.result()).toBe(10);
    await until(() => rec.of('warning').length === 2, 'two warnings');
    const causes = rec.of('warning').map((w) => (w.cause as { code?: string }).code);
    expect(causes).toEqual(['WRITE_FAILED', 'WRITE_FAILED']);
    expect(rec.of('problem')).toEqual([]);
    expect((await store.getTask('log-2', 'double'))?.status).toBe('completed');
    await engine.close();
    await store.close();
  });
});

describe('a resume whose checkpoint fails', () => {
  const data = { approved: true, by: 'ann' };

  it('at resume.before-commit: the resume is refused, the run stays paused and resumable', async () => {
    const store = new MemoryStore();
    const wf = approval();
    const engine = await createEngine({ store, workflows: [wf] });
    const rec = new Recorder();
    rec.attach(engine);
    const handle = await engine.start(wf, { amount: 5 }, { id: 'p1' });
    await until(async () => (await store.getRun('p1'))?.status === 'paused', 'the pause');
    faults.arm('resume.before-commit', 'throw', { times: 1 });
    await expect(engine.resumeTask('p1', 'approve', data)).rejects.toThrow();
    expect(rec.of('task:resumed')).toEqual([]);
    expect((await store.getRun('p1'))?.status).toBe('paused');
    expect((await store.getTask('p1', 'approve'))?.status).toBe('waiting');
    expect((await engine.listWaiting()).items.map((w) => w.taskId)).toEqual(['approve']);

    expect(await engine.resumeTask('p1', 'approve', data)).toMatchObject({ status: 'resumed' });
    expect(await handle.result()).toEqual({ paid: 10, by: 'ann' });
    expect((await store.getTask('p1', 'approve'))?.output).toEqual(data);
    await engine.close();
    await store.close();
  });

  it('at resume.before-commit while the run is still in memory: a second resume works', async () => {
    const store = new MemoryStore();
    const side = deferred();
    const wf = approval({ parallelStep: () => side.promise });
    const engine = await createEngine({ store, workflows: [wf] });
    const handle = await engine.start(wf, { amount: 3 }, { id: 'p2' });
    await until(
      async () => (await store.getTask('p2', 'approve'))?.status === 'waiting',
      'the wait',
    );
    faults.arm('resume.before-commit', 'throw', { times: 1 });
    await expect(engine.resumeTask('p2', 'approve', data)).rejects.toThrow();
    expect((await store.getTask('p2', 'approve'))?.status).toBe('waiting');
    expect(await engine.resumeTask('p2', 'approve', data)).toMatchObject({ status: 'resumed' });
    side.resolve();
    expect(await handle.result()).toEqual({ paid: 6, by: 'ann' });
    await engine.close();
    await store.close();
  });

  it('when its batch cannot be written: WRITE_FAILED, nothing changes, and once the disk has room the same resume completes the run', async () => {
    const store = new MemoryStore();
    const wf = approval();
    const engine = await createEngine({ store, workflows: [wf] });
    const rec = new Recorder();
    rec.attach(engine);
    await engine.start(wf, { amount: 7 }, { id: 'p3' });
    await until(async () => (await store.getRun('p3'))?.status === 'paused', 'the pause');
    faults.arm('commit.before-write', 'throw', { error: diskFull });
    expect(await codeOf(engine.resumeTask('p3', 'approve', data))).toBe('WRITE_FAILED');
    faults.disarm();
    expect(rec.of('task:resumed')).toEqual([]);
    expect((await store.getRun('p3'))?.status).toBe('paused');
    expect((await store.getTask('p3', 'approve'))?.status).toBe('waiting');
    expect(await engine.resumeTask('p3', 'approve', data)).toMatchObject({ status: 'resumed' });
    expect(await engine.handle('p3').result()).toEqual({ paid: 14, by: 'ann' });
    await engine.close();
    await store.close();
  });

  it('when only its batch fails: WRITE_FAILED, and the run ends failed; the wait never took the payload', async () => {
    const store = new MemoryStore();
    const wf = approval();
    const engine = await createEngine({ store, workflows: [wf] });
    const rec = new Recorder();
    rec.attach(engine);
    const handle = await engine.start(wf, { amount: 7 }, { id: 'p5' });
    await until(async () => (await store.getRun('p5'))?.status === 'paused', 'the pause');
    faults.arm('commit.before-write', 'throw', { times: 1, error: diskFull });
    expect(await codeOf(engine.resumeTask('p5', 'approve', data))).toBe('WRITE_FAILED');
    expect(await codeOf(handle.result())).toBe('WRITE_FAILED');
    expect(rec.of('task:resumed')).toEqual([]);
    const approve = await store.getTask('p5', 'approve');
    expect(approve?.status).toBe('failed');
    expect(approve?.output).toBeUndefined();
    expect(await codeOf(engine.resumeTask('p5', 'approve', data))).toBe('NOT_WAITING');
    expect((await store.verify()).problems).toEqual([]);
    await engine.close();
    await store.close();
  });

  it('a resume that arrives while its wait is being written is answered, not refused', async () => {
    const writing = deferred();
    const proceed = deferred();
    class SlowWaits extends MemoryStore {
      protected override async _checkpoint(
        cp: Checkpoint,
        options: BackendWriteOptions,
      ): Promise<void> {
        if (cp.tasks?.some((t) => t.kind === 'wait' && t.status === 'waiting')) {
          writing.resolve();
          await proceed.promise;
        }
        return super._checkpoint(cp, options);
      }
    }
    const store = new SlowWaits();
    const wf = approval();
    const engine = await createEngine({ store, workflows: [wf] });
    const handle = await engine.start(wf, { amount: 2 }, { id: 'p4' });
    await writing.promise;
    const resumed = engine.resumeTask('p4', 'approve', data);
    proceed.resolve();
    expect(await resumed).toMatchObject({ status: 'resumed' });
    expect(await handle.result()).toEqual({ paid: 4, by: 'ann' });
    await engine.close();
    await store.close();
  });
});

describe('a pause whose checkpoint fails', () => {
  it('at pause.before-commit: the run is never reported paused, and stops with an error', async () => {
    const store = new MemoryStore();
    const wf = approval();
    const engine = await createEngine({ store, workflows: [wf] });
    const rec = new Recorder();
    rec.attach(engine);
    faults.arm('pause.before-commit', 'throw', { times: 1 });
    const handle = await engine.start(wf, { amount: 1 }, { id: 'q1' });
    expect(await codeOf(handle.result())).not.toBe('resolved');
    expect(rec.of('run:paused')).toEqual([]);
    expect(rec.of('run:completed')).toEqual([]);
    const stored = await store.getRun('q1');
    expect(stored?.status).not.toBe('paused');
    expect(stored?.status).not.toBe('completed');
    expect((await store.verify()).problems).toEqual([]);
    await engine.close();
    await store.close();
  });

  it('when the pause batch cannot be written (a full disk): WRITE_FAILED, and after a restart the run pauses and completes', async () => {
    const memory = new MemoryStore();
    const wf = approval();
    let engine = await createEngine({ store: memory, workflows: [wf] });
    const rec = new Recorder();
    rec.attach(engine);
    // From the moment the run decides to pause, no batch can be written.
    faults.arm('pause.before-commit', () =>
      faults.arm('commit.before-write', 'throw', { error: diskFull }),
    );
    const handle = await engine.start(wf, { amount: 2 }, { id: 'q2' });
    expect(await codeOf(handle.result())).toBe('WRITE_FAILED');
    faults.disarm();
    expect(rec.of('run:paused')).toEqual([]);
    expect((await memory.getRun('q2'))?.status).toBe('running');
    expect((await memory.getTask('q2', 'approve'))?.status).toBe('waiting');

    await engine.close();
    await memory.close();
    const again = new MemoryStore({ db: memory.memory });
    engine = await createEngine({ store: again, workflows: [wf] });
    await until(async () => (await again.getRun('q2'))?.status === 'paused', 'the pause');
    expect((await again.getRun('q2'))?.pausedTaskId).toBe('approve');
    await engine.resumeTask('q2', 'approve', { approved: false, by: 'bob' });
    expect(await engine.handle('q2').result()).toEqual({ paid: 0, by: 'bob' });
    expect((await again.verify()).problems).toEqual([]);
    await engine.close();
    await again.close();
  });
});
