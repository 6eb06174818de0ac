import type { LogLine, Run, Store, Task } from '@cairn/store';

/** Everything `cairn show` prints about a run. */
export interface Detail {
  readonly run: Run;
  readonly tasks: Task[];
  readonly groups: { readonly group: string; readonly taskIds: string[] }[];
  readonly children: Run[];
  readonly waiting: Task[];
  readonly logs: LogLine[];
}

/** The run with its tasks, parallel groups, child runs, waiting tasks and logs. */
export async function loadDetail(store: Store, runId: string): Promise<Detail | undefined> {
  const run = await store.getRun(runId);
  if (!run) return undefined;
  const tasks = await store.listTasks(runId);
  const byGroup = new Map<string, string[]>();
  for (const t of tasks) {
    if (t.group === null || t.taskId.startsWith('$')) continue;
    byGroup.set(t.group, [...(byGroup.get(t.group) ?? []), t.taskId]);
  }
  const children: Run[] = [];
  for (const t of tasks) {
    if (t.kind !== 'child' || !t.childRunId) continue;
    const child = await store.getRun(t.childRunId);
    if (child) children.push(child);
  }
  return {
    run,
    tasks,
    groups: [...byGroup]
      .filter(([, ids]) => ids.length > 1)
      .map(([group, taskIds]) => ({ group, taskIds })),
    children,
    waiting: tasks.filter((t) => t.status === 'waiting'),
    logs: await store.readLogs(runId),
  };
}
