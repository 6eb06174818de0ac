import { decodeRaw, encode } from './codec.js';
import { decodeRun, decodeTask } from './compact.js';
import { faults } from './faults.js';
import { runTagKeys } from './indexes.js';
import { PREFIX, metaKey, prefixRange } from './keys.js';
import type { Migration } from './migrations.js';
import type { Run } from './records.js';
import { UsageAggregates, countsForUsage, usageOfStep, type UsageDelta } from './usage.js';

const EMPTY = new Uint8Array(0);
const PROGRESS_KEY = metaKey('migration');

/** Where an interrupted 1→2 migration stopped: runs done, and the last run key done. */
async function readProgress(
  db: Parameters<Migration['run']>[0]['db'],
): Promise<{ done: number; after: string | null }> {
  const bytes = await db.get(PROGRESS_KEY);
  if (bytes === undefined) return { done: 0, after: null };
  const value = decodeRaw(PROGRESS_KEY, bytes) as {
    from?: unknown;
    done?: unknown;
    after?: unknown;
  };
  if (value.from !== 1) return { done: 0, after: null };
  return {
    done: typeof value.done === 'number' ? value.done : 0,
    after: typeof value.after === 'string' ? value.after : null,
  };
}

/**
 * Format 2 adds the tag index (`idx-tag/<tag>/<order>`) and the usage totals
 * (`usage/<day>/<namespace>/<workflow>/<model>`). This step derives both from the runs and
 * their completed steps, a batch of runs at a time. Each batch writes its tag entries, the
 * usage totals as they stand after it, and how far it got, atomically: an interrupted
 * migration reloads the totals and carries on after the last run done, so no step is
 * counted twice. A run or task that cannot be read is skipped (`verify()` reports it).
 */
export const v1ToV2: Migration = {
  from: 1,
  to: 2,
  description: 'tag index and usage totals from existing runs and steps',
  async run(ctx) {
    const { db } = ctx;
    const runs = prefixRange(PREFIX.runs);
    const progress = await readProgress(db);
    let done = progress.done;
    let after = progress.after;
    let total = done;
    for await (const _ of db.keys(after === null ? runs : { gt: after, lt: runs.lt })) total++;
    const usage = new UsageAggregates();
    await usage.load((range) => db.iterator(range));
    ctx.progress(done, total);
    for (;;) {
      const it = db.iterator(after === null ? runs : { gt: after, lt: runs.lt });
      const entries: [string, Uint8Array][] = [];
      try {
        // nextv may return fewer than asked (classic-level stops at highWaterMarkBytes).
        while (entries.length < ctx.batchSize) {
          const next = await it.nextv(ctx.batchSize - entries.length);
          if (next.length === 0) break;
          entries.push(...next);
        }
      } finally {
        await it.close();
      }
      if (entries.length === 0) break;
      const batch = db.batch();
      const deltas: UsageDelta[] = [];
      for (const [k, bytes] of entries) {
        let run: Run;
        try {
          run = decodeRun(k, bytes);
        } catch {
          continue;
        }
        for (const tk of runTagKeys(run)) batch.put(tk, EMPTY);
        for await (const [taskKey, taskBytes] of db.iterator(prefixRange(PREFIX.tasks, run.id))) {
          try {
            const task = decodeTask(taskKey, taskBytes);
            if (countsForUsage(task)) deltas.push(usageOfStep(run, task));
          } catch {
            // A damaged task counts for nothing.
          }
        }
      }
      for (const uk of new Set(usage.apply(deltas))) batch.put(uk, usage.encoded(uk));
      done += entries.length;
      after = entries[entries.length - 1]![0];
      batch.put(PROGRESS_KEY, encode({ from: 1, to: 2, done, after }));
      await batch.write({ sync: true });
      faults.hit('migration.batch', { done, total });
      ctx.progress(done, total);
    }
  },
};
