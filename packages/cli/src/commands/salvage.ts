import type { SalvageReport } from '@cairn/store';
import { parseCommand } from '../args.js';
import { COMMON_HELP, printHelp, type Command } from '../command.js';
import { formatTime, plural } from '../format.js';
import type { Output } from '../output.js';
import { withStore } from '../store.js';

export const salvage: Command = {
  name: 'salvage',
  summary: 'open a store whose log is damaged (exit 5), keeping all that can be kept',
  help: `Usage: cairn salvage [options]

Opens a store whose log (CAIRN-WAL) is damaged, which every other command refuses (exit 5,
LOG_DAMAGED). LevelDB keeps what it holds, never rolled back; the records of the log that
follow it without a gap are applied; the damaged log is kept beside the store as
CAIRN-WAL.damaged-<time>. The runs that may have lost their last checkpoints are listed and
marked: cairn doctor <runId> and engine.diagnose() say so. The next engine recovers them from
their last checkpoint (steps after it run again). On a store whose log is not damaged it
changes nothing and lists the salvages the store has had.

${COMMON_HELP}`,

  async run(ctx) {
    const { values } = parseCommand(ctx.argv, {});
    const out = ctx.output(values.json === true);
    if (values.help === true) return printHelp(out, this.help);
    const { report, history } = await withStore(
      out,
      { path: values.store, salvage: true },
      async (store) => ({ report: store.salvage, history: await store.salvages() }),
    );
    out.result({ salvaged: report, salvages: history });
    if (out.json) return 0;
    if (report === null) {
      out.line('The log is not damaged: nothing to salvage.');
      if (history.length > 0) out.line(out.c.dim(`Salvages before: ${history.length}`));
      for (const s of history) print(out, s);
      return 0;
    }
    print(out, report);
    return 0;
  },
};

function print(out: Output, s: SalvageReport): void {
  const { c } = out;
  out.line(
    `${c.bold('Salvaged')} ${formatTime(s.at)}: the log was damaged (${s.reason}) at offset ${s.offset}`,
  );
  out.fields(
    [
      ['damaged log kept as', s.file],
      ['records applied', String(s.applied)],
      ['records dropped', String(s.dropped)],
      ['runs that may have lost checkpoints', plural(s.runs.length, 'run')],
    ],
    '  ',
  );
  for (const runId of s.runs) out.line(`  ${runId}`);
}
