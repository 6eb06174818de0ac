import { CairnError, reportedCode, taskFailureCode } from './errors.js';
import { checkOptionNames, optionNames } from './options.js';
import { toTagged } from './json-tags.js';
import type { Run, Task } from './records.js';
import { usageOfStep } from './usage.js';
import { MAX_LIMIT, type Store } from './store.js';
import type { RunFilter } from './store-types.js';

/** Receives one line at a time, without its line break; may return a promise (backpressure). */
export type LineWriter = (line: string) => void | Promise<void>;

/** The format of export files this code writes and reads. */
export const EXPORT_FORMAT = 1;

export interface ExportProgress {
  readonly runs: number;
  readonly tasks: number;
}

export interface ExportOptions {
  /** Which runs to export (as `listRuns` filters them). @default every run */
  readonly filter?: RunFilter;
  readonly onProgress?: (progress: ExportProgress) => void;
}

export interface ExportResult {
  runs: number;
  tasks: number;
  logs: number;
  inbox: number;
  /** Keys of records that could not be read; their runs are not in the export. */
  readonly corrupt: string[];
}

export const STEP_COLUMNS = [
  'runId',
  'workflow',
  'namespace',
  'taskId',
  'kind',
  'status',
  'attempt',
  'startedAt',
  'endedAt',
  'durationMs',
  'model',
  'promptTokens',
  'completionTokens',
  'totalTokens',
  'error',
] as const;

/** Every run `filter` selects, newest first, a page at a time. */
async function* runsOf(store: Store, filter: RunFilter, corrupt: string[]): AsyncGenerator<Run> {
  let cursor: string | null = null;
  do {
    const page = await store.listRuns({ ...filter, limit: MAX_LIMIT, cursor });
    corrupt.push(...page.corrupt.map((c) => c.key));
    yield* page.items;
    cursor = page.cursor;
  } while (cursor !== null);
}

/** Runs `read`; a damaged record is noted in `corrupt` (its run is left out), not thrown. */
async function readable<T>(read: () => Promise<T>, corrupt: string[]): Promise<T | undefined> {
  try {
    return await read();
  } catch (error) {
    if (error instanceof CairnError && error.code === 'CORRUPT_RECORD') {
      const key = error.details?.key;
      corrupt.push(typeof key === 'string' ? key : error.message);
      return undefined;
    }
    throw error;
  }
}

const EXPORT_OPTIONS = optionNames<ExportOptions>()({ filter: true, onProgress: true });

/** Checks `exportRuns` options; returns the filter. */
export function checkExportOptions(
  options: unknown,
  checkFilter: (filter: unknown, name: string) => RunFilter,
): RunFilter {
  if (typeof options !== 'object' || options === null) {
    throw Object.assign(new TypeError('options must be an object'), { code: 'INVALID_ARGUMENT' });
  }
  checkOptionNames('options', options, EXPORT_OPTIONS);
  const o = options as ExportOptions;
  if (o.onProgress !== undefined && typeof o.onProgress !== 'function') {
    throw Object.assign(new TypeError('options.onProgress must be a function'), {
      code: 'INVALID_ARGUMENT',
    });
  }
  return checkFilter(o.filter ?? {}, 'options.filter');
}

export async function exportRuns(
  store: Store,
  write: LineWriter,
  filter: RunFilter,
  onProgress: ExportOptions['onProgress'],
): Promise<ExportResult> {
  const result: ExportResult = { runs: 0, tasks: 0, logs: 0, inbox: 0, corrupt: [] };
  await write(
    JSON.stringify({
      type: 'cairn-export',
      format: EXPORT_FORMAT,
      schemaVersion: store.schemaVersion,
      filter,
    }),
  );
  for await (const run of runsOf(store, filter, result.corrupt)) {
    const parts = await readable(
      () => Promise.all([store.listTasks(run.id), store.readLogs(run.id), store.listInbox(run.id)]),
      result.corrupt,
    );
    if (parts === undefined) continue;
    const [tasks, logs, inbox] = parts;
    await write(JSON.stringify(toTagged({ type: 'run', run, tasks, logs, inbox })));
    result.runs++;
    result.tasks += tasks.length;
    result.logs += logs.length;
    result.inbox += inbox.length;
    onProgress?.({ runs: result.runs, tasks: result.tasks });
  }
  return result;
}

/** A CSV field: quoted when it holds a comma, a quote, a line break or edge spaces. */
export function csvField(value: string | number | null | undefined): string {
  if (value === null || value === undefined) return '';
  const text = String(value);
  return /[",\r\n]|^\s|\s$/.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
}

const iso = (ms: number | null): string => (ms === null ? '' : new Date(ms).toISOString());
const num = (value: unknown): number | null =>
  typeof value === 'number' && Number.isFinite(value) ? value : null;

/** The step's total tokens as usage counts them, when it recorded any token count. */
function totalTokens(run: Run, task: Task): number | null {
  const { meta } = task;
  const none =
    num(meta.totalTokens) === null &&
    num(meta.promptTokens) === null &&
    num(meta.completionTokens) === null;
  return none ? null : usageOfStep(run, task).totalTokens;
}

function stepRow(run: Run, task: Task): string {
  const error = task.error
    ? `${reportedCode(task.error, taskFailureCode(task.kind))}: ${task.error.message}`
    : '';
  return [
    run.id,
    run.workflow,
    run.namespace,
    task.taskId,
    task.kind,
    task.status,
    task.attempt,
    iso(task.startedAt),
    iso(task.endedAt),
    task.durationMs,
    typeof task.meta.model === 'string' ? task.meta.model : null,
    num(task.meta.promptTokens),
    num(task.meta.completionTokens),
    totalTokens(run, task),
    error,
  ]
    .map(csvField)
    .join(',');
}

/**
 * One CSV row per task of the runs `filter` selects (newest run first, tasks by `seq`),
 * after a header row; recorded values (`$now`, ...) are left out. Times are ISO 8601 (UTC).
 */
export async function exportSteps(
  store: Store,
  write: LineWriter,
  filter: RunFilter,
): Promise<ExportResult> {
  const result: ExportResult = { runs: 0, tasks: 0, logs: 0, inbox: 0, corrupt: [] };
  await write(STEP_COLUMNS.join(','));
  for await (const run of runsOf(store, filter, result.corrupt)) {
    const tasks = await readable(() => store.listTasks(run.id), result.corrupt);
    if (tasks === undefined) continue;
    result.runs++;
    for (const task of tasks) {
      if (task.taskId.startsWith('$')) continue;
      await write(stepRow(run, task));
      result.tasks++;
    }
  }
  return result;
}
