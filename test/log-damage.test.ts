import { copyFileSync, cpSync, existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, expect, it } from 'vitest';
import { isCairnError, LevelStore, type Durability, type LevelStoreOptions } from '@cairn/store';
import { ChainLedger, finishRuns, type ViolationKind } from './helpers/chain-ledger.js';
import {
  makeChainPlan,
  STAGES,
  WAIT,
  type ChainRun,
  type DecisionData,
} from './helpers/chain-workload.js';
import { Child } from './helpers/child.js';
import { DAMAGES, damageLog, STORE_LOG_FILE, type Damage } from './helpers/log-damage.js';
import { seededRandom, testSeed } from './helpers/random.js';
import { tempDir } from './helpers/temp.js';
import {
  readLife,
  takeSnapshot,
  type LifeReport,
  type Snapshot,
} from './helpers/torture-ledger.js';

/**
 * Log damage: a child engine runs chain workflows (test/helpers/chain-workload.ts) on a plain
 * directory and is SIGKILLed after a random number of acknowledged steps; then the store's
 * log (`STORE_LOG_FILE`) is damaged, once in each way on a copy of that store: truncated at an
 * offset, bits flipped, 512 bytes zeroed, deleted, garbage appended (test/helpers/log-damage.ts).
 * Opening the damaged store must end one of two ways:
 * - it opens, `verify()` is clean, and what it holds agrees with some point of the acknowledged
 *   history: every run's history holds (a step may have lost its last checkpoints, never gone
 *   back to an older state while later steps remain), and every completed step holds the
 *   output it was acknowledged with. After a delete or appended garbage (damage that loses
 *   no record, or that nothing can see) it must also hold everything acknowledged;
 * - or it refuses with `LOG_DAMAGED`, its details naming the file and the offset; then it
 *   opens with `onLogDamage: 'salvage'`, and what it salvaged must agree with the history in
 *   the same way.
 * Either way an engine then runs every run to completion on it, and each must complete.
 *
 * The lives alternate between `strict` and `process` durability. Prints one summary line, with
 * the outcomes by kind of damage. Replay with CAIRN_TEST_SEED=<seed>; size:
 * CAIRN_LOGDAMAGE_CASES (rounded up to a multiple of the five damages).
 */

const CASES = Number(process.env.CAIRN_LOGDAMAGE_CASES ?? 120);
const LIVES = Math.max(1, Math.ceil(CASES / DAMAGES.length));
const RUNS = 4;
const CONCURRENCY = '4';
const STEPS = RUNS * STAGES.filter((stage) => !stage.includes(WAIT)).flat().length;
/** How long a life may take to reach the steps it is killed after (a run may wait for input). */
const LIFE_MS = 20_000;
/** How many failing cases the summary shows in full. */
const SHOWN = 6;
const SALVAGE = { onLogDamage: 'salvage' } as unknown as Omit<
  LevelStoreOptions,
  'path' | 'durability'
>;
const seed = testSeed();

const cleanups: Array<() => Promise<void>> = [];
afterAll(async () => {
  for (const cleanup of cleanups) await cleanup();
});

type Outcome = 'opened' | 'refused' | 'failed';

interface Case {
  readonly when: string;
  readonly damage: Damage;
  outcome: Outcome;
  salvaged: boolean;
  readonly ledger: ChainLedger;
}

interface Life {
  readonly dir: string;
  readonly durability: Durability;
  readonly plan: ChainRun[];
  readonly decisions: Map<string, DecisionData>;
  readonly report: LifeReport;
  readonly acked: number;
}

/** One life of the child on a fresh store, killed after a random number of acknowledged steps. */
async function killedLife(index: number, random: () => number): Promise<Life> {
  const durability: Durability = index % 2 === 0 ? 'strict' : 'process';
  const { path: dir, cleanup } = await tempDir(`logdamage-${index}`);
  cleanups.push(cleanup);
  const { plan, decisions } = makeChainPlan(RUNS, random);
  writeFileSync(join(dir, 'plan.json'), JSON.stringify(plan));
  const child = new Child(
    'torture-engine.ts',
    [join(dir, 'store'), join(dir, 'plan.json'), String(RUNS), CONCURRENCY],
    {
      env: {
        ...process.env,
        CAIRN_TORTURE_WORKLOAD: 'chain',
        CAIRN_TORTURE_DURABILITY: durability,
        CAIRN_TORTURE_JOURNAL: join(dir, 'journal'),
        CAIRN_FAULTS: '',
      },
    },
  );
  child.process.stdin!.on('error', () => undefined);
  const target = 1 + Math.floor(random() * STEPS * 0.9);
  try {
    await child.waitForLine((line) => line === 'planned', 60_000);
    // Most runs get their answer at once (kept until they reach the wait); the others wait.
    for (const [runId, data] of decisions) {
      if (random() < 0.75) {
        child.process.stdin!.write(`resume ${runId} ${WAIT} ${JSON.stringify(data)}\n`);
      }
    }
    const steps = (): number => child.lines.filter((l) => l.startsWith('task ')).length;
    await child.waitForLine(() => steps() >= target, LIFE_MS).catch(() => null);
  } finally {
    await child.kill();
  }
  const exit = await child.exited;
  if (exit.signal !== 'SIGKILL') throw new Error(`the child exited ${exit.code}: ${child.stderr}`);
  const report = readLife(child.lines);
  return { dir, durability, plan, decisions, report, acked: report.completed.length };
}

