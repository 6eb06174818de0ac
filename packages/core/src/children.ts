/** Child runs: created in the same checkpoint as the parent's task, awaited, their outcome recorded. */
import { CairnError, assertSerializable, checkOptionNames, uuidv7, type Run } from '@cairn/store';
import type { ChildOptions } from './context.js';
import type { Workflow } from './workflow.js';
import { FINAL_TASK, typeError, checkName, elapsed } from './execution-support.js';
import { newRun, newTask } from './new-records.js';
import { CHILD_OPTIONS } from './option-names.js';
import type { RunExecution } from './execution.js';

export async function runChild<I, O>(
  exec: RunExecution,
  name: string,
  wf: Workflow<I, O>,
  input: I,
  options: ChildOptions = {},
): Promise<O> {
  checkName('child', name);
  if (typeof wf !== 'object' || wf === null || typeof wf.name !== 'string') {
    throw typeError('child workflow must be a workflow definition');
  }
  if (!exec.host.registered(wf)) {
    throw new CairnError(
      'WORKFLOW_NOT_REGISTERED',
      `Workflow "${wf.name}" version ${wf.version} is not registered with this engine`,
      { details: { workflow: wf.name, version: wf.version } },
    );
  }
  if (typeof options !== 'object' || options === null)
    throw typeError('child options must be an object');
  checkOptionNames('child options', options, CHILD_OPTIONS);
  if (options.tags !== undefined) {
    const tags: unknown = options.tags;
    if (!Array.isArray(tags) || tags.some((t) => typeof t !== 'string'))
      throw typeError('child options.tags must be an array of strings');
    if (tags.length > 64 || (tags as string[]).some((t) => t.length > 200)) {
      throw new CairnError(
        'INVALID_ARGUMENT',
        'child options.tags: at most 64 tags of at most 200 characters',
      );
    }
  }
  const { taskId, seq, hist, group } = exec.claim(name, 'child');
  const ordered = exec.inOrder(hist);
  if (ordered) await ordered;
  if (hist && FINAL_TASK.has(hist.status)) return exec.replayed(hist) as O;
  const held = exec.gate(taskId, hist === undefined);
  if (held) await held;
  exec.inflight++;
  let task = hist;
  try {
    if (!task) {
      const parsed = wf.input.safeParse(input);
      if (!parsed.success) {
        throw new CairnError(
          'INVALID_INPUT',
          `The input of child "${taskId}" does not match ${wf.name}'s schema`,
          {
            details: { issues: parsed.error.issues },
          },
        );
      }
      assertSerializable(parsed.data, 'input');
      const now = exec.host.clock.now();
      const childRunId = uuidv7(now);
      const tags = [...(options.tags ?? [])].map(String);
      const childRun = newRun({
        id: childRunId,
        def: wf,
        namespace: exec.run.namespace,
        input: parsed.data,
        now,
        parent: { runId: exec.run.id, taskId, depth: exec.run.depth },
        tags,
      });
      task = newTask(exec, {
        taskId,
        kind: 'child',
        seq,
        status: 'running',
        attempt: 1,
        startedAt: now,
        group,
        meta: { workflow: wf.name, version: wf.version },
        childRunId,
      });
      exec.tasks.set(taskId, task);
      await exec.write({ runs: [childRun], tasks: [task] });
      exec.host.events.emit('task:started', {
        runId: exec.run.id,
        taskId,
        kind: 'child',
        attempt: 1,
      });
      exec.host.launch(childRun, wf);
    }
    const childRunId = task.childRunId!;
    const cancelled = new Promise<never>((_, reject) => {
      exec.pending.set(taskId, { kind: 'child', taskId, reject });
    });
    exec.inflight--;
    exec.scheduleCheck();
    let child: Run;
    try {
      child = await Promise.race([exec.host.waitForRun(childRunId), cancelled]);
    } finally {
      exec.inflight++;
      exec.pending.delete(taskId);
    }
    exec.assertLive();
    const now = exec.host.clock.now();
    task.endedAt = now;
    task.durationMs = elapsed(task.startedAt, now);
    if (child.status === 'completed') {
      task.status = 'completed';
      task.output = child.output;
    } else {
      task.status = child.status === 'cancelled' ? 'cancelled' : 'failed';
      task.error = child.error ?? {
        code: child.status === 'cancelled' ? 'CANCELLED' : 'CHILD_FAILED',
        message: `Child run ${childRunId} was ${child.status}`,
      };
      if (task.error.code !== 'CANCELLED' && child.status === 'failed') {
        task.error = {
          ...task.error,
          code: 'CHILD_FAILED',
          details: { ...task.error.details, childError: task.error },
        };
      }
    }
    await exec.write({ tasks: [task] });
    if (task.status === 'completed') {
      exec.host.events.emit('task:completed', {
        runId: exec.run.id,
        taskId,
        kind: 'child',
        durationMs: task.durationMs,
      });
      return child.output as O;
    }
    exec.host.events.emit('task:failed', {
      runId: exec.run.id,
      taskId,
      kind: 'child',
      error: task.error!,
      willRetry: false,
    });
    return exec.replayed(task) as O;
  } finally {
    exec.inflight--;
    exec.scheduleCheck();
  }
}
