import { decodeRun, decodeTask } from './compact.js';
import type { WriteValue } from './group-commit.js';
import { runIndexKeys, runStaleKeys, taskIndexKeys, taskStaleKeys } from './indexes.js';
import { DERIVED_PREFIXES, PREFIX, SEP, lastPart, prefixRange, runKey } from './keys.js';
import type { LevelDb } from './migrations.js';
import type { Run } from './records.js';
import type { DeleteCounts } from './retention.js';

/** What deleting a run writes, and what it removes. */
export interface Deletion {
  readonly entries: [string, WriteValue][];
  readonly counts: Omit<DeleteCounts, 'runs'>;
}

/**
 * Every key of a run (its record, tasks, index entries, timers, inbox, logs), as deletions, or
 * null when there is no such run. A damaged record's entries are found by scanning.
 */
export async function planDeletion(db: LevelDb, runId: string): Promise<Deletion | null> {
  const rk = runKey(runId);
  const bytes = await db.get(rk);
  if (bytes === undefined) return null;
  const entries: [string, WriteValue][] = [[rk, null]];
  const derived = new Set<string>();
  let tasks = 0;
  let run: Run | undefined;
  try {
    run = decodeRun(rk, bytes);
  } catch {
    run = undefined;
  }
  if (run) {
    for (const ik of runIndexKeys(run)) {
      entries.push([ik, null]);
      derived.add(ik);
    }
    for (const sk of runStaleKeys(run)) entries.push([sk, null]);
  } else {
    // The record is damaged: find its index entries by scanning the run indexes.
    for (const p of DERIVED_PREFIXES) {
      if (p === PREFIX.idxWaiting || p === PREFIX.timers) continue;
      for await (const k of db.keys(prefixRange(p))) {
        if (lastPart(k) === runId) {
          entries.push([k, null]);
          derived.add(k);
        }
      }
    }
  }
  for await (const [k, tb] of db.iterator(prefixRange(PREFIX.tasks, runId))) {
    entries.push([k, null]);
    tasks++;
    try {
      const task = decodeTask(k, tb);
      for (const ik of taskIndexKeys(task)) {
        entries.push([ik, null]);
        derived.add(ik);
      }
      for (const sk of taskStaleKeys(task)) entries.push([sk, null]);
    } catch {
      // A damaged task: its waiting entry is found by prefix below, its timer by scan.
      for await (const tk of db.keys(prefixRange(PREFIX.timers))) {
        if (tk.split(SEP)[2] === runId) {
          entries.push([tk, null]);
          derived.add(tk);
        }
      }
    }
  }
  const found = { [PREFIX.idxWaiting]: 0, [PREFIX.inbox]: 0, [PREFIX.logs]: 0 };
  for (const p of [PREFIX.idxWaiting, PREFIX.inbox, PREFIX.logs] as const) {
    for await (const k of db.keys(prefixRange(p, runId))) {
      entries.push([k, null]);
      if (p === PREFIX.idxWaiting) derived.add(k);
      else found[p]++;
    }
  }
  // Counted as they are on disk: entries a record implies but the index lacks are not.
  const present = await db.getMany([...derived]);
  return {
    entries,
    counts: {
      tasks,
      logs: found[PREFIX.logs],
      inbox: found[PREFIX.inbox],
      entries: present.filter((v) => v !== undefined).length,
    },
  };
}
