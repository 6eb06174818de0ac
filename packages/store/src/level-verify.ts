import { decodeRun, decodeTask } from './compact.js';
import { runIndexKeys, taskIndexKeys } from './indexes.js';
import { DERIVED_PREFIXES, PREFIX, SEP, displayKey, lastPart, prefixRange } from './keys.js';
import type { LevelDb } from './migrations.js';
import type { IntegrityProblem, IntegrityReport } from './store-types.js';

/**
 * Checks a level-backed store's data: every record decodes, every index entry and timer has
 * the record it is derived from, every record has its entries, every task its run.
 */
export async function verifyDb(db: LevelDb): Promise<IntegrityReport> {
  const problems: IntegrityProblem[] = [];
  const expected = new Set<string>();
  const runIds = new Set<string>();
  let runs = 0;
  let tasks = 0;
  for await (const [k, bytes] of db.iterator(prefixRange(PREFIX.runs))) {
    runIds.add(lastPart(k));
    try {
      const run = decodeRun(k, bytes);
      runs++;
      if (run.id !== lastPart(k)) {
        problems.push({ kind: 'corrupt', key: displayKey(k), message: `holds run "${run.id}"` });
      }
      for (const ik of runIndexKeys(run)) expected.add(ik);
    } catch (error) {
      problems.push({ kind: 'corrupt', key: displayKey(k), message: (error as Error).message });
      // Its index entries cannot be derived; accept whatever points at it.
      for (const p of DERIVED_PREFIXES) {
        if (p === PREFIX.idxWaiting || p === PREFIX.timers) continue;
        for await (const ik of db.keys(prefixRange(p)))
          if (lastPart(ik) === lastPart(k)) expected.add(ik);
      }
    }
  }
  for await (const [k, bytes] of db.iterator(prefixRange(PREFIX.tasks))) {
    const [, runId] = k.split(SEP);
    if (!runIds.has(runId!)) {
      problems.push({
        kind: 'orphan-task',
        key: displayKey(k),
        message: 'its run does not exist',
      });
    }
    try {
      const task = decodeTask(k, bytes);
      tasks++;
      for (const ik of taskIndexKeys(task)) expected.add(ik);
    } catch (error) {
      problems.push({ kind: 'corrupt', key: displayKey(k), message: (error as Error).message });
    }
  }
  let entries = 0;
  for (const p of DERIVED_PREFIXES) {
    for await (const k of db.keys(prefixRange(p))) {
      entries++;
      if (expected.has(k)) expected.delete(k);
      else
        problems.push({
          kind: 'orphan-entry',
          key: displayKey(k),
          message: 'no record has this entry',
        });
    }
  }
  for (const k of expected) {
    problems.push({
      kind: 'missing-entry',
      key: displayKey(k),
      message: 'a record has this entry, the index does not',
    });
  }
  return { ok: problems.length === 0, runs, tasks, entries, problems };
}
