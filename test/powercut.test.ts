import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, afterEach, expect, it } from 'vitest';
import { LevelStore, type Durability } from '@cairn/store';
import { ChainLedger, finishRuns, type ViolationKind } from './helpers/chain-ledger.js';
import { makeChainPlan, WAIT, type DecisionData } from './helpers/chain-workload.js';
import { Child } from './helpers/child.js';
import {
  CUT_MODES,
  describePowercut,
  mountIn,
  unmountAll,
  type CutMode,
} from './helpers/powercut.js';
import { seededRandom, testSeed } from './helpers/random.js';
import { tempDir } from './helpers/temp.js';
import { readLife, takeSnapshot, type Snapshot } from './helpers/torture-ledger.js';

/**
 * Power cuts: a child engine runs chain workflows (test/helpers/chain-workload.ts: twenty
 * sequential steps, each computed from the one before, four parallel steps and a wait the
 * driver answers through the child's stdin) with its store (LevelDB and the store's log) on
 * the filesystem that loses power (test/powercut/powercut_fs.py). Again and again, on the
 * same store: mount, start the child, let it run a random time (sometimes only through its
 * start and recovery), cut the power (drop, subset and torn in turn, with a random seed),
 * SIGKILL the child, unmount, and open the store in this process on what survived (no FUSE).
 * Each life adds runs to the plan and carries on the runs of the lives before.
 *
 * After every cut (test/helpers/chain-ledger.ts): with `strict` durability, nothing
 * acknowledged is lost (started runs, completed steps with their outputs, resumes); in both
 * durabilities `verify()` is clean, no run's history contradicts itself (stages done form a
 * prefix, each step's recorded input is what the steps before it recorded, the run record
 * agrees with its tasks), what is stored is what was acknowledged, and nothing that an earlier
 * state had on disk went back (no task lost or changed, no attempt lower, no completed step run
 * again). At the end an engine runs every run to completion (no cut) and each must complete.
 *
 * Runs once per durability, and prints one summary line each: the cuts by mode (`early`: while
 * the child started), the changes pending at the cuts, acknowledged facts lost (`strict_lost`;
 * in `process` durability `lost_allowed`, which is no violation), distinct inconsistencies and
 * unrecovered runs, and `bad_cuts`, the cuts after which something new was wrong. Replay a
 * schedule with CAIRN_TEST_SEED=<seed> (what the child does in its time varies); sizes:
 * CAIRN_POWERCUT_CUTS (per durability), CAIRN_POWERCUT_RUNS; CAIRN_POWERCUT_VERBOSE=1 prints
 * a line per cut.
 */

const CUTS = Number(process.env.CAIRN_POWERCUT_CUTS ?? 100);
const RUNS = Number(process.env.CAIRN_POWERCUT_RUNS ?? 240);
const VERBOSE = process.env.CAIRN_POWERCUT_VERBOSE !== undefined;
const seed = testSeed();
/** Steps at once in the child: low, so the work outlives each life. */
const CONCURRENCY = '4';
/**
 * The longest a child runs after `ready` before the power goes. Long enough for LevelDB's log
 * to pass its first 32 KiB block: within one block, LevelDB reads a log with a hole only up to
 * the hole; past it, it reads on after it, which is where a process-durability store can get
 * LevelDB ahead of its own log.
 */
const MAX_LIFE_MS = 2500;
/** The share of cuts drawn while the child starts (opening, recovering). */
const EARLY = 0.2;
/** Share of the plan the first life starts; the rest arrives evenly over the others. */
const FIRST_SHARE = 0.25;
/** How many violations the summary shows in full. */
const SHOWN = 12;

const cleanups: Array<() => Promise<void>> = [];
afterEach(unmountAll);
afterAll(async () => {
  await unmountAll();
  for (const cleanup of cleanups) await cleanup();
});

const resumeLine = (runId: string, data: DecisionData): string =>
  `resume ${runId} ${WAIT} ${JSON.stringify(data)}\n`;

/** Engine reports that only say the power went (every write fails from the cut on). */
const afterCut = (line: string): boolean => line.endsWith(' WRITE_FAILED');

