import { parseCommand } from '../args.js';
import { COMMON_HELP, printHelp, type Command } from '../command.js';
import { paintStatus } from '../format.js';
import { withStore } from '../store.js';

export const pause: Command = {
  name: 'pause',
  summary: 'pause a run: it stays paused, across engine restarts, until it is resumed',
  help: `Usage: cairn pause <runId>

Pauses a run in the store (an operator pause), without an engine. The next engine that
opens the store leaves it paused until \`cairn resume <runId>\` (or engine.resume()).

${COMMON_HELP}`,

  async run(ctx) {
    const { values, positionals } = parseCommand(ctx.argv, {}, [1, 1, 'run id']);
    const out = ctx.output(values.json === true);
    if (values.help === true) return printHelp(out, this.help);
    const runId = positionals[0] ?? '';
    const run = await withStore(out, { path: values.store }, async (store) => {
      const { offlinePause } = await import('@cairn/core');
      return offlinePause(store, runId);
    });
    out.result({ run });
    if (out.json) return 0;
    const { c } = out;
    out.line(
      `Paused run ${runId}${run.pausedTaskId ? ` at ${c.bold(run.pausedTaskId)}` : ''}: it is ${paintStatus(run.status, c)}.`,
    );
    out.line(c.dim(`It stays paused, across engine restarts, until: cairn resume ${runId}`));
    return 0;
  },
};
