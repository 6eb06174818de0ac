/** A resume that loads a paused run and whose replay fails is refused with the replay's error. */
import { describe, expect, it, onTestFinished } from 'vitest';
import { z } from 'zod';
import { workflow, type WorkflowContext } from '../src/index.js';
import { Harness } from './hitl-support.js';
import { throwsWithCode } from './support.js';

const Ok = z.object({ ok: z.boolean() });

/** Version '1' of `approval` as first written, and as changed without a new version. */
const approval = (prepare: (ctx: WorkflowContext) => Promise<unknown>) =>
  workflow('approval', {
    input: z.object({}),
    async run(ctx) {
      await prepare(ctx);
      const decision = await ctx.waitForInput('approve', { schema: Ok });
      return decision.ok;
    },
  });
const original = approval(async (ctx) => {
  await ctx.step('check', () => 'checked');
  await ctx.step('quote', () => 42);
});
const changes: [string, ReturnType<typeof approval>][] = [
  [
    'a step renamed',
    approval(async (ctx) => {
      await ctx.step('check', () => 'checked');
      await ctx.step('price', () => 42);
    }),
  ],
  [
    'two steps swapped',
    approval(async (ctx) => {
      await ctx.step('quote', () => 42);
      await ctx.step('check', () => 'checked');
    }),
  ],
];

/** A run of the original code paused on `approve`, and an engine with the changed code. */
async function pausedThenChanged(changed: ReturnType<typeof approval>) {
  const h = await Harness.create([original]);
  onTestFinished(() => h.close());
  const handle = await h.engine.start(original, {});
  await h.untilStatus(handle.id, 'paused');
  await h.restart([changed]);
  return { h, runId: handle.id };
}

describe('a resume whose replay fails', () => {
  it.each(changes)(
    'answers resumeTask with NON_DETERMINISM (%s) and changes nothing',
    async (_what, changed) => {
      const { h, runId } = await pausedThenChanged(changed);
      const before = await h.snapshot();
      await throwsWithCode(
        () => h.engine.resumeTask(runId, 'approve', { ok: true }),
        'NON_DETERMINISM',
      );
      expect(await h.snapshot()).toEqual(before);
      expect(await h.engine.get(runId)).toMatchObject({
        status: 'paused',
        pausedTaskId: 'approve',
      });
      expect(await h.store.getTask(runId, 'approve')).toMatchObject({ status: 'waiting' });
      expect(h.engine.activeRuns).toBe(0);
      expect(h.named('task:resumed')).toEqual([]);
      expect(h.named('run:failed')).toEqual([]);
      // Asked again, it answers the same: the run was left as it was.
      await throwsWithCode(
        () => h.engine.resumeTask(runId, 'approve', { ok: true }),
        'NON_DETERMINISM',
      );
    },
  );

  it.each(changes)(
    'answers resume with NON_DETERMINISM (%s) and changes nothing',
    async (_what, changed) => {
      const { h, runId } = await pausedThenChanged(changed);
      const before = await h.snapshot();
      await throwsWithCode(() => h.engine.resume(runId, { ok: true }), 'NON_DETERMINISM');
      expect(await h.snapshot()).toEqual(before);
      expect(await h.engine.get(runId)).toMatchObject({ status: 'paused' });
    },
  );

  it('leaves the run for an engine with the code it started with', async () => {
    const { h, runId } = await pausedThenChanged(changes[0]![1]);
    await throwsWithCode(
      () => h.engine.resumeTask(runId, 'approve', { ok: true }),
      'NON_DETERMINISM',
    );
    await h.restart([original]);
    expect(await h.engine.resumeTask(runId, 'approve', { ok: true })).toMatchObject({
      status: 'resumed',
    });
    expect(await h.engine.handle(runId).result()).toBe(true);
  });
});