const codeOf = (error: unknown): string =>
  isCairnError(error) ? String(error.code) : `${String(error)}`;

/** Opens a damaged copy of the life's store and checks the outcome (see the top). */
async function checkCase(
  life: Life,
  damage: Damage,
  random: () => number,
  n: number,
): Promise<Case> {
  const dir = join(life.dir, damage);
  const storeDir = join(dir, 'store');
  const journal = join(dir, 'journal');
  cpSync(join(life.dir, 'store'), storeDir, { recursive: true });
  if (existsSync(join(life.dir, 'journal'))) copyFileSync(join(life.dir, 'journal'), journal);
  const what = damageLog(join(storeDir, STORE_LOG_FILE), damage, random);
  const when = `case ${n} (${life.durability}, killed after ${life.acked} steps, log ${what})`;
  const ledger = new ChainLedger(life.plan, life.decisions);
  const result: Case = { when, damage, outcome: 'opened', salvaged: false, ledger };

  let snapshot: Snapshot;
  try {
    snapshot = await takeSnapshot(storeDir, journal, life.durability);
  } catch (error) {
    if (codeOf(error) !== 'LOG_DAMAGED') {
      result.outcome = 'failed';
      ledger.add(
        'refusal',
        when,
        `the store refused to open with ${codeOf(error)}, not LOG_DAMAGED`,
      );
      return result;
    }
    result.outcome = 'refused';
    const details = (isCairnError(error) ? error.details : undefined) ?? {};
    const named = typeof details.file === 'string' && details.file.endsWith(STORE_LOG_FILE);
    if (!named || (damage !== 'delete' && typeof details.offset !== 'number')) {
      ledger.add(
        'refusal',
        when,
        `LOG_DAMAGED without the file and offset: ${JSON.stringify(details)}`,
      );
    }
    try {
      snapshot = await takeSnapshot(storeDir, journal, life.durability, SALVAGE);
      result.salvaged = true;
    } catch (salvageError) {
      ledger.add('unrecovered', when, `the salvage failed: ${codeOf(salvageError)}`);
      return result;
    }
  }
  // Only damage that loses no record, or a missing log the store does not report, must keep all.
  const mustKeep = result.outcome === 'opened' && (damage === 'append' || damage === 'delete');
  ledger.checkLife(life.report, snapshot, when, mustKeep);
  ledger.checkSnapshot(snapshot, when);

  // A salvaged store opens as any other from then on.
  const store = new LevelStore({ path: storeDir, durability: life.durability });
  try {
    for (const problem of await finishRuns(store, life.plan, life.decisions, journal)) {
      ledger.add('unrecovered', when, problem);
    }
  } catch (error) {
    const after = result.salvaged ? ' after the salvage (without the option)' : '';
    ledger.add('unrecovered', when, `the store does not open again${after}: ${codeOf(error)}`);
    return result;
  } finally {
    await store.close();
  }
  const final = await takeSnapshot(storeDir, journal, life.durability);
  ledger.checkSnapshot(final, `${when}, after its runs ended`);
  ledger.checkEnd(final, `${when}, after its runs ended`);
  return result;
}

/** Cases by outcome: each count is of cases. */
function tally(of: readonly Case[]): Record<string, number> {
  const where = (test: (c: Case) => boolean): number => of.filter(test).length;
  const has = (kind: ViolationKind) => (c: Case) => c.ledger.count(kind) > 0;
  return {
    opened: where((c) => c.outcome === 'opened'),
    refused: where((c) => c.outcome === 'refused'),
    salvaged: where((c) => c.salvaged),
    failed: where(has('refusal')),
    inconsistent: where(has('inconsistent')),
    lost: where(has('lost')),
    unrecovered: where(has('unrecovered')),
    lost_silently: where((c) => c.outcome === 'opened' && c.ledger.lostAllowed > 0),
  };
}

/** The summary line: every count over all cases, then the counts that are not zero by damage. */
function summary(cases: readonly Case[]): string {
  const byDamage = DAMAGES.map((damage) => {
    const counts = Object.entries(tally(cases.filter((c) => c.damage === damage)));
    return `${damage}(${counts
      .filter(([, n]) => n > 0)
      .map(([name, n]) => `${name}=${n}`)
      .join(',')})`;
  });
  const counts = Object.entries(tally(cases)).map(([name, n]) => `${name}=${n}`);
  return `logdamage: seed=${seed} cases=${cases.length} ${counts.join(' ')} by_damage=${byDamage.join(' ')}`;
}

it(
  `never opens a damaged log into a wrong history: a consistent state or LOG_DAMAGED (seed ${seed})`,
  async () => {
    const random = seededRandom(seed);
    const began = Date.now();
    const cases: Case[] = [];
    for (let i = 0; i < LIVES; i++) {
      const life = await killedLife(i, random);
      for (const damage of DAMAGES) {
        cases.push(await checkCase(life, damage, random, cases.length + 1));
      }
    }
    const failing = cases.filter((c) => c.ledger.violations.length > 0);
    for (const c of failing.slice(0, SHOWN)) {
      console.log(`${c.when}: ${c.outcome}${c.salvaged ? ', salvaged' : ''}`);
      for (const v of c.ledger.violations.slice(0, 4)) console.log(`  ${v.kind}: ${v.message}`);
    }
    console.log(`${summary(cases)} time=${Math.round((Date.now() - began) / 1000)}s`);
    expect(failing.map((c) => `${c.when}: ${c.ledger.violations[0]!.message}`)).toEqual([]);
  },
  10 * 60_000,
);
