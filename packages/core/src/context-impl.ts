/** The `WorkflowContext` a workflow function receives, and the recorded values and logs behind it. */
import { CairnError, faults, uuidv7, type LogLevel } from '@cairn/store';
import type { WorkflowContext } from './context.js';
import { typeError } from './execution-support.js';
import { newTask } from './new-records.js';
import { runStep } from './steps.js';
import { waitForInput } from './waits.js';
import { sleepTask } from './sleeps.js';
import { runChild } from './children.js';
import type { RunExecution } from './execution.js';

export function makeContext(exec: RunExecution): WorkflowContext {
  return {
    get runId() {
      return exec.run.id;
    },
    get workflow() {
      return exec.run.workflow;
    },
    get version() {
      return exec.run.version;
    },
    get namespace() {
      return exec.run.namespace;
    },
    get signal() {
      return exec.abort.signal;
    },
    step: (id, fn, options) => {
      if (exec.stepRunning !== null) throw nested(exec, `step "${String(id)}"`);
      return runStep(exec, id, fn, options);
    },
    waitForInput: (id, options) => {
      if (exec.stepRunning !== null) throw nested(exec, `waitForInput "${String(id)}"`);
      return waitForInput(exec, id, options);
    },
    sleep: (id, duration) => {
      if (exec.stepRunning !== null) throw nested(exec, `sleep "${String(id)}"`);
      return sleepTask(exec, id, duration);
    },
    child: (id, wf, input, options) => {
      if (exec.stepRunning !== null) throw nested(exec, `child "${String(id)}"`);
      return runChild(exec, id, wf, input, options);
    },
    now: () => recordValue(exec, 'now', () => exec.host.clock.now()),
    random: () => recordValue(exec, 'random', () => Math.random()),
    uuid: () => recordValue(exec, 'uuid', () => uuidv7(exec.host.clock.now())),
    log: (message, data, level) => writeLog(exec, message, data, level),
  };
}

/**
 * A `ctx` call made by a step's function while it runs (its synchronous part): refused, since
 * a replay returns the step's recorded result without calling its function, so a task it
 * started would never be asked for again. The step's attempt fails with the same error.
 */
function nested(exec: RunExecution, call: string): CairnError {
  const step = exec.stepRunning!;
  const error = new CairnError(
    'NESTED_STEP',
    `The function of step "${step}" called ctx.${call}: steps, waits, sleeps, children and recorded values are called from the workflow function only. Call the inner function directly, or group steps with ctx.child`,
    { details: { runId: exec.run.id, taskId: step, call } },
  );
  exec.nestedCall ??= error;
  return error;
}

export function recordValue<T>(
  exec: RunExecution,
  kind: 'now' | 'random' | 'uuid',
  make: () => T,
): T {
  if (exec.stepRunning !== null) throw nested(exec, `${kind}()`);
  const { taskId, seq, hist, group } = exec.claim(`$${kind}`, 'step');
  if (hist && hist.status === 'completed') return hist.output as T;
  const value = make();
  const now = exec.host.clock.now();
  const task = newTask(exec, {
    taskId,
    kind: 'step',
    seq,
    status: 'completed',
    output: value,
    startedAt: now,
    endedAt: now,
    durationMs: 0,
    group,
    meta: { recorded: kind },
  });
  exec.tasks.set(taskId, task);
  // Not synced on its own: anything that depends on the value is written after it.
  exec.writeSoft({ tasks: [task] }).catch((error: unknown) => {
    void exec.fatal(error);
  });
  return value;
}

export function writeLog(
  exec: RunExecution,
  message: unknown,
  data?: unknown,
  level: LogLevel = 'info',
): void {
  if (typeof message !== 'string') throw typeError('log message must be a string');
  if (exec.unconsumed.size > 0 || exec.state !== 'active') return; // replaying: already logged
  try {
    faults.hit('telemetry.write', message);
  } catch (cause) {
    exec.host.events.emit('warning', {
      message: 'A log line could not be written',
      runId: exec.run.id,
      cause,
    });
    return;
  }
  exec.host.store
    .appendLogs([
      {
        runId: exec.run.id,
        at: exec.host.clock.now(),
        level,
        message,
        taskId: null,
        ...(data === undefined ? {} : { data }),
      },
    ])
    .catch((cause: unknown) => {
      exec.host.events.emit('warning', {
        message: 'A log line could not be written',
        runId: exec.run.id,
        cause,
      });
    });
}
