import { parseCommand } from '../args.js';
import { COMMON_HELP, printHelp, type Command } from '../command.js';
import { paintStatus } from '../format.js';
import { withStore } from '../store.js';

export const cancel: Command = {
  name: 'cancel',
  summary: 'cancel a run (and its children): it ends cancelled and never continues',
  help: `Usage: cairn cancel <runId>

Cancels a run in the store, without an engine: its waiting, sleeping and unfinished
tasks end cancelled, its child runs are cancelled, and the run ends cancelled. A run
that completed or failed cannot be cancelled (exit 1).

${COMMON_HELP}`,

  async run(ctx) {
    const { values, positionals } = parseCommand(ctx.argv, {}, [1, 1, 'run id']);
    const out = ctx.output(values.json === true);
    if (values.help === true) return printHelp(out, this.help);
    const runId = positionals[0] ?? '';
    const run = await withStore(out, { path: values.store }, async (store) => {
      const { offlineCancel } = await import('@cairn/core');
      return offlineCancel(store, runId);
    });
    out.result({ run });
    if (out.json) return 0;
    out.line(`Cancelled run ${runId}: it is ${paintStatus(run.status, out.c)}.`);
    return 0;
  },
};
