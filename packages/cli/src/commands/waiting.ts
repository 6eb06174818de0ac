import type { Page, Run, Store, Task } from '@cairn/store';
import { intOption, parseCommand } from '../args.js';
import { COMMON_HELP, printHelp, type Command } from '../command.js';
import { formatAge, oneLine, plural } from '../format.js';
import { describeSchema } from '../schema.js';
import { withStore } from '../store.js';

const OPTIONS = {
  namespace: { type: 'string' },
  workflow: { type: 'string' },
  limit: { type: 'string' },
} as const;

/** A task waiting for input, with what it expects: the approvals inbox. */
export interface WaitingItem {
  readonly runId: string;
  readonly taskId: string;
  readonly workflow: string;
  readonly version: string;
  readonly namespace: string;
  readonly description: string | null;
  readonly waitingSince: number;
  readonly timeoutAt: number | null;
  readonly schema: unknown;
}

export const waiting: Command = {
  name: 'waiting',
  summary: 'list the tasks waiting for input (the approvals inbox), oldest run first',
  help: `Usage: cairn waiting [options]

Lists the tasks waiting for input across runs, with the fields each one expects.
Answer one with: cairn resume <runId> --task <taskId> --data '{...}'

Options:
  --namespace <name>   tasks of runs in this namespace
  --workflow <name>    tasks of runs of this workflow
  --limit <n>          at most this many tasks (default 100)

${COMMON_HELP}`,

  async run(ctx) {
    const { values } = parseCommand(ctx.argv, OPTIONS);
    const out = ctx.output(values.json === true);
    if (values.help === true) return printHelp(out, this.help);
    const limit = intOption(values.limit, 'limit', { max: 100_000 }) ?? 100;
    const filter = { namespace: values.namespace, workflow: values.workflow };
    const { items, corrupt } = await withStore(out, { path: values.store }, (store) =>
      listWaiting(store, filter, limit),
    );
    out.result({ items, corrupt });
    if (out.json) return 0;
    for (const c of corrupt) out.note(out.c.red(`unreadable record ${c.key}: ${c.message}`));
    if (items.length === 0) {
      out.line(out.c.dim('Nothing is waiting for input.'));
      return 0;
    }
    const { c } = out;
    out.table(
      [
        { header: 'RUN' },
        { header: 'TASK' },
        { header: 'WORKFLOW' },
        { header: 'WAITING' },
        { header: 'DEADLINE' },
        { header: 'EXPECTS' },
      ],
      items.map((item) => [
        item.runId,
        c.yellow(item.taskId),
        `${item.workflow}${c.dim(`@${item.version}`)}`,
        formatAge(item.waitingSince, ctx.now).replace(' ago', ''),
        item.timeoutAt === null ? '-' : formatAge(item.timeoutAt, ctx.now),
        `{ ${describeSchema(item.schema)} }` +
          (item.description ? c.dim(`  ${oneLine(item.description, 70)}`) : ''),
      ]),
    );
    out.line(c.dim(plural(items.length, 'task') + ' waiting'));
    return 0;
  },
};

/** Waiting tasks, and the keys of records that could not be read (reported, not fatal). */
export interface WaitingList {
  readonly items: WaitingItem[];
  readonly corrupt: { key: string; message: string }[];
}

/** Waiting tasks from the store's waiting index, filtered by their run's namespace and workflow. */
export async function listWaiting(
  store: Store,
  filter: { readonly namespace?: string | undefined; readonly workflow?: string | undefined },
  limit: number,
): Promise<WaitingList> {
  const items: WaitingItem[] = [];
  const corrupt: WaitingList['corrupt'] = [];
  const runs = new Map<string, Run | undefined>();
  let cursor: string | null = null;
  do {
    const page: Page<Task> = await store.listWaiting({ limit: 500, cursor });
    for (const c of page.corrupt) corrupt.push({ key: c.key, message: c.error.message });
    for (const task of page.items) {
      if (!runs.has(task.runId)) runs.set(task.runId, await readRun(store, task.runId, corrupt));
      const run = runs.get(task.runId);
      if (!run) continue;
      if (filter.namespace !== undefined && run.namespace !== filter.namespace) continue;
      if (filter.workflow !== undefined && run.workflow !== filter.workflow) continue;
      items.push(toItem(run, task));
      if (items.length >= limit) return { items, corrupt };
    }
    cursor = page.cursor;
  } while (cursor !== null);
  return { items, corrupt };
}

/** The run, or undefined when it is missing or cannot be read (then reported in `corrupt`). */
async function readRun(
  store: Store,
  runId: string,
  corrupt: WaitingList['corrupt'],
): Promise<Run | undefined> {
  try {
    return await store.getRun(runId);
  } catch (error) {
    const { code, details, message } = error as {
      code?: unknown;
      details?: { key?: unknown };
      message?: string;
    };
    if (code !== 'CORRUPT_RECORD') throw error;
    corrupt.push({
      key: typeof details?.key === 'string' ? details.key : runId,
      message: message ?? '',
    });
    return undefined;
  }
}

function toItem(run: Run, task: Task): WaitingItem {
  return {
    runId: run.id,
    taskId: task.taskId,
    workflow: run.workflow,
    version: run.version,
    namespace: run.namespace,
    description: typeof task.meta.description === 'string' ? task.meta.description : null,
    waitingSince: task.startedAt,
    timeoutAt: task.timeoutAt ?? null,
    schema: task.schema,
  };
}
