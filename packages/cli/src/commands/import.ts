import { existsSync, rmSync } from 'node:fs';
import type { CairnError, ImportIssue } from '@cairn/store';
import { parseCommand } from '../args.js';
import { COMMON_HELP, printHelp, type Command } from '../command.js';
import { CliError, EXIT } from '../errors.js';
import { readLines } from '../files.js';
import { plural } from '../format.js';
import { progress } from '../progress.js';
import { withStore } from '../store.js';

const OPTIONS = {
  'skip-existing': { type: 'boolean' },
} as const;

const SHOWN_ISSUES = 10;

export const importCommand: Command = {
  name: 'import',
  summary: 'read runs from an export (NDJSON) into the store, all checked before any is written',
  help: `Usage: cairn import <file> [options]

Reads an export written by \`cairn export\` (\`-\` reads stdin) and writes its runs, each
with its tasks, logs and kept input in one atomic batch. Every line is checked first:
if any line is bad, nothing is written and the bad lines are listed (exit 1). A run
whose id the store has already refuses the import, unless --skip-existing. The store
directory is created if it does not exist.

Options:
  --skip-existing   leave runs the store has already as they are, and import the rest

${COMMON_HELP}`,

  async run(ctx) {
    const { values, positionals } = parseCommand(ctx.argv, OPTIONS, [1, 1, 'file to import']);
    const out = ctx.output(values.json === true);
    if (values.help === true) return printHelp(out, this.help);
    const file = positionals[0] ?? '-';
    if (file !== '-' && !existsSync(file)) {
      throw new CliError(EXIT.notFound, `no file ${file}`, 'NOT_FOUND', { file });
    }
    const { resolveStorePath } = await import('@cairn/store');
    const location = resolveStorePath(values.store);
    const created = !existsSync(location);
    const bar = progress(out.stderr, 'Importing');
    const result = await withStore(out, { path: location, mustExist: false }, (store) =>
      store
        .importRuns(readLines(file), {
          conflict: values['skip-existing'] === true ? 'skip' : 'fail',
          onProgress: (p) => bar.bar(p.runs, p.total),
        })
        .finally(() => bar.done()),
    ).catch((error: unknown) => {
      // A refused import into a new directory leaves no empty store behind.
      if (created) rmSync(location, { recursive: true, force: true });
      throw explain(error);
    });
    out.result(result);
    if (out.json) return 0;
    out.line(
      `Imported ${plural(result.runs, 'run')} (${plural(result.tasks, 'task')}, ${plural(result.logs, 'log line')}, ${plural(result.inbox, 'inbox entry', 'inbox entries')})` +
        (result.skipped > 0
          ? `; skipped ${plural(result.skipped, 'run')} the store had already`
          : ''),
    );
    return 0;
  },
};

/** The bad lines of a refused import, or the runs that exist already, under the message. */
function explain(error: unknown): unknown {
  const { code, details = {} } = error as Partial<CairnError>;
  if (typeof code !== 'string') return error;
  const lines = Array.isArray(details.lines) ? (details.lines as ImportIssue[]) : [];
  const count = typeof details.count === 'number' ? details.count : lines.length;
  const shown = lines.slice(0, SHOWN_ISSUES).map((i) => `  line ${i.line}: ${i.message}`);
  if (count > shown.length) shown.push(`  … and ${count - shown.length} more`);
  if (code === 'ALREADY_EXISTS') {
    return new CliError(
      EXIT.failed,
      `${plural(count, 'run')} of the import ${count === 1 ? 'is' : 'are'} in the store already; nothing was imported`,
      code,
      details,
      [...shown, 'Use --skip-existing to import the other runs and leave those as they are.'],
    );
  }
  if (code === 'INVALID_IMPORT') {
    return new CliError(
      EXIT.failed,
      `${plural(count, 'bad line')} in the import; nothing was imported`,
      code,
      details,
      shown,
    );
  }
  return error;
}
