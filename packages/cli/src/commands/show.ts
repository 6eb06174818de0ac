import type { ErrorInfo, LogLine, Run, RunDetail, Task } from '@cairn/store';
import { intOption, parseCommand } from '../args.js';
import { COMMON_HELP, printHelp, type Command } from '../command.js';
import { formatAge, formatDuration, formatTime, oneLine, paintStatus, snippet } from '../format.js';
import type { Output } from '../output.js';
import { describeSchema, schemaFields } from '../schema.js';
import { withStore } from '../store.js';
import { errorLabel, taskErrorCode, type ErrorCodes } from '../stored-errors.js';
import { timeline } from '../timeline.js';

const OPTIONS = {
  logs: { type: 'string' },
  width: { type: 'string' },
} as const;

export const show: Command = {
  name: 'show',
  summary: "a run's metadata and a timeline of its tasks, waits, errors, children and logs",
  help: `Usage: cairn show <runId> [options]

Shows a run: its metadata, then a timeline with one line per task (each attempt drawn
as a bar on the run's time axis; tasks started together in parallel are bracketed
┌ │ └), the tasks waiting for input and the fields they expect, errors by attempt,
child runs and the last log lines.

Options:
  --logs <n>     log lines to show (default 10; 0 for none)
  --width <n>    columns of the time axis (default: fits the terminal)

${COMMON_HELP}`,

  async run(ctx) {
    const { values, positionals } = parseCommand(ctx.argv, OPTIONS, [1, 1, 'run id']);
    const out = ctx.output(values.json === true);
    if (values.help === true) return printHelp(out, this.help);
    const logLimit = intOption(values.logs, 'logs', { min: 0, max: 10_000 }) ?? 10;
    const width = intOption(values.width, 'width', { min: 10, max: 400 });
    const runId = positionals[0] ?? '';
    const detail = await withStore(out, { path: values.store, readOnly: true }, async (store) => {
      const { runDetail } = await import('@cairn/store');
      return runDetail(store, runId);
    });
    out.result(detail);
    if (out.json) return 0;
    const axis = width ?? Math.max(20, Math.min(60, (ctx.stdout.columns ?? 120) - 90));
    // Loaded already, by the store: what code a stored error reports (old ones have none).
    const codes = await import('@cairn/store');
    printDetail(out, detail, { now: ctx.now, width: axis, logLimit, codes });
    return 0;
  },
};

/** What the detail is drawn with: the time, the axis, the log lines, and the error codes. */
interface DetailOptions {
  readonly now: number;
  readonly width: number;
  readonly logLimit: number;
  readonly codes: ErrorCodes;
}

function printDetail(out: Output, d: RunDetail, options: DetailOptions): void {
  const { now, width, logLimit, codes } = options;
  const { c } = out;
  const { run } = d;
  out.line(
    `${c.bold('Run')} ${run.id}  ${c.bold(run.workflow)}${c.dim(`@${run.version}`)}  ${paintStatus(run.status, c)}`,
  );
  const fields: [string, string][] = [['namespace', run.namespace]];
  if (run.tags.length > 0) fields.push(['tags', run.tags.map((t) => `#${t}`).join(' ')]);
  if (run.status === 'paused') fields.push(['paused', pausedText(run, d.waiting.length)]);
  fields.push(['created', `${formatTime(run.createdAt)}  ${c.dim(formatAge(run.createdAt, now))}`]);
  if (run.startedAt !== null && run.startedAt !== run.createdAt) {
    fields.push(['started', formatTime(run.startedAt)]);
  }
  if (run.endedAt !== null) {
    fields.push([
      'ended',
      `${formatTime(run.endedAt)}  ${c.dim(`took ${formatDuration(run.endedAt - (run.startedAt ?? run.createdAt))}`)}`,
    ]);
  } else {
    fields.push([
      'updated',
      `${formatTime(run.updatedAt)}  ${c.dim(formatAge(run.updatedAt, now))}`,
    ]);
  }
  if (run.parentRunId !== null) {
    fields.push([
      'parent',
      `${run.parentRunId} ${c.dim(`(task ${run.parentTaskId ?? '?'}, depth ${run.depth})`)}`,
    ]);
  }
  if (run.recoveries > 0) fields.push(['recoveries', String(run.recoveries)]);
  fields.push(['input', snippet(run.input, 100)]);
  if (run.output !== undefined) fields.push(['output', snippet(run.output, 100)]);
  if (run.error && run.status !== 'cancelled') {
    fields.push([
      'error',
      c.red(`${codes.reportedCode(run.error, 'RUN_FAILED')}: ${oneLine(run.error.message, 100)}`),
    ]);
  }
  out.fields(fields, '  ');

  out.line();
  out.line(c.bold('Timeline'));
  for (const line of timeline(run, d.tasks, { c, width, now, codes })) out.line(line);

  if (d.waiting.length > 0) printWaiting(out, run, d.waiting);
  printErrors(out, d.tasks, codes);
  if (d.children.length > 0) {
    out.line();
    out.line(c.bold('Children'));
    out.table(
      [
        { header: '  RUN' },
        { header: 'TASK' },
        { header: 'WORKFLOW' },
        { header: 'STATUS' },
        { header: 'TOOK', align: 'right' },
      ],
      d.children.map((child) => [
        `  ${child.id}`,
        child.parentTaskId ?? '-',
        `${child.workflow}${c.dim(`@${child.version}`)}`,
        paintStatus(child.status, c),
        formatDuration(child.startedAt === null ? null : (child.endedAt ?? now) - child.startedAt),
      ]),
    );
  }
  if (logLimit > 0 && d.logs.length > 0)
    printLogs(out, run, d.logs.slice(-logLimit), d.logs.length);
}

