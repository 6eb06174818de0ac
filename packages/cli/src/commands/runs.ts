import type { Run } from '@cairn/store';
import { intOption, parseCommand } from '../args.js';
import { COMMON_HELP, printHelp, type Command } from '../command.js';
import { formatAge, formatDuration, oneLine, paintStatus, plural } from '../format.js';
import type { Output } from '../output.js';
import { FILTER_HELP, FILTER_OPTIONS, runFilter } from '../filters.js';
import type { ErrorCodes } from '../stored-errors.js';
import { withStore } from '../store.js';

const OPTIONS = {
  ...FILTER_OPTIONS,
  limit: { type: 'string' },
  cursor: { type: 'string' },
} as const;

export const runs: Command = {
  name: 'runs',
  summary: 'list runs, newest first, by status, workflow, namespace, age or tag',
  help: `Usage: cairn runs [options]

Lists runs, newest first.

Options:
${FILTER_HELP}
  --limit <n>           at most this many runs (1-1000, default 50)
  --cursor <cursor>     the next page, as printed after the previous one

${COMMON_HELP}`,

  async run(ctx) {
    const { values } = parseCommand(ctx.argv, OPTIONS);
    const out = ctx.output(values.json === true);
    if (values.help === true) return printHelp(out, this.help);
    const limit = intOption(values.limit, 'limit', { max: 1000 }) ?? 50;
    const query = { ...runFilter(values, ctx.now), limit, cursor: values.cursor ?? null };
    const page = await withStore(out, { path: values.store, readOnly: true }, (store) =>
      store.listRuns(query),
    );
    out.result({
      items: page.items,
      cursor: page.cursor,
      corrupt: page.corrupt.map((c) => ({
        key: c.key,
        code: c.error.code,
        message: c.error.message,
      })),
    });
    if (out.json) return 0;
    printRuns(out, page.items, ctx.now, await import('@cairn/store'));
    for (const c of page.corrupt)
      out.note(out.c.red(`unreadable record ${c.key}: ${c.error.message}`));
    if (page.items.length === 0) out.line(out.c.dim('No runs.'));
    else out.line(out.c.dim(plural(page.items.length, 'run')));
    if (page.cursor !== null) out.line(out.c.dim(`More: cairn runs … --cursor ${page.cursor}`));
    return 0;
  },
};

export function printRuns(
  out: Output,
  items: readonly Run[],
  now: number,
  codes: ErrorCodes,
): void {
  if (items.length === 0) return;
  const { c } = out;
  out.table(
    [
      { header: 'RUN' },
      { header: 'WORKFLOW' },
      { header: 'NAMESPACE' },
      { header: 'STATUS' },
      { header: 'CREATED' },
      { header: 'TOOK', align: 'right' },
      { header: 'NOTE' },
    ],
    items.map((run) => [
      run.id,
      `${run.workflow}${c.dim(`@${run.version}`)}`,
      run.namespace,
      paintStatus(run.status, c),
      formatAge(run.createdAt, now),
      formatDuration(took(run, now)),
      note(run, out, codes),
    ]),
  );
}

function took(run: Run, now: number): number | null {
  if (run.startedAt === null) return null;
  return (run.endedAt ?? now) - run.startedAt;
}

function note(run: Run, out: Output, codes: ErrorCodes): string {
  const parts: string[] = [];
  if (run.status === 'paused') {
    parts.push(
      run.pauseRequested
        ? `paused by an operator${run.pausedTaskId ? ` at ${run.pausedTaskId}` : ''}`
        : `waiting on ${run.pausedTaskId ?? '?'}`,
    );
  }
  if (run.error && run.status !== 'cancelled') {
    const code = codes.reportedCode(run.error, 'RUN_FAILED');
    parts.push(out.c.red(`${code}: ${oneLine(run.error.message, 60)}`));
  }
  if (run.parentRunId !== null) parts.push(out.c.dim(`child of ${run.parentRunId}`));
  if (run.tags.length > 0) parts.push(out.c.dim(run.tags.map((t) => `#${t}`).join(' ')));
  return parts.join('  ');
}
