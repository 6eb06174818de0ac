/** `cairn resume`, `pause` and `cancel`: offline operations on a store no engine holds. */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createEngine, LevelStore } from '@cairn/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { populate, type Populated } from './fixture/populate.js';
import { allWorkflows } from './fixture/workflows.js';
import {
  cairn,
  snapshot,
  tempDir,
  type ErrorOutput,
  type ResumeOutput,
  type RunDetail,
  type RunOutput,
} from './support.js';

let dir: ReturnType<typeof tempDir>;
let files: ReturnType<typeof tempDir>;
let ids: Populated;
let store: string[];

beforeAll(async () => {
  dir = tempDir();
  files = tempDir('cairn-cli-files-');
  ids = await populate(dir.path);
  store = ['--store', dir.path];
});

afterAll(() => {
  dir.remove();
  files.remove();
});

/** Opens an engine on the store, waits for the run's result, and closes it. */
async function completeWithEngine(runId: string): Promise<unknown> {
  const level = new LevelStore({ path: dir.path });
  const engine = await createEngine({ store: level, workflows: allWorkflows });
  try {
    return await engine.handle(runId).result();
  } finally {
    await engine.close();
    await level.close();
  }
}

describe('cairn resume', () => {
  it('refuses data its schema refuses: exit 1, the issues listed, the store unchanged', async () => {
    const before = await snapshot(dir.path);
    const r = await cairn([
      'resume',
      ids.approval,
      ...store,
      '--task',
      'manager-approval',
      '--data',
      '{"approved":"yes"}',
    ]);
    expect(r.code).toBe(1);
    expect(r.errLines[0]).toMatch(/^cairn: .*"manager-approval"/);
    // Then the issues, one line each.
    expect(r.errLines.slice(1)).toEqual([
      expect.stringMatching(/^ {2}approved: /),
      expect.stringMatching(/^ {2}by: /),
    ]);
    expect(r.stdout).toBe('');
    expect(await snapshot(dir.path)).toEqual(before);

    const json = await cairn([
      'resume',
      ids.approval,
      ...store,
      '--task',
      'manager-approval',
      '--data',
      '{}',
      '--json',
    ]);
    expect(json.code).toBe(1);
    expect(json.json<ErrorOutput>().error.code).toBe('INVALID_RESUME_INPUT');
    expect(await snapshot(dir.path)).toEqual(before);
  });

  it('a task that is not waiting is exit 1 (NOT_WAITING); an unknown run exit 3', async () => {
    const notWaiting = await cairn([
      'resume',
      ids.approval,
      ...store,
      '--task',
      'score-risk',
      '--data',
      '{}',
      '--json',
    ]);
    expect(notWaiting.code).toBe(1);
    expect(notWaiting.json<ErrorOutput>().error.code).toBe('NOT_WAITING');
    const unknown = await cairn(['resume', 'no-such-run', ...store, '--task', 't', '--data', '{}']);
    expect(unknown.code).toBe(3);
    expect(unknown.errLines).toHaveLength(1);
  });

  it('a misspelt task of a run paused on input is exit 1 (NOT_WAITING), unless --keep', async () => {
    const before = await snapshot(dir.path);
    const args = ['resume', ids.approval2, ...store, '--task', 'manager-aproval', '--data', '{}'];
    const typo = await cairn(args);
    expect(typo.code).toBe(1);
    expect(typo.errLines).toContain('Did you mean --task manager-approval?');
    const json = await cairn([...args, '--json']);
    expect(json.code).toBe(1);
    expect(json.json<ErrorOutput>().error).toMatchObject({
      code: 'NOT_WAITING',
      details: { waiting: ['manager-approval'], suggestion: 'manager-approval' },
    });
    expect(await snapshot(dir.path)).toEqual(before);

    const kept = await cairn([...args, '--keep', '--json']);
    expect(kept.code).toBe(0);
    expect(kept.json<ResumeOutput>()).toMatchObject({ status: 'kept' });
    const misplaced = await cairn(['resume', ids.approval2, ...store, '--keep', '--data', '{}']);
    expect(misplaced.code).toBe(2);
  });

  it('checkpoints valid data, and the next engine completes the run', async () => {
    const r = await cairn([
      'resume',
      ids.approval,
      ...store,
      '--task',
      'manager-approval',
      '--data',
      '{"approved":true,"by":"maria"}',
      '--by',
      'maria@example.com',
    ]);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(`Resumed manager-approval of run ${ids.approval}`);
    expect(r.stdout).toContain('the next engine that opens this store continues the run');
    const shown = (await cairn(['show', ids.approval, ...store, '--json'])).json<RunDetail>();
    const wait = shown.tasks.find((t: { taskId: string }) => t.taskId === 'manager-approval');
    expect(wait).toMatchObject({ status: 'completed', resumedBy: 'maria@example.com' });
    expect(await completeWithEngine(ids.approval)).toEqual({ status: 'paid', by: 'maria' });
  });

  it('resumes every waiting task of a run from a file keyed by task id', async () => {
    const file = join(files.path, 'answers.json');
    writeFileSync(
      file,
      JSON.stringify({
        'finance-approval': { approved: true, by: 'fin' },
        'legal-approval': { approved: true, by: 'legal' },
      }),
    );
    const r = await cairn(['resume', ids.contract, ...store, '--data-file', file, '--json']);
    expect(r.code).toBe(0);
    expect(r.json<ResumeOutput>().resumed.sort()).toEqual(['finance-approval', 'legal-approval']);
    expect(await completeWithEngine(ids.contract)).toEqual({
      contract: 'acme-2025',
      approved: true,
    });
  });
});

describe('cairn pause and cancel', () => {
  it('an operator pause holds a waiting run until resume lifts it', async () => {
    const paused = await cairn(['pause', ids.approval2, ...store, '--json']);
    expect(paused.code).toBe(0);
    expect(paused.json<RunOutput>().run).toMatchObject({ status: 'paused', pauseRequested: true });
    const text = await cairn(['show', ids.approval2, ...store]);
    expect(text.stdout).toContain('paused     by an operator');
    const resumed = await cairn(['resume', ids.approval2, ...store]);
    expect(resumed.code).toBe(0);
    expect(resumed.stdout).toContain('the operator pause is lifted');
    const run = (await cairn(['show', ids.approval2, ...store, '--json'])).json<RunDetail>().run;
    expect(run).toMatchObject({
      status: 'paused',
      pauseRequested: false,
      pausedTaskId: 'manager-approval',
    });
  });

  it('resuming a run an operator paused in its sleep lets it run again', async () => {
    const r = await cairn(['resume', ids.operatorPaused, ...store, '--json']);
    expect(r.code).toBe(0);
    expect(r.json<ResumeOutput>().run).toMatchObject({ pauseRequested: false });
    // Offline, the run is put back in the queue: the next engine carries it on.
    expect(r.json<ResumeOutput>().run.status).toBe('queued');
  });

  it('cancels a paused run; a completed run cannot be cancelled (exit 1)', async () => {
    const r = await cairn(['cancel', ids.approval2, ...store]);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(`Cancelled run ${ids.approval2}: it is cancelled.`);
    const tasks = (await cairn(['show', ids.approval2, ...store, '--json'])).json<RunDetail>()
      .tasks;
    expect(tasks.find((t) => t.taskId === 'manager-approval')?.status).toBe('cancelled');
    const done = await cairn(['cancel', ids.llm, ...store, '--json']);
    expect(done.code).toBe(1);
    expect(done.json<ErrorOutput>().error.code).toBe('INVALID_TRANSITION');
    expect(done.errLines).toHaveLength(1);
  });
});