function pausedText(run: Run, waiting: number): string {
  if (run.pauseRequested)
    return `by an operator${run.pausedTaskId ? `, at ${run.pausedTaskId}` : ''}`;
  return `waiting for input on ${run.pausedTaskId ?? '?'}${waiting > 1 ? ` and ${waiting - 1} more` : ''}`;
}

function printWaiting(out: Output, run: Run, waiting: readonly Task[]): void {
  const { c } = out;
  out.line();
  out.line(c.bold('Waiting for input'));
  for (const task of waiting) {
    const description = typeof task.meta.description === 'string' ? task.meta.description : null;
    const deadline = task.timeoutAt ? `  ${c.dim(`deadline ${formatTime(task.timeoutAt)}`)}` : '';
    out.line(`  ${c.yellow(task.taskId)}${description ? `  ${description}` : ''}${deadline}`);
    const fields = schemaFields(task.schema);
    if (fields.length === 0) out.line(`    expects ${describeSchema(task.schema)}`);
    for (const f of fields) {
      out.line(
        `    ${f.name}${f.required ? '' : c.dim('?')}: ${f.type}${f.description ? c.dim(`  ${f.description}`) : ''}`,
      );
    }
    out.line(c.dim(`    answer: cairn resume ${run.id} --task ${task.taskId} --data '{…}'`));
  }
}

function printErrors(out: Output, tasks: readonly Task[], codes: ErrorCodes): void {
  const { c } = out;
  const lines: string[] = [];
  for (const task of tasks) {
    const label = (error: ErrorInfo): string =>
      errorLabel(error, taskErrorCode(codes, task.kind, error));
    task.attempts.forEach((a, i) => {
      if (!a.error) {
        if (a.endedAt === null && i < task.attempts.length - 1) {
          lines.push(
            `  ${task.taskId} ${c.dim(`attempt ${a.attempt}`)}  ${c.yellow('interrupted')}: its process stopped; recovery ran the step again`,
          );
        }
        return;
      }
      lines.push(
        `  ${task.taskId} ${c.dim(`attempt ${a.attempt}`)}  ${c.red(label(a.error))}: ${oneLine(a.error.message, 120)}`,
      );
    });
    if (task.error && !task.attempts.some((a) => a.error?.message === task.error?.message)) {
      lines.push(
        `  ${task.taskId}  ${c.red(label(task.error))}: ${oneLine(task.error.message, 120)}`,
      );
    }
  }
  if (lines.length === 0) return;
  out.line();
  out.line(c.bold('Errors and retries'));
  for (const line of lines) out.line(line);
}

function printLogs(out: Output, run: Run, logs: readonly LogLine[], total: number): void {
  const { c } = out;
  out.line();
  out.line(
    `${c.bold('Logs')}${total > logs.length ? c.dim(` (last ${logs.length} of ${total})`) : ''}`,
  );
  const origin = run.startedAt ?? run.createdAt;
  for (const log of logs) {
    const level =
      log.level === 'error'
        ? c.red(log.level)
        : log.level === 'warn'
          ? c.yellow(log.level)
          : c.dim(log.level);
    const at = c.dim(`+${formatDuration(log.at - origin)}`.padStart(10));
    const where = log.taskId ? c.dim(` [${log.taskId}]`) : '';
    out.line(
      `  ${at} ${level.padEnd(5)} ${oneLine(log.message, 160)}${where}${log.data === undefined ? '' : c.dim(` ${snippet(log.data, 80)}`)}`,
    );
  }
}
