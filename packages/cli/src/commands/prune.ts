import type { PrunableStatus, PruneResult } from '@cairn/store';
import { durationOption, intOption, parseCommand, usageError } from '../args.js';
import { COMMON_HELP, printHelp, type Command } from '../command.js';
import { PRUNABLE_STATUSES } from '../constants.js';
import { formatInt, formatTime, plural } from '../format.js';
import { progress } from '../progress.js';
import { withStore } from '../store.js';

const OPTIONS = {
  'older-than': { type: 'string' },
  keep: { type: 'string' },
  status: { type: 'string' },
  'dry-run': { type: 'boolean' },
} as const;

export const prune: Command = {
  name: 'prune',
  summary: 'delete finished runs older than a duration (with their tasks, logs and indexes)',
  help: `Usage: cairn prune --older-than <duration> [options]

Deletes runs that ended (completed, failed or cancelled) longer ago than the duration,
each with its tasks, logs, inbox and index entries in one atomic batch, then compacts
the space freed. Runs that are running, paused or queued are never deleted. Usage
totals (cairn stats) are kept.

Options:
  --older-than <duration>   required: e.g. 30d, 12h, 2w
  --keep <n>                keep the newest n finished runs whatever their age
  --status <list>           only these statuses (comma-separated: ${PRUNABLE_STATUSES.join(',')})
  --dry-run                 count what would be deleted; delete nothing

${COMMON_HELP}`,

  async run(ctx) {
    const { values } = parseCommand(ctx.argv, OPTIONS);
    const out = ctx.output(values.json === true);
    if (values.help === true) return printHelp(out, this.help);
    const age = durationOption(values['older-than'], 'older-than');
    if (age === undefined) throw usageError('--older-than is required (e.g. --older-than 30d)');
    const keep = intOption(values.keep, 'keep', { min: 0 });
    const statuses = values.status?.split(',').map((s) => s.trim());
    for (const s of statuses ?? []) {
      if (!(PRUNABLE_STATUSES as readonly string[]).includes(s)) {
        throw usageError(`--status must list some of ${PRUNABLE_STATUSES.join(', ')}; got "${s}"`);
      }
    }
    const dryRun = values['dry-run'] === true;
    const olderThan = ctx.now - age;
    const bar = progress(out.stderr, dryRun ? 'Counting' : 'Pruning');
    const result: PruneResult = await withStore(out, { path: values.store }, (store) =>
      store
        .prune({
          olderThan,
          dryRun,
          ...(keep === undefined ? {} : { keep }),
          ...(statuses === undefined ? {} : { statuses: statuses as PrunableStatus[] }),
          onProgress: (p) =>
            bar.text(
              p.phase === 'compact'
                ? `Compacting the space freed by ${plural(p.runs, 'run')}…`
                : `${dryRun ? 'Counting' : 'Pruning'} ${p.phase} runs: ${formatInt(p.scanned)} looked at, ${formatInt(p.runs)} ${dryRun ? 'to delete' : 'deleted'}`,
            ),
        })
        .finally(() => bar.done()),
    );
    out.result({ olderThan, ...result });
    if (out.json) return 0;
    const { c } = out;
    const what = `${plural(result.runs, 'run')} that ended before ${formatTime(olderThan)}`;
    out.line(dryRun ? `${c.bold('Would delete')} ${what}` : `${c.bold('Deleted')} ${what}`);
    out.line(
      c.dim(
        `  ${plural(result.tasks, 'task')}, ${plural(result.logs, 'log line')}, ${plural(result.inbox, 'inbox entry', 'inbox entries')}, ${plural(result.entries, 'index entry', 'index entries')}`,
      ),
    );
    if (result.kept > 0)
      out.line(`  kept ${plural(result.kept, 'older run')} (--keep ${keep ?? 0})`);
    if (result.corrupt.length > 0) {
      out.line(
        c.red(
          `  ${plural(result.corrupt.length, 'unreadable record')} left alone: ${result.corrupt.join(', ')}`,
        ),
      );
    }
    if (!dryRun) {
      out.line(
        c.dim(
          result.compacted
            ? '  space compacted'
            : `  not compacted: ${result.compactionSkipped ?? ''}`,
        ),
      );
    } else if (result.runs > 0) {
      out.line(c.dim('  (dry run: nothing was deleted)'));
    }
    return 0;
  },
};
