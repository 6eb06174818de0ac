import { listWaitingTasks } from '@cairn/core';
import { intOption, parseCommand } from '../args.js';
import { COMMON_HELP, printHelp, type Command } from '../command.js';
import { formatAge, oneLine, plural } from '../format.js';
import { describeSchema } from '../schema.js';
import { withStore } from '../store.js';

const OPTIONS = {
  namespace: { type: 'string' },
  workflow: { type: 'string' },
  limit: { type: 'string' },
  cursor: { type: 'string' },
} as const;

export const waiting: Command = {
  name: 'waiting',
  summary: 'list the tasks waiting for input (the approvals inbox), oldest run first',
  help: `Usage: cairn waiting [options]

Lists the tasks waiting for input across runs, with the fields each one expects.
Answer one with: cairn resume <runId> --task <taskId> --data '{...}'

Options:
  --namespace <name>   tasks of runs in this namespace
  --workflow <name>    tasks of runs of this workflow
  --limit <n>          at most this many tasks (default 100)
  --cursor <cursor>    the next page, as printed after the previous one

${COMMON_HELP}`,

  async run(ctx) {
    const { values } = parseCommand(ctx.argv, OPTIONS);
    const out = ctx.output(values.json === true);
    if (values.help === true) return printHelp(out, this.help);
    const limit = intOption(values.limit, 'limit', { max: 100_000 }) ?? 100;
    const query = {
      namespace: values.namespace,
      workflow: values.workflow,
      limit,
      cursor: values.cursor ?? null,
    };
    const page = await withStore(out, { path: values.store, readOnly: true }, (store) =>
      listWaitingTasks(store, query),
    );
    const { items, cursor } = page;
    const corrupt = page.corrupt.map((c) => ({ key: c.key, message: c.error.message }));
    out.result({ items, cursor, corrupt });
    if (out.json) return 0;
    for (const c of corrupt) out.note(out.c.red(`unreadable record ${c.key}: ${c.message}`));
    if (items.length === 0) {
      out.line(out.c.dim('Nothing is waiting for input.'));
      if (cursor !== null) out.line(out.c.dim(`More: cairn waiting … --cursor ${cursor}`));
      return 0;
    }
    const { c } = out;
    out.table(
      [
        { header: 'RUN' },
        { header: 'TASK' },
        { header: 'WORKFLOW' },
        { header: 'WAITING' },
        { header: 'DEADLINE' },
        { header: 'EXPECTS' },
      ],
      items.map((item) => [
        item.runId,
        c.yellow(item.taskId),
        `${item.workflow}${c.dim(`@${item.version}`)}`,
        formatAge(item.waitingSince, ctx.now).replace(' ago', ''),
        item.timeoutAt === null ? '-' : formatAge(item.timeoutAt, ctx.now),
        `{ ${describeSchema(item.schema)} }` +
          (item.refusedInput ? c.red('  refused early input (cairn doctor)') : '') +
          (item.description ? c.dim(`  ${oneLine(item.description, 70)}`) : ''),
      ]),
    );
    out.line(c.dim(plural(items.length, 'task') + ' waiting'));
    if (cursor !== null) out.line(c.dim(`More: cairn waiting … --cursor ${cursor}`));
    return 0;
  },
};
