import { MemoryStore, type Checkpoint } from '@cairn/store';
import type { BackendWriteOptions } from '@cairn/store/engine';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { workflow, type CairnError } from '../src/index.js';
import { deferred, open, rejectsWithCode, reopen, snapshot, until } from './support.js';

/**
 * Input sent for a wait the run has not reached yet is kept and answers the wait when it is
 * reached, whatever the moment it arrives: while the function is getting to the wait, while
 * the kept input is being written, or before a crash that came between the two.
 */

const approval = workflow('kept-approval', {
  version: '1',
  input: z.object({}),
  async run(ctx) {
    await ctx.step('prepare', () => 1);
    return ctx.waitForInput('approve', { schema: z.object({ ok: z.boolean() }) });
  },
});

/** A memory store whose inbox writes, and writes of a new waiting task, wait for gates. */
class SlowStore extends MemoryStore {
  inboxGate: Promise<void> | null = null;
  waitGate: Promise<void> | null = null;
  waitWriting = deferred();

  override async putInbox(runId: string, taskId: string, data: unknown): Promise<void> {
    await this.inboxGate;
    return super.putInbox(runId, taskId, data);
  }

  // Every checkpoint, the engine's (through its port) and the public one's, is gated.
  protected override async _checkpoint(
    checkpoint: Checkpoint,
    options: BackendWriteOptions,
  ): Promise<void> {
    await this.#gateWait(checkpoint);
    return super._checkpoint(checkpoint, options);
  }

  async #gateWait(checkpoint: Checkpoint): Promise<void> {
    if (checkpoint.tasks?.some((t) => t.kind === 'wait' && t.status === 'waiting')) {
      this.waitWriting.resolve();
      await this.waitGate;
    }
  }
}

describe('input kept for a wait not reached yet', () => {
  it('answers the wait when the run reached it while the input was being written', async () => {
    const store = new SlowStore();
    const { engine } = await open({ store, workflows: [approval] });
    const written = deferred();
    store.inboxGate = written.promise;
    await engine.start(approval, {}, { id: 'r1' });
    // The function has not reached the wait: the input is kept...
    const resumed = engine.resumeTask('r1', 'approve', { ok: true });
    // ...and while it is written, the run gets to the wait and waits there.
    await until(async () => (await engine.listWaiting()).items.length === 1, 'the wait');
    written.resolve();
    expect((await resumed).status).toBe('resumed');
    expect(await engine.handle('r1').result()).toEqual({ ok: true });
    expect(await store.listInbox('r1')).toEqual([]);
    await engine.close();
  });

  it('answers the wait when it was being written as the input was kept', async () => {
    const store = new SlowStore();
    const { engine } = await open({ store, workflows: [approval] });
    const inboxWritten = deferred();
    const waitWritten = deferred();
    store.inboxGate = inboxWritten.promise;
    store.waitGate = waitWritten.promise;
    await engine.start(approval, {}, { id: 'r3' });
    const kept = engine.resumeTask('r3', 'approve', { ok: true });
    // The run reaches the wait, finds no input yet, and writes the wait...
    await store.waitWriting.promise;
    // ...while the input is written and kept: the wait takes it once it is set up.
    inboxWritten.resolve();
    expect((await kept).status).toBe('kept');
    waitWritten.resolve();
    expect(await engine.handle('r3').result()).toEqual({ ok: true });
    expect(await store.listInbox('r3')).toEqual([]);
    await engine.close();
  });

  it('records input its schema refuses on the wait when it was being written as the input was kept', async () => {
    const store = new SlowStore();
    const { engine } = await open({ store, workflows: [approval] });
    const refused: unknown[] = [];
    engine.on('task:input-refused', (e) => refused.push(e.issues));
    const inboxWritten = deferred();
    const waitWritten = deferred();
    store.inboxGate = inboxWritten.promise;
    store.waitGate = waitWritten.promise;
    await engine.start(approval, {}, { id: 'r4' });
    const kept = engine.resumeTask('r4', 'approve', { ok: 'yes' });
    await store.waitWriting.promise;
    inboxWritten.resolve();
    expect((await kept).status).toBe('kept');
    waitWritten.resolve();
    await until(async () => (await engine.get('r4')).status === 'paused', 'the pause');
    await until(() => refused.length === 1, 'the refusal');
    expect(await store.getTask('r4', 'approve')).toMatchObject({
      status: 'waiting',
      meta: { refusedInput: { data: { ok: 'yes' } } },
    });
    expect(await store.listInbox('r4')).toEqual([]);
    await engine.resumeTask('r4', 'approve', { ok: true });
    expect(await engine.handle('r4').result()).toEqual({ ok: true });
    await engine.close();
  });

  it('is delivered after a crash that came before the wait took it', async () => {
    const options = { workflows: [approval] };
    const { engine, store } = await open(options);
    await engine.start(approval, {}, { id: 'r2' });
    await until(async () => (await engine.get('r2')).status === 'paused', 'the pause');
    await engine.close();
    // The state a crash can leave: the wait recorded as waiting, the run not yet paused,
    // and input acknowledged as kept in the inbox.
    const run = (await store.getRun('r2'))!;
    await store.checkpoint({
      runs: [{ ...run, status: 'running', isPaused: false, pausedTaskId: null }],
    });
    await store.putInbox('r2', 'approve', { ok: false });
    await store.close();

    const next = await reopen(store, options);
    expect(await next.engine.handle('r2').result()).toEqual({ ok: false });
    const task = (await next.engine.tasks('r2')).find((t) => t.taskId === 'approve');
    expect(task?.resumedBy).toBe('inbox');
    expect(await next.store.listInbox('r2')).toEqual([]);
    await next.engine.close();
  });
});

