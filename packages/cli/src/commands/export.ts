import type { ExportResult } from '@cairn/store';
import { parseCommand, usageError } from '../args.js';
import { COMMON_HELP, printHelp, type Command } from '../command.js';
import { lineSink, type LineSink } from '../files.js';
import { FILTER_HELP, FILTER_OPTIONS, runFilter } from '../filters.js';
import { plural } from '../format.js';
import { progress } from '../progress.js';
import { withStore } from '../store.js';

const OPTIONS = {
  ...FILTER_OPTIONS,
  out: { type: 'string', short: 'o' },
  'steps-csv': { type: 'string' },
} as const;

export const exportCommand: Command = {
  name: 'export',
  summary: 'write runs as NDJSON (a backup cairn import reads) and/or steps as CSV',
  help: `Usage: cairn export [--out <file>] [--steps-csv <file>] [filters]

Writes the runs the filters select, newest first, as NDJSON: a header line, then one
line per run with its tasks, logs and kept input. \`cairn import\` reads it back. With
--steps-csv, also (or only) writes one CSV row per task: run, workflow, namespace, task,
kind, status, attempt, times, duration, model and tokens.

Options:
  -o, --out <file>      the NDJSON file (default: stdout, unless only --steps-csv is given)
  --steps-csv <file>    the CSV file of steps
${FILTER_HELP}

Files are written under <file>.partial and renamed when complete. When the NDJSON goes
to stdout, the summary goes to stderr.

${COMMON_HELP}`,

  async run(ctx) {
    const { values } = parseCommand(ctx.argv, OPTIONS);
    const out = ctx.output(values.json === true);
    if (values.help === true) return printHelp(out, this.help);
    const filter = runFilter(values, ctx.now);
    if (values.out === '-' && values['steps-csv'] === '-') {
      throw usageError('--out and --steps-csv cannot both be stdout');
    }
    const ndjsonPath = values.out ?? (values['steps-csv'] === undefined ? '-' : undefined);
    const toStdout = ndjsonPath === '-' || values['steps-csv'] === '-';
    const summary: {
      ndjson?: ExportResult & { out: string };
      stepsCsv?: ExportResult & { out: string };
    } = {};
    const sinks: LineSink[] = [];
    await withStore(out, { path: values.store, readOnly: true }, async (store) => {
      try {
        if (ndjsonPath !== undefined) {
          const sink = lineSink(ndjsonPath, ctx.stdout);
          sinks.push(sink);
          const bar = progress(out.stderr, 'Exporting');
          const result = await store
            .exportRuns((line) => sink.write(line), {
              filter,
              onProgress: (p) =>
                bar.text(`Exporting: ${plural(p.runs, 'run')}, ${plural(p.tasks, 'task')}`),
            })
            .finally(() => bar.done());
          await sink.close();
          summary.ndjson = { ...result, out: ndjsonPath };
        }
        const csvPath = values['steps-csv'];
        if (csvPath !== undefined) {
          const sink = lineSink(csvPath, ctx.stdout);
          sinks.push(sink);
          const result = await store.exportSteps((line) => sink.write(line), filter);
          await sink.close();
          summary.stepsCsv = { ...result, out: csvPath };
        }
      } catch (error) {
        for (const sink of sinks) sink.abort();
        throw error;
      }
    });
    // The summary never mixes with exported data on stdout.
    const write = (text: string) => (toStdout ? out.note(text) : out.line(text));
    if (out.json) {
      if (toStdout) out.note(JSON.stringify(summary));
      else out.result(summary);
      return 0;
    }
    const { c } = out;
    if (summary.ndjson) {
      const r = summary.ndjson;
      write(
        `Exported ${plural(r.runs, 'run')} (${plural(r.tasks, 'task')}, ${plural(r.logs, 'log line')}, ${plural(r.inbox, 'inbox entry', 'inbox entries')})${r.out === '-' ? '' : ` to ${r.out}`}`,
      );
      if (r.corrupt.length > 0) write(c.red(`  left out, unreadable: ${r.corrupt.join(', ')}`));
    }
    if (summary.stepsCsv) {
      const r = summary.stepsCsv;
      write(
        `Exported ${plural(r.tasks, 'step')} of ${plural(r.runs, 'run')} as CSV${r.out === '-' ? '' : ` to ${r.out}`}`,
      );
    }
    return 0;
  },
};
