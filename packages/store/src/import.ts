import { z } from 'zod';
import { CairnError } from './errors.js';
import { checkOptionNames, optionNames } from './options.js';
import { EXPORT_FORMAT } from './export.js';
import { fromTagged } from './json-tags.js';
import { IdSchema, LogLineSchema, RunSchema, TaskSchema } from './records.js';
import type { LogLine, Run, Task } from './records.js';
import type { InboxEntry } from './store-types.js';

export interface ImportProgress {
  /** Runs written (or skipped) so far. */
  readonly runs: number;
  /** Runs in the import. */
  readonly total: number;
}

export interface ImportOptions {
  readonly onProgress?: (progress: ImportProgress) => void;
  /**
   * What to do with a run whose id the store has already: `'fail'` refuses the whole import
   * (`ALREADY_EXISTS`, nothing written), `'skip'` leaves the stored run as it is.
   * @default 'fail'
   */
  readonly conflict?: 'fail' | 'skip';
}

export interface ImportResult {
  readonly runs: number;
  readonly tasks: number;
  readonly logs: number;
  readonly inbox: number;
  /** Runs left out because the store had them already (`conflict: 'skip'`). */
  readonly skipped: number;
}

/** One run with everything it has, as an export line holds it. */
export interface RunBundle {
  readonly run: Run;
  readonly tasks: readonly Task[];
  readonly logs: readonly LogLine[];
  readonly inbox: readonly InboxEntry[];
}

/** A line of an import that cannot be imported (1-based line number). */
export interface ImportIssue {
  readonly line: number;
  readonly message: string;
}

export interface ImportHooks {
  existing(runIds: readonly string[]): Promise<Set<string>>;
  write(bundles: readonly RunBundle[]): Promise<void>;
  /** The store's own checks of a record (throws what `createRun`/`checkpoint` would). */
  check(bundle: RunBundle): void;
}

const HeaderSchema = z.object({ type: z.literal('cairn-export'), format: z.number() });
const InboxSchema = z.object({
  runId: IdSchema,
  taskId: IdSchema,
  data: z.unknown(),
  at: z.number(),
});
const RunLineSchema = z.object({
  type: z.literal('run'),
  run: RunSchema,
  tasks: z.array(TaskSchema),
  logs: z.array(LogLineSchema),
  inbox: z.array(InboxSchema),
});

/** Issues reported in `details.lines` at most (`details.count` has them all). */
const MAX_ISSUES = 100;
const WRITE_CHUNK = 64;

function zodMessage(error: z.ZodError): string {
  const issue = error.issues[0]!;
  const path = issue.path.map(String).join('.');
  return path === '' ? issue.message : `${path}: ${issue.message}`;
}

/** Checks one run line; returns its bundle or what is wrong with it. */
function readRunLine(value: unknown, hooks: ImportHooks): RunBundle | string {
  const parsed = RunLineSchema.safeParse(value);
  if (!parsed.success) return zodMessage(parsed.error);
  const { run, tasks, logs, inbox } = parsed.data;
  const bundle: RunBundle = { run, tasks, logs, inbox };
  try {
    hooks.check(bundle);
  } catch (error) {
    return (error as Error).message;
  }
  const unique = (what: string, ids: readonly (string | number)[]): string | null => {
    const seen = new Set<string | number>();
    for (const id of ids) {
      if (seen.has(id)) return `${what} ${JSON.stringify(id)} appears twice`;
      seen.add(id);
    }
    return null;
  };
  for (const [what, items] of [
    ['task', tasks],
    ['log line', logs],
    ['inbox entry', inbox],
  ] as const) {
    const other = items.find((item) => item.runId !== run.id);
    if (other) return `a ${what} belongs to run "${other.runId}", not "${run.id}"`;
  }
  return (
    unique(
      'task',
      tasks.map((t) => t.taskId),
    ) ??
    unique(
      'log seq',
      logs.map((l) => l.seq),
    ) ??
    unique(
      'inbox task',
      inbox.map((e) => e.taskId),
    ) ??
    bundle
  );
}

const IMPORT_OPTIONS = optionNames<ImportOptions>()({ onProgress: true, conflict: true });

