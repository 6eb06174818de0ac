import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, describe, expect, it } from 'vitest';
import { createEngine, MemoryStore } from '@cairn/core';
import type { Durability } from '@cairn/store';
import { Child } from './helpers/child.js';
import { seededRandom, testSeed } from './helpers/random.js';
import { tempDir } from './helpers/temp.js';
import {
  Ledger,
  outcomeOf,
  readLife,
  takeSnapshot,
  type Outcome,
  type Snapshot,
} from './helpers/torture-ledger.js';
import {
  makePlan,
  tortureWorkflows,
  type Decision,
  type PlannedRun,
} from './helpers/torture-workflows.js';

/**
 * Torture: a child engine (LevelStore) runs a mix of workflows
 * (test/helpers/torture-workflows.ts: sequential and parallel steps, children, waits for
 * input, sleeps, retries, a wait that times out, a step that fails for good) and is killed
 * with SIGKILL again and again on the same directory: at random moments, during its start
 * (recovery), and exactly at named checkpoint boundaries through `CAIRN_FAULTS` (after a
 * step ran and before its checkpoint, after a batch was written and before it was
 * acknowledged, ...). Each life adds a few runs to the plan, and the driver answers waiting
 * tasks through the child's stdin at random moments. A last life runs until every run ends.
 *
 * After every kill the driver opens the store itself and checks (test/helpers/torture-ledger.ts):
 * the store's integrity (every index entry agrees with its record); no started run lost; every
 * task the engine reported completed is stored completed; every acknowledged resume is stored
 * (or kept in the inbox); a step whose outcome was committed never runs again (its journal
 * lines never grow after a kill saw it committed) and its outcome came from an attempt that
 * really ran; paused runs wait; ended runs end as the same runs do in one uninterrupted
 * process. At the end: every run ended as expected, every decision delivered with its payload,
 * one child run per child task, retried steps retried.
 *
 * The scenario runs twice, once per durability of the store. In both a batch is acknowledged
 * once the store's log, CAIRN-WAL, has it (in 'strict' synced, in 'process' written), and
 * reaches LevelDB behind; the next open replays what LevelDB lacks.
 * The child gets the durability through CAIRN_TORTURE_DURABILITY, and the driver reopens the
 * store with the same one. The ledger checks both the same way. The 'process' run does half
 * the kills and half the runs of the 'strict' one.
 *
 * Prints one summary line per durability. Replay a schedule with CAIRN_TEST_SEED=<seed> (each
 * durability draws its schedule from the seed on its own). Longer runs: CAIRN_TORTURE=long, or
 * CAIRN_TORTURE_KILLS / CAIRN_TORTURE_RUNS (for 'strict'; 'process' does half).
 */

const LONG = process.env.CAIRN_TORTURE === 'long';
const STRICT_KILLS = Number(process.env.CAIRN_TORTURE_KILLS ?? (LONG ? 300 : 60));
const STRICT_RUNS = Number(process.env.CAIRN_TORTURE_RUNS ?? (LONG ? 900 : 180));
const half = (n: number): number => Math.max(1, Math.ceil(n / 2));
/** Kills and runs per durability: 'process' does half, so it adds half the time, not double. */
const SIZE: Record<Durability, { readonly kills: number; readonly runs: number }> = {
  strict: { kills: STRICT_KILLS, runs: STRICT_RUNS },
  process: { kills: half(STRICT_KILLS), runs: half(STRICT_RUNS) },
};
const seed = testSeed();
/** Steps at once in the child: low, so the work outlives each life. */
const CONCURRENCY = '3';
/** The longest a child lives after `ready` when it is killed at a random moment. */
const MAX_LIFE_MS = 800;
/** How long a child armed with a fault point gets to reach it before it is killed anyway. */
const FAULT_LIFE_MS = 3000;
/** Share of the plan started by the first life; the rest arrives evenly over the others. */
const FIRST_SHARE = 0.25;

/** Fault points the child is killed at, with the hit that fires (drawn per life). */
const FAULTS: readonly { point: string; maxNth: number }[] = [
  { point: 'step.after-run', maxNth: 12 },
  { point: 'step.before-run', maxNth: 12 },
  { point: 'step.after-commit', maxNth: 12 },
  { point: 'commit.after-write', maxNth: 30 },
  { point: 'commit.before-write', maxNth: 30 },
  { point: 'pause.before-commit', maxNth: 3 },
  { point: 'resume.before-commit', maxNth: 2 },
];

