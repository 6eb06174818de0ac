import type { CairnError } from '@cairn/store';
import { parseCommand, usageError } from '../args.js';
import { COMMON_HELP, printHelp, type Command } from '../command.js';
import { CliError, EXIT } from '../errors.js';
import { paintStatus, snippet } from '../format.js';
import { issueLines, resumeData, resumedBy } from '../resume-data.js';
import { withStore } from '../store.js';

const OPTIONS = {
  task: { type: 'string' },
  data: { type: 'string' },
  'data-file': { type: 'string' },
  by: { type: 'string' },
  keep: { type: 'boolean' },
} as const;

export const resume: Command = {
  name: 'resume',
  summary: 'answer a waiting task, or resume a whole run (every wait, or an operator pause)',
  help: `Usage: cairn resume <runId> [--task <taskId> [--keep]] [--data '{…}' | --data-file <file>]

Resumes a paused run in the store, without an engine: the data is validated against the
JSON schema the wait stored, and only valid data is checkpointed (invalid data: exit 1,
the store is left exactly as it was). The next engine that opens the store continues
the run from there.

  --task <taskId>      answer this waiting task with the data
  (no --task)          resume the whole run: with data, every waiting task (one payload
                       for all, or an object keyed by task id); without, an operator pause

Options:
  --data <json>        the input, as JSON
  --data-file <file>   the input, from a JSON file (- reads stdin)
  --by <name>          who answered, recorded as the task's resumedBy (default: cli:<user>)
  --keep               with --task: keep the input for a task the run has not reached, even
                       though it is paused waiting on other tasks (refused otherwise: exit 1,
                       NOT_WAITING, naming the tasks it waits on)

${COMMON_HELP}`,

  async run(ctx) {
    const { values, positionals } = parseCommand(ctx.argv, OPTIONS, [1, 1, 'run id']);
    const out = ctx.output(values.json === true);
    if (values.help === true) return printHelp(out, this.help);
    const data = resumeData(values);
    const by = resumedBy(values.by);
    const taskId = values.task;
    if (taskId !== undefined && data === undefined) {
      throw usageError('--task needs the input: --data or --data-file');
    }
    const keep = values.keep === true;
    if (keep && taskId === undefined) throw usageError('--keep goes with --task');
    const runId = positionals[0] ?? '';
    const outcome = await withStore(out, { path: values.store }, async (store) => {
      const { offlineResume, offlineResumeTask } = await import('@cairn/core');
      try {
        if (taskId !== undefined) {
          const result = await offlineResumeTask(store, runId, taskId, data, { by, keep });
          return {
            run: result.run,
            resumed: result.status === 'resumed' ? [taskId] : [],
            kept: result.status === 'kept',
          };
        }
        const before = (await store.listWaiting({ runId, limit: 1000 })).items;
        const run = await offlineResume(store, runId, data, { by });
        const after = new Map((await store.listTasks(runId)).map((t) => [t.taskId, t.status]));
        const resumed = before
          .filter((t) => after.get(t.taskId) === 'completed')
          .map((t) => t.taskId);
        return { run, resumed, kept: false };
      } catch (error) {
        throw explain(error);
      }
    });
    const { run, resumed, kept } = outcome;
    out.result({
      runId,
      taskId: taskId ?? null,
      status: kept ? 'kept' : 'resumed',
      resumed,
      by,
      run,
    });
    if (out.json) return 0;
    const { c } = out;
    if (kept) {
      out.line(
        `Kept the input for ${c.bold(taskId ?? '?')} of run ${runId}: the run has not reached that wait yet, and takes the input when it does.`,
      );
      return 0;
    }
    if (taskId !== undefined) {
      out.line(`Resumed ${c.bold(taskId)} of run ${runId} with ${snippet(data, 80)} (by ${by}).`);
    } else if (resumed.length > 0) {
      out.line(`Resumed ${resumed.map((t) => c.bold(t)).join(', ')} of run ${runId} (by ${by}).`);
    } else {
      out.line(`Resumed run ${runId}: the operator pause is lifted.`);
    }
    if (run.status === 'paused') {
      out.line(
        run.pauseRequested
          ? `It stays paused by an operator: cairn resume ${runId} lifts that.`
          : `It is still paused, waiting for input on ${c.yellow(run.pausedTaskId ?? '?')}.`,
      );
    } else {
      out.line(
        `It is ${paintStatus(run.status, c)}: the next engine that opens this store continues the run.`,
      );
    }
    return 0;
  },
};

/**
 * Invalid input lists its issues under the message; a task the run does not have, the task it
 * probably meant and how to keep the input anyway.
 */
function explain(error: unknown): unknown {
  const { code, message, details } = error as Partial<CairnError>;
  if (code === 'INVALID_RESUME_INPUT') {
    return new CliError(EXIT.failed, message!, code, details, issueLines(details));
  }
  if (code === 'NOT_WAITING' && Array.isArray(details?.waiting)) {
    const more = [
      ...(typeof details.suggestion === 'string'
        ? [`Did you mean --task ${details.suggestion}?`]
        : []),
      'Add --keep to keep the input for a wait the run reaches later.',
    ];
    return new CliError(EXIT.failed, message!, code, details, more);
  }
  return error;
}