/** Checks the arguments of `importRuns` (before the store is asked anything). */
export function checkImportArgs(lines: unknown, options: unknown): void {
  const iterable = lines as { [Symbol.asyncIterator]?: unknown; [Symbol.iterator]?: unknown };
  if (
    typeof lines !== 'object' ||
    lines === null ||
    (typeof iterable[Symbol.asyncIterator] !== 'function' &&
      typeof iterable[Symbol.iterator] !== 'function')
  ) {
    throw Object.assign(new TypeError('lines must be an iterable of strings'), {
      code: 'INVALID_ARGUMENT',
    });
  }
  if (typeof options !== 'object' || options === null) {
    throw Object.assign(new TypeError('options must be an object'), { code: 'INVALID_ARGUMENT' });
  }
  checkOptionNames('options', options, IMPORT_OPTIONS);
  const conflict = (options as ImportOptions).conflict ?? 'fail';
  if (conflict !== 'fail' && conflict !== 'skip') {
    throw new CairnError('INVALID_ARGUMENT', 'options.conflict must be "fail" or "skip"');
  }
  if (
    (options as ImportOptions).onProgress !== undefined &&
    typeof (options as ImportOptions).onProgress !== 'function'
  ) {
    throw Object.assign(new TypeError('options.onProgress must be a function'), {
      code: 'INVALID_ARGUMENT',
    });
  }
}

/**
 * Reads every line, checking each, before anything is written; then writes the runs (each in
 * one atomic batch). The whole import is held in memory while it is checked.
 */
export async function parseImport(
  lines: AsyncIterable<string> | Iterable<string>,
  options: ImportOptions,
  hooks: ImportHooks,
): Promise<ImportResult> {
  const conflict = options.conflict ?? 'fail';
  const issues: ImportIssue[] = [];
  let count = 0;
  const report = (line: number, message: string) => {
    count++;
    if (issues.length < MAX_ISSUES) issues.push({ line, message });
  };
  const bundles: { line: number; bundle: RunBundle }[] = [];
  const lineOf = new Map<string, number>();
  let n = 0;
  let header = false;
  for await (const raw of lines as AsyncIterable<unknown>) {
    n++;
    if (typeof raw !== 'string') {
      report(n, 'is not a string');
      continue;
    }
    const text = raw.replace(/\r?\n$/, '');
    if (text.trim() === '') continue;
    let value: unknown;
    try {
      value = fromTagged(JSON.parse(text));
    } catch (error) {
      report(n, `is not valid JSON: ${(error as Error).message}`);
      if (!header) header = true;
      continue;
    }
    if (!header) {
      header = true;
      const parsed = HeaderSchema.safeParse(value);
      if (!parsed.success) {
        report(n, 'the first line must be the header {"type":"cairn-export","format":1,...}');
      } else if (parsed.data.format !== EXPORT_FORMAT) {
        report(n, `export format ${parsed.data.format} is not supported (this Cairn reads 1)`);
      }
      if (parsed.success || (value as { type?: unknown } | null)?.type !== 'run') continue;
    }
    const bundle = readRunLine(value, hooks);
    if (typeof bundle === 'string') {
      report(n, bundle);
      continue;
    }
    const first = lineOf.get(bundle.run.id);
    if (first !== undefined) {
      report(n, `run "${bundle.run.id}" is also on line ${first}`);
      continue;
    }
    lineOf.set(bundle.run.id, n);
    bundles.push({ line: n, bundle });
  }
  if (!header) report(1, 'the import is empty: it has no header line');
  if (count > 0) {
    throw new CairnError(
      'INVALID_IMPORT',
      `The import has ${count} bad line${count === 1 ? '' : 's'} (first: line ${issues[0]!.line}, ${issues[0]!.message}); nothing was written`,
      { details: { lines: issues, count } },
    );
  }
  const existing = await hooks.existing(bundles.map((b) => b.bundle.run.id));
  if (existing.size > 0 && conflict === 'fail') {
    const clashes = bundles.filter((b) => existing.has(b.bundle.run.id));
    throw new CairnError(
      'ALREADY_EXISTS',
      `${clashes.length} run${clashes.length === 1 ? '' : 's'} of the import exist already (first: "${clashes[0]!.bundle.run.id}", line ${clashes[0]!.line}); nothing was written. Pass conflict: 'skip' to leave them as they are.`,
      {
        details: {
          runIds: clashes.slice(0, MAX_ISSUES).map((b) => b.bundle.run.id),
          lines: clashes
            .slice(0, MAX_ISSUES)
            .map((b) => ({ line: b.line, message: `run "${b.bundle.run.id}" exists already` })),
          count: clashes.length,
        },
      },
    );
  }
  const todo = bundles.map((b) => b.bundle).filter((b) => !existing.has(b.run.id));
  const result = { runs: 0, tasks: 0, logs: 0, inbox: 0, skipped: bundles.length - todo.length };
  for (let i = 0; i < todo.length; i += WRITE_CHUNK) {
    const chunk = todo.slice(i, i + WRITE_CHUNK);
    await hooks.write(chunk);
    for (const b of chunk) {
      result.runs++;
      result.tasks += b.tasks.length;
      result.logs += b.logs.length;
      result.inbox += b.inbox.length;
    }
    options.onProgress?.({ runs: result.runs, total: todo.length });
  }
  return result;
}