const dirs: Array<() => Promise<void>> = [];
afterAll(async () => {
  for (const cleanup of dirs) await cleanup();
});

/** The same runs in this process, on a memory store, with no crash: the expected outcomes. */
async function reference(
  plan: readonly PlannedRun[],
  decisions: readonly Decision[],
): Promise<Map<string, Outcome>> {
  const store = new MemoryStore();
  const engine = await createEngine({
    store,
    workflows: tortureWorkflows({ pace: 0.1 }),
    concurrency: 64,
  });
  try {
    for (const run of plan) await engine.start(run.workflow, run.input, { id: run.id });
    for (const d of decisions) await engine.resumeTask(d.runId, d.taskId, d.data);
    const outcomes = new Map<string, Outcome>();
    for (const run of plan) {
      await engine
        .handle(run.id)
        .result()
        .catch(() => undefined);
      outcomes.set(run.id, outcomeOf(await engine.get(run.id)));
    }
    return outcomes;
  } finally {
    await engine.close();
    await store.close();
  }
}

const resumeLine = (d: Decision): string =>
  `resume ${d.runId} ${d.taskId} ${JSON.stringify(d.data)}\n`;

/**
 * One torture: KILLS lives of a child writing with `durability`, then a last one, checked by
 * the ledger after each. Its schedule is drawn from the seed alone, whichever ran before.
 */