describe('input for a task the run does not have', () => {
  const gate = deferred();
  const slow = workflow('kept-slow', {
    version: '1',
    input: z.object({}),
    async run(ctx) {
      await ctx.step('prepare', () => gate.promise);
      return ctx.waitForInput('approve', { schema: z.object({ ok: z.boolean() }) });
    },
  });
  const two = workflow('kept-two', {
    version: '1',
    input: z.object({}),
    run: async (ctx) =>
      Promise.all([
        ctx.waitForInput('legal', { schema: z.boolean() }),
        ctx.waitForInput('finance', { schema: z.boolean() }),
      ]),
  });
  const workflows = [approval, slow, two];

  it.each([
    ['kept in memory', 500],
    ['loaded from the store', 0],
  ])(
    'is refused on a run paused on input (%s), naming the waiting tasks',
    async (_l, keepPausedRuns) => {
      const { engine, store } = await open({ workflows, keepPausedRuns });
      await engine.start(approval, {}, { id: 'p1' });
      await until(async () => (await engine.get('p1')).status === 'paused', 'the pause');
      const before = await snapshot(store);
      const error = await rejectsWithCode(
        engine.resumeTask('p1', 'aprove', { ok: true }),
        'NOT_WAITING',
      );
      expect((error as CairnError).details).toEqual({
        runId: 'p1',
        taskId: 'aprove',
        waiting: ['approve'],
        suggestion: 'approve',
      });
      expect(await snapshot(store)).toEqual(before);
      // The caller may still keep it, for a wait the run reaches later.
      expect(await engine.resumeTask('p1', 'later', { x: 1 }, { keep: true })).toMatchObject({
        status: 'kept',
      });
      expect((await store.listInbox('p1')).map((e) => e.taskId)).toEqual(['later']);
      await engine.resumeTask('p1', 'approve', { ok: true });
      expect(await engine.handle('p1').result()).toEqual({ ok: true });
      await engine.close();
    },
  );

  it('lists every waiting task, without a suggestion when none is close', async () => {
    const { engine } = await open({ workflows });
    await engine.start(two, {}, { id: 'p2' });
    await until(async () => (await engine.get('p2')).status === 'paused', 'the pause');
    const error = await rejectsWithCode(engine.resumeTask('p2', 'sales', true), 'NOT_WAITING');
    expect((error as CairnError).details).toEqual({
      runId: 'p2',
      taskId: 'sales',
      waiting: ['legal', 'finance'],
    });
    await engine.close();
  });

  it('is kept without asking on a run that has not reached a wait yet', async () => {
    const { engine, store } = await open({ workflows });
    await engine.start(slow, {}, { id: 'p3' });
    await until(async () => (await store.getTask('p3', 'prepare')) !== undefined, 'the step');
    expect((await engine.resumeTask('p3', 'approve', { ok: false })).status).toBe('kept');
    gate.resolve();
    expect(await engine.handle('p3').result()).toEqual({ ok: false });
    await engine.close();
  });

  it('is kept without asking on a run an operator paused before its wait', async () => {
    const held = deferred();
    const stepped = workflow('kept-operator', {
      input: z.object({}),
      async run(ctx) {
        await ctx.step('prepare', () => held.promise);
        return ctx.waitForInput('approve', { schema: z.boolean() });
      },
    });
    const opened = await open({ workflows: [stepped] });
    await opened.engine.start(stepped, {}, { id: 'p4' });
    const pausing = opened.engine.pause('p4');
    held.resolve();
    expect((await pausing).status).toBe('paused');
    expect((await opened.engine.resumeTask('p4', 'approve', true)).status).toBe('kept');
    await opened.engine.resume('p4');
    expect(await opened.engine.handle('p4').result()).toBe(true);
    await opened.engine.close();
  });
});
