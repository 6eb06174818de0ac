import type { UsageRow } from '@cairn/store';
import { choiceOption, parseCommand, timeOption } from '../args.js';
import { COMMON_HELP, printHelp, type Command } from '../command.js';
import { USAGE_GROUPS } from '../constants.js';
import { formatInt } from '../format.js';
import { withStore } from '../store.js';

const OPTIONS = {
  by: { type: 'string' },
  since: { type: 'string' },
  until: { type: 'string' },
  namespace: { type: 'string' },
  workflow: { type: 'string' },
} as const;

const SHARE_WIDTH = 20;

export const stats: Command = {
  name: 'stats',
  summary: 'token usage and step counts by model, workflow, namespace or day',
  help: `Usage: cairn stats [options]

Totals of completed steps and the tokens their model calls used (from the step
metadata promptTokens, completionTokens, totalTokens and model), kept by the store as
steps complete. Days are UTC days.

Options:
  --by <what>          model | workflow | namespace | day (default: model)
  --since <when>       from this day on: a duration back from now (7d) or a date
  --until <when>       up to this day (inclusive): a duration back from now or a date
  --namespace <name>   steps of runs in this namespace
  --workflow <name>    steps of runs of this workflow

${COMMON_HELP}`,

  async run(ctx) {
    const { values } = parseCommand(ctx.argv, OPTIONS);
    const out = ctx.output(values.json === true);
    if (values.help === true) return printHelp(out, this.help);
    const by = choiceOption(values.by, 'by', USAGE_GROUPS) ?? 'model';
    const since = timeOption(values.since, 'since', ctx.now);
    const until = timeOption(values.until, 'until', ctx.now);
    const query = {
      by,
      ...(since === undefined ? {} : { since: utcDay(since) }),
      ...(until === undefined ? {} : { until: utcDay(until) }),
      ...(values.namespace === undefined ? {} : { namespace: values.namespace }),
      ...(values.workflow === undefined ? {} : { workflow: values.workflow }),
    };
    const rows = await withStore(out, { path: values.store, readOnly: true }, (store) =>
      store.usage(query),
    );
    const total = totals(rows);
    out.result({ ...query, rows, total });
    if (out.json) return 0;
    if (rows.length === 0) {
      out.line(out.c.dim('No completed steps in this range.'));
      return 0;
    }
    const { c } = out;
    const measure = total.totalTokens > 0 ? 'totalTokens' : 'steps';
    const share = (row: UsageRow) => {
      const ratio = total[measure] === 0 ? 0 : row[measure] / total[measure];
      const full = Math.round(ratio * SHARE_WIDTH);
      return `${c.cyan('█'.repeat(full))}${c.dim('·'.repeat(SHARE_WIDTH - full))} ${`${Math.round(ratio * 100)}%`.padStart(4)}`;
    };
    const range = [
      query.since ? `from ${query.since}` : '',
      query.until ? `to ${query.until}` : '',
    ].filter(Boolean);
    out.line(
      c.bold(`Usage by ${by}`) + c.dim(range.length > 0 ? ` (${range.join(' ')}, UTC days)` : ''),
    );
    out.table(
      [
        { header: by.toUpperCase() },
        { header: 'STEPS', align: 'right' },
        { header: 'PROMPT', align: 'right' },
        { header: 'COMPLETION', align: 'right' },
        { header: 'TOTAL TOKENS', align: 'right' },
        { header: `SHARE OF ${measure === 'steps' ? 'STEPS' : 'TOKENS'}` },
      ],
      [
        ...rows.map((row) => [
          by === 'model' && row.key === '-' ? c.dim('(no model)') : row.key,
          formatInt(row.steps),
          formatInt(row.promptTokens),
          formatInt(row.completionTokens),
          formatInt(row.totalTokens),
          share(row),
        ]),
        [
          c.bold('total'),
          c.bold(formatInt(total.steps)),
          c.bold(formatInt(total.promptTokens)),
          c.bold(formatInt(total.completionTokens)),
          c.bold(formatInt(total.totalTokens)),
          '',
        ],
      ],
    );
    return 0;
  },
};

function totals(rows: readonly UsageRow[]) {
  const sum = { steps: 0, promptTokens: 0, completionTokens: 0, totalTokens: 0 };
  for (const row of rows) {
    sum.steps += row.steps;
    sum.promptTokens += row.promptTokens;
    sum.completionTokens += row.completionTokens;
    sum.totalTokens += row.totalTokens;
  }
  return sum;
}

/** The UTC day of a time, as the store keys usage: `2025-01-31`. */
function utcDay(at: number): string {
  return new Date(at).toISOString().slice(0, 10);
}
