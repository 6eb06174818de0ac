/** The approvals inbox, read from a store: the engine's `listWaiting` and the CLI's `waiting`. */
import {
  CairnError,
  MAX_LIMIT,
  Store,
  checkOptionNames,
  refusedInputOf,
  type Page,
  type Run,
} from '@cairn/store';
import { checkId, typeError } from './engine-support.js';
import type { WaitingTask } from './engine-types.js';
import { LIST_WAITING_OPTIONS } from './option-names.js';

export interface WaitingQuery {
  /** Tasks of this run only. */
  readonly runId?: string | undefined;
  /** Tasks of runs in this namespace. */
  readonly namespace?: string | undefined;
  /** Tasks of runs of this workflow. */
  readonly workflow?: string | undefined;
  /** At most this many tasks: any whole number from 1 (the store is read 1,000 at a time). @default 100 */
  readonly limit?: number | undefined;
  /** Where the previous page ended (`cursor` of that page). */
  readonly cursor?: string | null | undefined;
}

/**
 * Tasks waiting for input with what their run is (workflow, version, namespace), oldest run
 * first. Each store page asks for no more than the tasks still wanted, so the last one ends
 * where this page does and its cursor is the one handed back, also when a filter skipped
 * tasks. A run that cannot be read is reported in `corrupt` and its tasks are left out.
 */
export async function listWaitingTasks(
  store: Store,
  query: WaitingQuery = {},
  /** What errors call `query` (the engine's parameter is `options`). */
  name = 'query',
): Promise<Page<WaitingTask>> {
  if (!(store instanceof Store)) throw typeError('store must be a Store');
  if (typeof query !== 'object' || query === null) throw typeError(`${name} must be an object`);
  checkOptionNames(name, query, LIST_WAITING_OPTIONS);
  if (query.namespace !== undefined) checkId(`${name}.namespace`, query.namespace);
  if (query.workflow !== undefined) checkId(`${name}.workflow`, query.workflow);
  const limit = query.limit ?? 100;
  if (typeof limit !== 'number') throw typeError(`${name}.limit must be a number`);
  if (!Number.isInteger(limit) || limit < 1) {
    throw new CairnError('INVALID_ARGUMENT', `${name}.limit must be a whole number from 1`);
  }
  const items: WaitingTask[] = [];
  const corrupt: Page<WaitingTask>['corrupt'] = [];
  const runs = new Map<string, Run | undefined>();
  // The run id and the cursor are checked by the store.
  let cursor = query.cursor ?? null;
  do {
    const page = await store.listWaiting({
      ...(query.runId === undefined ? {} : { runId: query.runId }),
      limit: Math.min(limit - items.length, MAX_LIMIT),
      cursor,
    });
    corrupt.push(...page.corrupt);
    for (const task of page.items) {
      const run = await runOf(store, runs, task.runId, corrupt);
      if (!run) continue;
      if (query.namespace !== undefined && run.namespace !== query.namespace) continue;
      if (query.workflow !== undefined && run.workflow !== query.workflow) continue;
      items.push({
        runId: run.id,
        taskId: task.taskId,
        workflow: run.workflow,
        version: run.version,
        namespace: run.namespace,
        schema: task.schema,
        description: typeof task.meta.description === 'string' ? task.meta.description : null,
        waitingSince: task.startedAt,
        timeoutAt: task.timeoutAt ?? null,
        refusedInput: refusedInputOf(task),
      });
    }
    cursor = page.cursor;
  } while (cursor !== null && items.length < limit);
  return { items, cursor, corrupt };
}

/** The run of a waiting task, read once per listing; a damaged one is reported. */
async function runOf(
  store: Store,
  runs: Map<string, Run | undefined>,
  runId: string,
  corrupt: Page<WaitingTask>['corrupt'],
): Promise<Run | undefined> {
  if (!runs.has(runId)) {
    runs.set(
      runId,
      await store.getRun(runId).catch((error: unknown) => {
        if (error instanceof CairnError && typeof error.details?.key === 'string') {
          corrupt.push({ key: error.details.key, error });
          return undefined;
        }
        throw error;
      }),
    );
  }
  return runs.get(runId);
}
