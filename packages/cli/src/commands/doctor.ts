import type { Diagnosis } from '@cairn/store';
import { intOption, parseCommand, usageError } from '../args.js';
import { COMMON_HELP, printHelp, type Command } from '../command.js';
import { formatAge, formatTime, paintStatus, snippet } from '../format.js';
import type { Output } from '../output.js';
import { issueLines } from '../resume-data.js';
import { describeSchema } from '../schema.js';
import { withStore } from '../store.js';

const OPTIONS = {
  versions: { type: 'string' },
  'max-recoveries': { type: 'string' },
} as const;

export const doctor: Command = {
  name: 'doctor',
  summary: 'why a run is where it is: what it waits for, what was in flight, what stops it',
  help: `Usage: cairn doctor <runId> [options]

Diagnoses a run from the store alone: what it waits for (input, a timer, a child run),
steps that were in flight when its process stopped, an operator pause, input kept for
waits it has not reached, input sent early that a wait's schema refused, recoveries, and
whether the engine has its version.

Options:
  --versions <list>        versions of the run's workflow your engine registers
                           (comma-separated), to check the run's version against them
  --max-recoveries <n>     the engine's maxRecoveries, to say how close the run is to it

${COMMON_HELP}`,

  async run(ctx) {
    const { values, positionals } = parseCommand(ctx.argv, OPTIONS, [1, 1, 'run id']);
    const out = ctx.output(values.json === true);
    if (values.help === true) return printHelp(out, this.help);
    const versions = values.versions?.split(',').map((v) => v.trim());
    if (versions?.some((v) => v === ''))
      throw usageError('--versions must be a comma-separated list');
    const maxRecoveries = intOption(values['max-recoveries'], 'max-recoveries', { min: 0 });
    const runId = positionals[0] ?? '';
    const diagnosis = await withStore(
      out,
      { path: values.store, readOnly: true },
      async (store) => {
        const { diagnose } = await import('@cairn/store');
        return diagnose(store, runId, {
          now: ctx.now,
          ...(versions === undefined ? {} : { registeredVersions: versions }),
          ...(maxRecoveries === undefined ? {} : { maxRecoveries }),
        });
      },
    );
    out.result(diagnosis);
    if (!out.json) print(out, diagnosis, ctx.now);
    return 0;
  },
};

function print(out: Output, d: Diagnosis, now: number): void {
  const { c } = out;
  const { run } = d;
  out.line(
    `${c.bold('Run')} ${run.id}  ${c.bold(run.workflow)}${c.dim(`@${run.version}`)}  ${paintStatus(d.status, c)}`,
  );
  out.fields(
    [
      [
        'last checkpoint',
        `${formatTime(d.lastCheckpointAt)}  ${c.dim(formatAge(d.lastCheckpointAt, now))}`,
      ],
      [
        'recoveries',
        d.maxRecoveries === undefined
          ? String(d.recoveries)
          : `${d.recoveries} of ${d.maxRecoveries}`,
      ],
      [
        'version',
        d.versionRegistered === null
          ? `${run.version} ${c.dim('(pass --versions to check it against your engine)')}`
          : d.versionRegistered
            ? `${run.version} ${c.green('registered')}`
            : `${run.version} ${c.red('not registered')}`,
      ],
    ],
    '  ',
  );
  out.line();
  out.line(c.bold('Findings'));
  if (d.findings.length === 0) out.line(c.dim('  nothing to report'));
  for (const finding of d.findings) out.line(`  • ${finding}`);
  if (d.waiting.length > 0) {
    out.line();
    out.line(c.bold('Waiting for input'));
    for (const w of d.waiting) {
      out.line(
        `  ${c.yellow(w.taskId)}  expects { ${describeSchema(w.schema)} }${w.description ? c.dim(`  ${w.description}`) : ''}`,
      );
      const refused = w.refusedInput;
      if (refused) {
        const data = 'data' in refused ? snippet(refused.data, 80) : c.dim('(too large to keep)');
        out.line(`    ${c.red('refused early input')} ${data}  ${c.dim(formatTime(refused.at))}`);
        for (const line of issueLines({ issues: refused.issues })) out.line(`  ${line}`);
      }
    }
  }
  if (d.timers.length > 0) {
    out.line();
    out.line(c.bold('Timers'));
    for (const t of d.timers) {
      const due = t.at <= now ? c.yellow('due') : c.dim(formatAge(t.at, now));
      out.line(
        `  ${t.taskId} ${c.dim(t.kind === 'wait' ? '(wait timeout)' : '(sleep)')}  ${formatTime(t.at)}  ${due}`,
      );
    }
  }
  if (d.running.length > 0) {
    out.line();
    out.line(c.bold('In flight'));
    for (const r of d.running) {
      const child = r.childRunId
        ? `  child ${r.childRunId} ${r.childStatus ? paintStatus(r.childStatus, c) : c.red('missing')}`
        : '';
      out.line(
        `  ${r.taskId} ${c.dim(`(${r.kind}, attempt ${r.attempt}, started ${formatAge(r.startedAt, now)})`)}${child}`,
      );
    }
  }
}
