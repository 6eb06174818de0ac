import type { Run, Task } from '@cairn/store';
import { makeRun, makeTask } from './records.js';

/**
 * The life of one run in the crash test, as a list of checkpoints. Stage `n` is the state
 * after checkpoint `n`; each checkpoint moves index entries and timers:
 *
 *   0  created, queued
 *   1  running; step `load` running
 *   2  `load` completed; wait `approve` waiting with a timeout (waiting entry + timer);
 *      the run paused at it
 *   3  `approve` resumed (entries removed); running; sleep `cool-off` sleeping (timer)
 *   4  `cool-off` done; step `pay` running
 *   5  `pay` completed; the run completed
 */
export const LAST_STAGE = 5;

const HOUR = 3_600_000;

export interface StageWrite {
  /** Stage 0 is `createRun`; the others are checkpoints. */
  readonly run: Run;
  readonly tasks: Task[];
}

/** The records written by checkpoint `stage`. */
export function stageWrite(runId: string, createdAt: number, stage: number): StageWrite {
  const at = createdAt + stage;
  const base = { createdAt, updatedAt: at, startedAt: stage >= 1 ? createdAt + 1 : null };
  switch (stage) {
    case 0:
      return { run: makeRun(runId, { createdAt }), tasks: [] };
    case 1:
      return {
        run: makeRun(runId, { ...base, status: 'running' }),
        tasks: [makeTask(runId, 'load', { seq: 0, startedAt: at })],
      };
    case 2:
      return {
        run: makeRun(runId, { ...base, status: 'paused', isPaused: true, pausedTaskId: 'approve' }),
        tasks: [
          makeTask(runId, 'load', {
            seq: 0,
            status: 'completed',
            startedAt: createdAt + 1,
            endedAt: at,
            durationMs: 1,
            output: { rows: 3 },
          }),
          approve(runId, createdAt, 'waiting'),
        ],
      };
    case 3:
      return {
        run: makeRun(runId, { ...base, status: 'running' }),
        tasks: [
          { ...approve(runId, createdAt, 'completed'), endedAt: at, resumedBy: 'manager' },
          makeTask(runId, 'cool-off', {
            kind: 'sleep',
            seq: 2,
            status: 'sleeping',
            startedAt: at,
            wakeAt: createdAt + HOUR,
          }),
        ],
      };
    case 4:
      return {
        run: makeRun(runId, { ...base, status: 'running' }),
        tasks: [
          makeTask(runId, 'cool-off', {
            kind: 'sleep',
            seq: 2,
            status: 'completed',
            startedAt: createdAt + 3,
            endedAt: at,
            wakeAt: createdAt + HOUR,
          }),
          makeTask(runId, 'pay', { seq: 3, startedAt: at }),
        ],
      };
    case 5:
      return {
        run: makeRun(runId, { ...base, status: 'completed', endedAt: at, output: 'paid' }),
        tasks: [
          makeTask(runId, 'pay', {
            seq: 3,
            status: 'completed',
            startedAt: createdAt + 4,
            endedAt: at,
            durationMs: 1,
          }),
        ],
      };
    default:
      throw new RangeError(`no stage ${stage}`);
  }
}

function approve(runId: string, createdAt: number, status: 'waiting' | 'completed'): Task {
  return makeTask(runId, 'approve', {
    kind: 'wait',
    seq: 1,
    status,
    startedAt: createdAt + 2,
    schema: { type: 'object', properties: { approved: { type: 'boolean' } } },
    timeoutAt: createdAt + 48 * HOUR,
    resumedBy: null,
  });
}

/** Everything stored for the run once checkpoints 0..stage are written: run and tasks by seq. */
export function stageState(
  runId: string,
  createdAt: number,
  stage: number,
): { run: Run; tasks: Task[] } {
  const tasks = new Map<string, Task>();
  let run: Run | undefined;
  for (let s = 0; s <= stage; s++) {
    const write = stageWrite(runId, createdAt, s);
    run = write.run;
    for (const task of write.tasks) tasks.set(task.taskId, task);
  }
  return { run: run!, tasks: [...tasks.values()].sort((a, b) => a.seq - b.seq) };
}
