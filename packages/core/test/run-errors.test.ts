/** Every stored error carries the code the failure is reported with, old records included. */
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import type { ErrorInfo } from '@cairn/store';
import {
  CairnError,
  ManualClock,
  TerminalError,
  workflow,
  type EngineEvents,
  type WorkflowContext,
} from '../src/index.js';
import { openForTest, rejectsWithCode, reopen, tick, until } from './support.js';

const input = z.object({}).default({});

/**
 * Starts a workflow that runs `body`, waits for it to fail (moving the clock with `drive`
 * meanwhile), and returns what was recorded.
 */
async function failWith(
  body: (ctx: WorkflowContext) => Promise<unknown>,
  drive: (clock: ManualClock) => Promise<void> = async () => undefined,
) {
  const clock = new ManualClock();
  const wf = workflow('failing', { input, run: body });
  const { engine, store } = await openForTest({ workflows: [wf], clock });
  const failed: EngineEvents['run:failed'][] = [];
  const taskFailed: EngineEvents['task:failed'][] = [];
  engine.on('run:failed', (e) => failed.push(e));
  engine.on('task:failed', (e) => taskFailed.push(e));
  const handle = await engine.start(wf, {});
  await drive(clock);
  const rejection = await handle.result().then(
    () => expect.unreachable('the run should fail'),
    (error: unknown) => error as CairnError,
  );
  const run = await engine.get(handle.id);
  return {
    engine,
    store,
    run,
    rejection,
    failed,
    taskFailed,
    tasks: await engine.tasks(handle.id),
  };
}

describe('the error of a run the workflow failed', () => {
  it('is RUN_FAILED for a plain error: in the run, its event and result()', async () => {
    const { run, rejection, failed } = await failWith(async () => {
      throw new TypeError('no such customer');
    });
    expect(run.status).toBe('failed');
    expect(run.error).toMatchObject({
      code: 'RUN_FAILED',
      name: 'TypeError',
      message: 'no such customer',
    });
    expect(run.error?.stack).toContain('no such customer');
    expect(failed.map((e) => e.error)).toEqual([run.error]);
    expect(rejection).toBeInstanceOf(CairnError);
    expect(rejection.code).toBe('RUN_FAILED');
    expect(rejection.details).toMatchObject({ name: 'TypeError' });
  });

  it('keeps a code of the error’s own in details.originalCode', async () => {
    const { run, rejection } = await failWith(async () => {
      throw Object.assign(new Error('card declined'), { code: 'E_DECLINED' });
    });
    expect(run.error).toMatchObject({
      code: 'RUN_FAILED',
      details: { originalCode: 'E_DECLINED' },
    });
    expect(rejection.code).toBe('RUN_FAILED');
    expect(rejection.details).toMatchObject({ originalCode: 'E_DECLINED' });
  });

  it('is the code of a Cairn error the workflow throws', async () => {
    const { run, rejection } = await failWith(async () => {
      throw new CairnError('CONFLICT', 'taken');
    });
    expect(run.error).toMatchObject({ code: 'CONFLICT', message: 'taken' });
    expect(rejection.code).toBe('CONFLICT');
  });

  it('is RUN_FAILED for something thrown that is not an Error', async () => {
    const { run, rejection } = await failWith(async () => {
      throw { reason: 'odd' };
    });
    expect(run.error).toMatchObject({ code: 'RUN_FAILED', message: '{"reason":"odd"}' });
    expect(rejection.code).toBe('RUN_FAILED');
  });
});

describe('the errors of a failed step', () => {
  it('are STEP_FAILED in every attempt, the task, its events and the run', async () => {
    const { run, rejection, taskFailed, tasks } = await failWith(
      async (ctx) =>
        ctx.step(
          'flaky',
          (s) => {
            if (s.attempt === 1) throw Object.assign(new Error('busy'), { code: 'E_BUSY' });
            throw new TerminalError('gone');
          },
          { retry: { attempts: 2, initialDelay: 10, jitter: 0 } },
        ),
      (clock) => tick(clock, 10),
    );
    const [task] = tasks;
    expect(task!.attempts.map((a) => a.error)).toMatchObject([
      { code: 'STEP_FAILED', name: 'Error', message: 'busy', details: { originalCode: 'E_BUSY' } },
      { code: 'STEP_FAILED', name: 'TerminalError', message: 'gone' },
    ]);
    expect(task!.error).toMatchObject({ code: 'STEP_FAILED', name: 'TerminalError' });
    expect(taskFailed.map((e) => [e.error.code, e.willRetry])).toEqual([
      ['STEP_FAILED', true],
      ['STEP_FAILED', false],
    ]);
    expect(run.error).toMatchObject({ code: 'STEP_FAILED', message: 'gone' });
    expect(rejection.code).toBe('STEP_FAILED');
  });
});

/** The same error as a record written before every stored error had a code. */
function withoutCode(error: ErrorInfo | null): ErrorInfo | null {
  if (error === null) return null;
  const { code: _code, details: _details, ...rest } = error;
  return rest;
}

describe('errors stored without a code (before every error had one)', () => {
  it('still read, and report the code they stand for', async () => {
    const { engine, store, run } = await failWith(async () => {
      throw new Error('old failure');
    });
    await store.checkpoint({ runs: [{ ...run, error: withoutCode(run.error) }] });
    expect((await engine.get(run.id)).error).not.toHaveProperty('code');
    await rejectsWithCode(engine.handle(run.id).result(), 'RUN_FAILED');
    expect((await engine.diagnose(run.id)).findings.join('\n')).toContain(
      'RUN_FAILED: old failure',
    );
  });

  it('replay a failed step as STEP_FAILED', async () => {
    const wf = workflow('old-step-error', {
      input,
      async run(ctx) {
        let caught = '';
        try {
          await ctx.step(
            'flaky',
            () => {
              throw new Error('old failure');
            },
            { retry: 1 },
          );
        } catch (error) {
          caught = (error as CairnError).code;
        }
        await ctx.waitForInput('go', { schema: z.boolean() });
        return caught;
      },
    });
    const clock = new ManualClock();
    const first = await openForTest({ workflows: [wf], clock });
    const handle = await first.engine.start(wf, {});
    await until(async () => (await handle.status()) === 'paused', 'the run to pause');
    const task = (await first.store.getTask(handle.id, 'flaky'))!;
    await first.store.checkpoint({
      tasks: [
        {
          ...task,
          error: withoutCode(task.error),
          attempts: task.attempts.map((a) => ({ ...a, error: withoutCode(a.error) })),
        },
      ],
    });
    await first.engine.close();
    await first.store.close();
    const second = await reopen(first.store, { workflows: [wf], clock });
    await second.engine.resumeTask(handle.id, 'go', true);
    expect(await second.engine.handle(handle.id).result()).toBe('STEP_FAILED');
    await second.store.close();
  });
});