async function powercut(durability: Durability): Promise<void> {
  const random = seededRandom(seed);
  const began = Date.now();
  const { path: dir, cleanup } = await tempDir(`powercut-${durability}`);
  cleanups.push(cleanup);
  const journal = join(dir, 'journal');
  const planFile = join(dir, 'plan.json');
  const { plan, decisions } = makeChainPlan(RUNS, random);
  writeFileSync(planFile, JSON.stringify(plan));
  const ledger = new ChainLedger(plan, decisions);
  const modes: Record<CutMode, number> = { drop: 0, subset: 0, torn: 0 };
  let snapshot: Snapshot | null = null;
  let pendingAtCuts = 0;
  let early = 0;
  /** Cuts after which something new was wrong. */
  let badCuts = 0;
  let storeDir = '';

  for (let cycle = 0; cycle < CUTS; cycle++) {
    const mount = await mountIn(dir);
    storeDir = join(mount.backing, 'store');
    const upto = Math.min(
      RUNS,
      Math.ceil(RUNS * (FIRST_SHARE + ((1 - FIRST_SHARE) * cycle) / Math.max(1, CUTS - 1))),
    );
    const child = new Child(
      'torture-engine.ts',
      [join(mount.path, 'store'), planFile, String(upto), CONCURRENCY],
      {
        env: {
          ...process.env,
          CAIRN_TORTURE_WORKLOAD: 'chain',
          CAIRN_TORTURE_DURABILITY: durability,
          CAIRN_TORTURE_JOURNAL: journal,
          CAIRN_FAULTS: '',
        },
      },
    );
    child.process.stdin!.on('error', () => undefined);
    let cutDone = false;
    let exitedBeforeCut = false;
    void child.exited.then(() => (exitedBeforeCut = !cutDone));
    const timers: NodeJS.Timeout[] = [];
    const mode = CUT_MODES[cycle % CUT_MODES.length]!;
    const cutSeed = Math.floor(random() * 2 ** 31);
    const when = `cut ${cycle + 1} (${mode} ${cutSeed})`;
    try {
      if (random() < EARLY) {
        early++;
        await Promise.race([child.exited, sleep(Math.floor(random() * 3000))]);
      } else {
        const ready = await child.waitForLine((l) => l === 'ready', 60_000).catch(() => null);
        const life = Math.floor(random() * MAX_LIFE_MS);
        if (ready !== null) {
          // Resumes of runs on disk already: a run this life starts may not exist yet.
          for (const [runId, data] of ledger.outstanding(snapshot)) {
            if (!snapshot?.runs.has(runId) || random() >= 0.5) continue;
            const at = Math.floor(random() * life);
            timers.push(setTimeout(() => child.process.stdin!.write(resumeLine(runId, data)), at));
          }
          await Promise.race([child.exited, sleep(life)]);
        }
      }
      for (const timer of timers) clearTimeout(timer);
      const report = await mount.cut(mode, cutSeed);
      cutDone = true;
      modes[mode]++;
      pendingAtCuts += report.pending;
      if (VERBOSE) console.log(`${when}: ${JSON.stringify(report)}`);
    } finally {
      await child.kill();
      await mount.unmount();
    }
    if (exitedBeforeCut) {
      ledger.add('inconsistent', when, `the child exited before the cut: ${child.stderr}`);
    }
    try {
      snapshot = await takeSnapshot(storeDir, journal, durability);
    } catch (error) {
      ledger.add('unrecovered', when, `the store does not open: ${String(error)}`);
      break;
    }
    const life = readLife(child.lines);
    const known = ledger.violations.length;
    ledger.checkLife(
      {
        ...life,
        problems: life.problems.filter((l) => !afterCut(l)),
        otherResumeErrors: life.otherResumeErrors.filter((l) => !afterCut(l)),
      },
      snapshot,
      when,
      durability === 'strict',
    );
    ledger.checkSnapshot(snapshot, when);
    if (ledger.violations.length > known) badCuts++;
    if (VERBOSE) console.log(`${when}: ${ledger.violations.length} violations so far`);
  }

  // The last life: no cut, on the platter itself; every run must complete.
  if (ledger.count('unrecovered') === 0) {
    const store = new LevelStore({ path: storeDir, durability });
    try {
      for (const problem of await finishRuns(store, plan, decisions, journal)) {
        ledger.add('unrecovered', 'last life', problem);
      }
    } finally {
      await store.close();
    }
    const final = await takeSnapshot(storeDir, journal, durability);
    ledger.checkSnapshot(final, 'at the end');
    ledger.checkEnd(final, 'at the end');
  }

  const count = (kind: ViolationKind): number => ledger.count(kind);
  for (const v of ledger.violations.slice(0, SHOWN)) {
    console.log(`violation (${v.kind}) at ${v.when}: ${v.message}`);
  }
  const lost =
    durability === 'strict' ? `strict_lost=${count('lost')}` : `lost_allowed=${ledger.lostAllowed}`;
  console.log(
    `powercut: durability=${durability} seed=${seed} cuts=${CUTS} ` +
      `modes=${CUT_MODES.map((m) => `${m}:${modes[m]}`).join(',')} early=${early} ` +
      `runs=${RUNS} pending_writes=${pendingAtCuts} ${lost} ` +
      `inconsistent=${count('inconsistent')} unrecovered=${count('unrecovered')} ` +
      `bad_cuts=${badCuts} ` +
      `time=${Math.round((Date.now() - began) / 1000)}s`,
  );
  expect(ledger.violations.map((v) => `${v.kind} at ${v.when}: ${v.message}`)).toEqual([]);
}

await describePowercut('Cairn under power cuts', () => {
  for (const durability of ['strict', 'process'] as const) {
    it(
      `loses nothing acknowledged (strict), never contradicts its history, recovers every run, durability ${durability} (seed ${seed})`,
      () => powercut(durability),
      5 * 60_000 + CUTS * 10_000,
    );
  }
});
