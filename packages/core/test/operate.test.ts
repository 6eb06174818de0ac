import { afterEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { diagnose, runDetail } from '@cairn/store';
import { TerminalError, workflow } from '../src/index.js';
import { Harness, until } from './hitl-support.js';

/**
 * The engine's side of operating Cairn: usage recorded as steps complete, and the queries
 * (`runDetail`, `diagnose`, `usage`, `listRuns` with filters) re-exposed on the engine.
 */

let flaky = 0;
const llm = workflow('llm', {
  input: z.object({ topic: z.string() }),
  async run(ctx, input) {
    const when = ctx.now();
    const draft = await ctx.step('draft', () => `about ${input.topic}`, {
      meta: { model: 'gpt-x', promptTokens: 100, completionTokens: 20, totalTokens: 120 },
    });
    const [a, b] = await Promise.all([
      ctx.step('review', () => ({ ok: true, used: 7 }), {
        meta: (r) => ({ model: 'gpt-y', promptTokens: r.used, completionTokens: 3 }),
      }),
      ctx.step('plain', () => 'no tokens'),
    ]);
    const retried = await ctx.step(
      'flaky',
      (s) => {
        flaky++;
        if (s.attempt < 2) throw new Error('try again');
        s.annotate({ model: 'gpt-x', totalTokens: 5 });
        return 'ok';
      },
      { retry: { attempts: 3, initialDelay: 0, jitter: 0 } },
    );
    await ctx
      .step(
        'broken',
        () => {
          throw new TerminalError('no');
        },
        { meta: { model: 'gpt-x', totalTokens: 1000 } },
      )
      .catch(() => undefined);
    ctx.log('drafted', { chars: draft.length });
    return { draft, a: a.ok, b, retried, when: when > 0 };
  },
});

const approval = workflow('approval', {
  version: '1',
  input: z.object({}),
  async run(ctx) {
    await ctx.step('prepare', () => 'ready');
    const d = await ctx.waitForInput('manager-approval', {
      schema: z.object({ ok: z.boolean() }),
      timeout: '48h',
      description: 'Approve the expense',
    });
    return d.ok;
  },
});
const approvalV2 = workflow('approval', {
  version: '2',
  input: z.object({}),
  run: async () => true,
});

const parent = workflow('parent', {
  input: z.object({}),
  async run(ctx) {
    const [x, y] = await Promise.all([
      ctx.child('sub', approval, {}),
      ctx.step('side', () => 'side'),
      ctx.sleep('nap', '1h'),
    ]);
    return { x, y };
  },
});

let h: Harness;
afterEach(async () => {
  flaky = 0;
  await h?.close();
});

describe('usage', () => {
  it('completed steps add their model and tokens; recorded values and failed steps do not', async () => {
    h = await Harness.create([llm]);
    await h.engine.start(llm, { topic: 'a' }, { namespace: 'acme' });
    await h.engine.start(llm, { topic: 'b' });
    // The manual clock fires the retry's backoff timer when it is advanced.
    await until(async () => {
      await h.clock.advance(0);
      return (await h.engine.listRuns({ status: 'completed' })).items.length === 2;
    }, 'both runs to complete');
    const byModel = await h.engine.usage({ by: 'model' });
    expect(byModel).toEqual([
      { key: '-', steps: 2, promptTokens: 0, completionTokens: 0, totalTokens: 0 },
      { key: 'gpt-x', steps: 4, promptTokens: 200, completionTokens: 40, totalTokens: 250 },
      { key: 'gpt-y', steps: 2, promptTokens: 14, completionTokens: 6, totalTokens: 20 },
    ]);
    expect(await h.engine.usage({ by: 'namespace' })).toEqual([
      { key: 'acme', steps: 4, promptTokens: 107, completionTokens: 23, totalTokens: 135 },
      { key: 'default', steps: 4, promptTokens: 107, completionTokens: 23, totalTokens: 135 },
    ]);
    const day = new Date(h.clock.now()).toISOString().slice(0, 10);
    expect((await h.engine.usage({ by: 'day' })).map((r) => r.key)).toEqual([day]);
    expect(flaky).toBe(4);
    // Replaying the runs after a restart counts nothing again.
    await h.restart();
    expect(await h.engine.usage({ by: 'model' })).toEqual(byModel);
  });
});

describe('queries on the engine', () => {
  it('runDetail: tasks by seq, parallel groups, children, waits and logs', async () => {
    h = await Harness.create([parent, approval]);
    const { id } = await h.engine.start(parent, {});
    await until(async () => (await h.store.listWaiting()).items.length === 1, 'the child waits');
    const detail = await h.engine.runDetail(id);
    expect(detail.run.id).toBe(id);
    expect(detail.tasks.map((t) => t.taskId)).toEqual(['sub', 'side', 'nap']);
    expect(detail.groups).toEqual([
      { group: detail.tasks[0]!.group, taskIds: ['sub', 'side', 'nap'] },
    ]);
    expect(detail.children.map((c) => [c.workflow, c.parentRunId])).toEqual([['approval', id]]);
    expect(detail.waiting).toEqual([]);
    const child = await runDetail(h.store, detail.children[0]!.id);
    expect(child.waiting.map((t) => [t.taskId, typeof t.schema])).toEqual([
      ['manager-approval', 'object'],
    ]);
    await expect(h.engine.runDetail('nope')).rejects.toMatchObject({ code: 'NOT_FOUND' });
  });

  it('diagnose says what a paused run waits for, and when its version is not registered', async () => {
    h = await Harness.create([approval]);
    const { id } = await h.engine.start(approval, {});
    await h.untilStatus(id, 'paused');
    const found = await h.engine.diagnose(id);
    expect(found).toMatchObject({
      status: 'paused',
      versionRegistered: true,
      maxRecoveries: 10,
      recoveries: 0,
      running: [],
    });
    expect(found.waiting).toEqual([
      expect.objectContaining({ taskId: 'manager-approval', description: 'Approve the expense' }),
    ]);
    expect(found.timers).toEqual([
      { taskId: 'manager-approval', kind: 'wait', at: h.clock.now() + 48 * 3_600_000 },
    ]);
    expect(found.findings[0]).toMatch(/^waits for input on "manager-approval" since 2030-/);
    expect(found.findings[0]).toMatch(/times out at/);

    // A new engine that has only version 2.
    await h.restart([approvalV2]);
    const again = await h.engine.diagnose(id);
    expect(again.versionRegistered).toBe(false);
    expect(again.findings[0]).toMatch(/version 1 is not registered/);
    // Without an engine: what the store alone can tell.
    const storeOnly = await diagnose(h.store, id, { now: h.clock.now() + 49 * 3_600_000 });
    expect(storeOnly.versionRegistered).toBeNull();
    expect(storeOnly.findings[0]).toMatch(/its timeout passed at .* and fires when an engine runs/);
  });

  it('diagnose of a run in memory and of an ended run', async () => {
    h = await Harness.create([parent, approval, approvalV2]);
    const { id } = await h.engine.start(parent, {});
    await until(async () => {
      const [child] = (await h.store.listRuns({ workflow: 'approval' })).items;
      return child?.status === 'paused';
    }, 'the child to pause');
    const running = await h.engine.diagnose(id);
    expect(running.running).toEqual([
      expect.objectContaining({ taskId: 'sub', kind: 'child', childStatus: 'paused' }),
    ]);
    expect(running.findings).toContain('this engine is executing it now');
    expect(running.findings.some((f) => f.startsWith('waits for child run'))).toBe(true);
    const small = await h.engine.start(approvalV2, {});
    await small.result();
    const done = await h.engine.diagnose(small.id);
    expect(done.findings).toEqual([expect.stringMatching(/^it completed at /)]);
    await expect(h.engine.diagnose('nope')).rejects.toMatchObject({ code: 'NOT_FOUND' });
  });

  it('listRuns filters by tags and time', async () => {
    h = await Harness.create([approvalV2]);
    const a = await h.engine.start(approvalV2, {}, { tags: ['vip', 'eu'] });
    await h.clock.advance(1000);
    const b = await h.engine.start(approvalV2, {}, { tags: ['eu'] });
    await Promise.all([a.result(), b.result()]);
    const ids = async (q: object) => (await h.engine.listRuns(q)).items.map((r) => r.id);
    expect(await ids({ tags: ['eu'] })).toEqual([b.id, a.id]);
    expect(await ids({ tags: ['eu', 'vip'] })).toEqual([a.id]);
    expect(await ids({ since: h.clock.now() })).toEqual([b.id]);
    expect(await ids({ until: h.clock.now(), status: 'completed' })).toEqual([a.id]);
  });
});

describe('queries on the engine with bad arguments', () => {
  it('are refused with a stable code and change nothing', async () => {
    h = await Harness.create([llm]);
    const before = await h.snapshot();
    const calls: [() => Promise<unknown>, string][] = [
      [() => h.engine.runDetail(42 as never), 'INVALID_ARGUMENT'],
      [() => h.engine.runDetail('no-such-run'), 'NOT_FOUND'],
      [() => h.engine.diagnose('bad\u0001id'), 'INVALID_ARGUMENT'],
      [() => h.engine.diagnose('no-such-run'), 'NOT_FOUND'],
      [() => h.engine.usage(undefined as never), 'INVALID_ARGUMENT'],
      [() => h.engine.usage({ by: 'colour' as never }), 'INVALID_ARGUMENT'],
      [() => h.engine.usage({ by: 'model', since: 'yesterday' }), 'INVALID_ARGUMENT'],
      [() => h.engine.listRuns({ since: Number.NaN }), 'INVALID_ARGUMENT'],
      [() => h.engine.listRuns({ tags: 'a' as never }), 'INVALID_ARGUMENT'],
    ];
    for (const [call, code] of calls) await expect(call()).rejects.toMatchObject({ code });
    expect(await h.snapshot()).toEqual(before);
  });
});