async function torture(durability: Durability): Promise<void> {
  const { kills: KILLS, runs: RUNS } = SIZE[durability];
  const random = seededRandom(seed);
  const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)]!;
  const began = Date.now();
  const { path: dir, cleanup } = await tempDir(`torture-${durability}`);
  dirs.push(cleanup);
  const storeDir = join(dir, 'store');
  const journalFile = join(dir, 'journal');
  const planFile = join(dir, 'plan.json');
  const { plan, decisions } = makePlan(RUNS, random);
  writeFileSync(planFile, JSON.stringify(plan));
  const expected = await reference(plan, decisions);
  const ledger = new Ledger(plan, decisions, expected);
  const baseEnv = {
    ...process.env,
    CAIRN_TORTURE_DURABILITY: durability,
    CAIRN_TORTURE_JOURNAL: journalFile,
    CAIRN_FAULTS: '',
  };

  const spawn = (upto: number, faults: string, final = false): Child => {
    const args = [storeDir, planFile, String(upto), CONCURRENCY, ...(final ? ['--final'] : [])];
    const child = new Child('torture-engine.ts', args, {
      env: { ...baseEnv, CAIRN_FAULTS: faults },
    });
    // A command written just as the child dies must not fail the test process.
    child.process.stdin!.on('error', () => undefined);
    return child;
  };

  let snapshot: Snapshot | null = null;
  let faultKills = 0;
  let startupKills = 0;
  let cut = 0;
  let midWork = 0;

  for (let cycle = 0; cycle < KILLS; cycle++) {
    const when = `kill ${cycle + 1}`;
    const upto = Math.min(
      RUNS,
      Math.ceil(RUNS * (FIRST_SHARE + ((1 - FIRST_SHARE) * cycle) / Math.max(1, KILLS - 1))),
    );
    const roll = random();
    const fault = roll < 0.3 ? pick(FAULTS) : null;
    const early = fault === null && roll < 0.4;
    const spec = fault ? `${fault.point}=kill@${1 + Math.floor(random() * fault.maxNth)}` : '';
    const child = spawn(upto, spec);
    const outstanding = ledger
      .outstanding(snapshot)
      .filter((d) => plan.findIndex((r) => r.id === d.runId) < upto);
    const timers: NodeJS.Timeout[] = [];
    let driverKilled = false;
    let diedAlone = false;
    void child.exited.then(() => (diedAlone = !driverKilled));

    if (early) {
      // Somewhere in the start: loading, recovery, or the first moments of work.
      await sleep(Math.floor(random() * 2500));
    } else {
      const ready = await child.waitForLine((l) => l === 'ready', 60_000).catch(() => null);
      if (ready !== null) {
        const life = fault ? FAULT_LIFE_MS : Math.floor(random() * MAX_LIFE_MS);
        const share = fault?.point === 'resume.before-commit' ? 1 : 0.4;
        for (const d of outstanding) {
          if (random() >= share) continue;
          const at = Math.floor(random() * (fault ? 300 : life));
          timers.push(setTimeout(() => child.process.stdin!.write(resumeLine(d)), at));
        }
        await Promise.race([child.exited, sleep(life)]);
      }
    }
    for (const timer of timers) clearTimeout(timer);
    driverKilled = true;
    const exit = await child.kill();
    if (exit.signal !== 'SIGKILL') {
      ledger.violation(when, `the child died on its own (${exit.code}): ${child.stderr}`);
    } else if (diedAlone) {
      // Killed by its armed fault point, maybe already during recovery.
      faultKills++;
    }
    // Killed before the engine was open: while loading or recovering.
    if (!child.lines.includes('ready')) startupKills++;

    snapshot = await takeSnapshot(storeDir, journalFile, durability);
    ledger.checkLife(readLife(child.lines), snapshot, when);
    ledger.checkSnapshot(snapshot, when);
    const running = [...snapshot.tasks.values()]
      .flat()
      .filter((t) => t.kind === 'step' && t.status === 'running').length;
    cut += running;
    if (running > 0) midWork++;
    if (process.env.CAIRN_TORTURE_VERBOSE) {
      const ended = [...snapshot.runs.values()].filter((r) => r.endedAt !== null).length;
      console.log(
        `${when} ${spec || (early ? 'early' : 'random')}${diedAlone ? ' (fired)' : ''}: ` +
          `${ended}/${snapshot.runs.size} runs ended, ${running} steps cut short`,
      );
    }
  }

  // The last life: every decision still outstanding is sent (again, until it is taken),
  // and the child runs until every run of the plan has ended.
  const last = spawn(RUNS, '', true);
  await last.waitForLine((l) => l === 'ready', 60_000);
  for (const d of ledger.outstanding(snapshot)) last.process.stdin!.write(resumeLine(d));
  const resend = setInterval(() => {
    const answered = new Set(
      last.lines
        .filter((l) => l.startsWith('resume-ok'))
        .map((l) => l.split(' ').slice(1, 3).join('/')),
    );
    for (const d of ledger.outstanding(snapshot)) {
      if (!answered.has(`${d.runId}/${d.taskId}`)) last.process.stdin!.write(resumeLine(d));
    }
  }, 500);
  const finished = await last
    .waitForLine((l) => l === 'all-done', LONG ? 600_000 : 120_000)
    .then(
      () => true,
      () => false,
    );
  clearInterval(resend);
  if (!finished) ledger.violation('last life', 'the runs did not all end');
  const exit = finished ? await last.exited : await last.kill();
  if (finished && exit.code !== 0) {
    ledger.violation('last life', `exited ${JSON.stringify(exit)}: ${last.stderr}`);
  }
  const final = await takeSnapshot(storeDir, journalFile, durability);
  const report = readLife(last.lines);
  // A resend may legitimately meet a task answered a moment before.
  ledger.checkLife({ ...report, notWaiting: [] }, final, 'last life');
  ledger.checkSnapshot(final, 'at the end');
  ledger.checkEnd(final);

  const tasks = [...final.tasks.values()].flat();
  const steps = tasks.filter((t) => t.kind === 'step' && !t.taskId.startsWith('$')).length;
  const children = [...final.runs.values()].filter((r) => r.parentRunId !== null).length;
  const executions = [...final.journal.values()].reduce((n, a) => n + a.length, 0);
  const seconds = Math.round((Date.now() - began) / 1000);
  for (const v of ledger.violations.slice(0, 30)) console.log(`violation: ${v}`);
  console.log(
    `torture: durability=${durability} seed=${seed} kills=${KILLS} ` +
      `(at fault points ${faultKills}, before ready ${startupKills}, mid-step ${midWork}) ` +
      `runs=${RUNS}+${children} children steps=${steps} ` +
      `executions=${executions} cut-short=${cut} resumes=${ledger.acked.size} ` +
      `violations=${ledger.violations.length} time=${seconds}s`,
  );
  expect(ledger.violations).toEqual([]);
  expect(midWork, 'no kill landed while a step was running').toBeGreaterThan(0);
}

describe('the engine under SIGKILL torture', () => {
  for (const durability of ['strict', 'process'] as const) {
    it(
      `keeps every checkpoint, never repeats a committed step, loses nothing, durability ${durability} (seed ${seed})`,
      () => torture(durability),
      (LONG ? 60 : 5) * 60_000 + SIZE[durability].kills * 8000,
    );
  }
});
