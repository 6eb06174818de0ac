import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, describe, expect, it } from 'vitest';
import { createEngine, MemoryStore } from '@cairn/core';
import { LevelStore, type Run, type Task } from '@cairn/store';
import { allWorkflows } from '@cairn/examples/workflows';
import { Child } from './helpers/child.js';
import { seededRandom, testSeed } from './helpers/random.js';
import { tempDir } from './helpers/temp.js';

/**
 * Crash recovery of every example workflow, with real processes. A child engine runs a batch
 * of orders, LLM reports, expense approvals and contract reviews on one LevelDB directory and
 * is killed with SIGKILL at a random moment, again and again; the parent sends the approvals
 * through the child's stdin at random moments (some land before the run reaches its wait).
 * After every kill the parent reads the store and the journal of side effects the example
 * services keep. A last child runs until every run has ended.
 *
 * What must hold: every run completes with the output the same inputs give in one process
 * without crashes; a step whose completion was checkpointed never runs again (its journal
 * lines do not change after a kill saw it completed); a step never ran more times than the
 * attempts its record counts; and the store stays consistent.
 *
 * Replay a schedule with CAIRN_TEST_SEED=<seed>; CAIRN_TEST_KILLS sets the number of kills.
 */

const seed = testSeed();
const random = seededRandom(seed);
const KILLS = Number(process.env.CAIRN_TEST_KILLS ?? 8);
/** Scales the fake services' delays in the children. */
const SPEED = '1';
/** Steps at once in a child: low, so the work spreads over several lives. */
const CONCURRENCY = '2';
/** The longest a child lives before it is killed, from the moment its engine is open. */
const MAX_LIFE_MS = 800;

/** Steps whose fake service appends to the journal (the others compute locally). */
const JOURNALED =
  /^(reserve|charge|pick|pack|confirm|outline|draft|summarise|pay|notify|notify-employee|notify-rejection)(#\d+)?$/;

interface PlannedRun {
  readonly id: string;
  readonly workflow: string;
  readonly input: unknown;
}

interface Decision {
  readonly runId: string;
  readonly taskId: string;
  readonly data: unknown;
}

interface Snapshot {
  readonly runs: Run[];
  readonly tasks: Map<string, Task[]>;
  /** Journal lines per idempotency key (`runId:taskId`). */
  readonly journal: Map<string, number>;
}

const dirs: Array<() => Promise<void>> = [];
afterAll(async () => {
  for (const cleanup of dirs) await cleanup();
});

/** The batch: inputs drawn from the seed, run ids fixed, so outputs can be computed apart. */
function makePlan(): { plan: PlannedRun[]; decisions: Decision[] } {
  const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)]!;
  const plan: PlannedRun[] = [];
  const decisions: Decision[] = [];
  for (let i = 1; i <= 4; i++) {
    const count = 1 + Math.floor(random() * 3);
    plan.push({
      id: `order-${i}`,
      workflow: 'order-pipeline',
      input: {
        orderId: `o${i}-${Math.floor(random() * 1000)}`,
        customer: `customer${i}@example.com`,
        items: Array.from({ length: count }, (_, n) => ({
          sku: `${pick(['mug', 'tee', 'cap', 'pen'])}-${n}`,
          quantity: 1 + Math.floor(random() * 4),
          price: Math.round((1 + random() * 50) * 100) / 100,
        })),
      },
    });
  }
  for (let i = 1; i <= 4; i++) {
    plan.push({
      id: `report-${i}`,
      workflow: 'llm-report',
      input: {
        topic: `${pick(['durable', 'embedded', 'replayed'])} workflows ${i}`,
        sections: 2 + Math.floor(random() * 3),
      },
    });
  }
  for (let i = 1; i <= 3; i++) {
    const id = `expense-${i}`;
    plan.push({
      id,
      workflow: 'expense-approval',
      input: {
        id: `exp-${i}`,
        employee: `employee${i}@example.com`,
        amount: 600 + Math.floor(random() * 2000),
        description: `trip ${i}`,
      },
    });
    decisions.push({
      runId: id,
      taskId: 'manager-approval',
      data: { approved: i !== 3, by: `manager-${i}` },
    });
  }
  for (let i = 1; i <= 2; i++) {
    const id = `contract-${i}`;
    plan.push({
      id,
      workflow: 'contract-review',
      input: { contract: `MSA-${i}`, value: 10_000 * i },
    });
    decisions.push({
      runId: id,
      taskId: 'finance-approval',
      data: { approved: true, by: 'finance-lead' },
    });
    decisions.push({
      runId: id,
      taskId: 'legal-approval',
      data: { approved: i === 1, by: 'legal-counsel' },
    });
  }
  return { plan, decisions };
}

/** The outputs of the same runs in this process, on a memory store, without crashes. */
async function expectedOutputs(
  plan: readonly PlannedRun[],
  decisions: readonly Decision[],
): Promise<Map<string, unknown>> {
  const store = new MemoryStore();
  const engine = await createEngine({ store, workflows: allWorkflows });
  try {
    for (const run of plan) await engine.start(run.workflow, run.input, { id: run.id });
    for (const d of decisions) await engine.resumeTask(d.runId, d.taskId, d.data);
    const outputs = new Map<string, unknown>();
    for (const run of plan) outputs.set(run.id, await engine.handle(run.id).result());
    return outputs;
  } finally {
    await engine.close();
    await store.close();
  }
}

function readJournal(file: string): Map<string, number> {
  const counts = new Map<string, number>();
  let text = '';
  try {
    text = readFileSync(file, 'utf8');
  } catch {
    return counts;
  }
  for (const line of text.split('\n')) {
    if (line === '') continue;
    const { key } = JSON.parse(line) as { key: string };
    counts.set(key, (counts.get(key) ?? 0) + 1);
  }
  return counts;
}

/** Reads every run and task (the store must not be held by a child), and checks integrity. */
async function inspect(path: string, journalFile: string, when: string): Promise<Snapshot> {
  const store = new LevelStore({ path });
  await store.open();
  try {
    const report = await store.verify();
    expect(report.problems, when).toEqual([]);
    expect(report.ok, when).toBe(true);
    const runs: Run[] = [];
    let cursor: string | null = null;
    do {
      const page = await store.listRuns({ limit: 1000, cursor });
      expect(page.corrupt, when).toEqual([]);
      runs.push(...page.items);
      cursor = page.cursor;
    } while (cursor !== null);
    const tasks = new Map<string, Task[]>();
    for (const run of runs) tasks.set(run.id, await store.listTasks(run.id));
    return { runs, tasks, journal: readJournal(journalFile) };
  } finally {
    await store.close();
  }
}

/** Steps of the snapshot, by idempotency key. */
function stepsByKey(snapshot: Snapshot): Map<string, Task> {
  const steps = new Map<string, Task>();
  for (const tasks of snapshot.tasks.values()) {
    for (const task of tasks) {
      if (task.kind === 'step') steps.set(`${task.runId}:${task.taskId}`, task);
    }
  }
  return steps;
}

/**
 * At-least-once and no phantom runs: every journal line belongs to a step the store knows,
 * and a step's side effect happened at most once per attempt its record counts.
 */
function checkAttempts(snapshot: Snapshot, when: string): void {
  const steps = stepsByKey(snapshot);
  for (const [key, lines] of snapshot.journal) {
    const step = steps.get(key);
    expect(step, `${when}: journal key ${key} has no step record`).toBeDefined();
    expect(lines, `${when}: ${key} ran more often than its recorded attempts`).toBeLessThanOrEqual(
      step!.attempts.length,
    );
  }
}

describe('the example workflows under SIGKILL', () => {
  it(`recover every run, never re-running a checkpointed step (seed ${seed})`, async () => {
    const { path: dir, cleanup } = await tempDir('examples');
    dirs.push(cleanup);
    const storeDir = join(dir, 'store');
    const journalFile = join(dir, 'journal.ndjson');
    const planFile = join(dir, 'plan.json');
    const { plan, decisions } = makePlan();
    writeFileSync(planFile, JSON.stringify(plan));
    const expected = await expectedOutputs(plan, decisions);
    const env = {
      ...process.env,
      CAIRN_EXAMPLES_JOURNAL: journalFile,
      CAIRN_EXAMPLES_SPEED: SPEED,
    };
    const spawnEngine = (final: boolean): Child => {
      const args = [storeDir, planFile, CONCURRENCY, ...(final ? ['--exit-when-done'] : [])];
      const child = new Child('example-engine.ts', args, { env });
      // A command written just as the child dies must not fail the test process.
      child.process.stdin!.on('error', () => undefined);
      return child;
    };
    const keyOf = (d: Decision): string => `${d.runId} ${d.taskId}`;
    const resumeLine = (d: Decision): string => `resume ${keyOf(d)} ${JSON.stringify(d.data)}\n`;

    /** Approvals a child acknowledged: resumed, or kept (durably) for a wait not reached. */
    const acked = new Set<string>();
    /** Approvals written to a child that died before it answered. */
    const unanswered = new Set<string>();
    /** Resumes refused where they should not have been. */
    const refused: string[] = [];
    const readAnswers = (child: Child, sent: readonly Decision[]): void => {
      const answered = new Set<string>();
      for (const line of child.lines) {
        const [word, runId, taskId, code] = line.split(' ');
        const key = `${runId} ${taskId}`;
        if (word === 'resume-ok') acked.add(key);
        if (word !== 'resume-ok' && word !== 'resume-err') continue;
        answered.add(key);
        // NOT_WAITING is right only when an earlier life got the same input and died before
        // it answered: that input may have been kept, and has answered the wait since.
        if (word === 'resume-err' && !(code === 'NOT_WAITING' && unanswered.has(key))) {
          refused.push(line);
        }
      }
      for (const d of sent) if (!answered.has(keyOf(d))) unanswered.add(keyOf(d));
    };

    /** Journal lines of each step at the first kill after which it was seen completed. */
    const checkpointed = new Map<string, number>();
    let outstanding = [...decisions];
    let interruptedSteps = 0;
    let killedMidWork = 0;

    for (let cycle = 0; cycle < KILLS; cycle++) {
      const when = `after kill ${cycle + 1}`;
      const child = spawnEngine(false);
      await child.waitForLine((line) => line === 'ready', 30_000);
      const life = Math.floor(random() * MAX_LIFE_MS);
      const sent = outstanding.filter((d) => !acked.has(keyOf(d)) && random() < 0.3);
      const timers = sent.map((d) =>
        setTimeout(() => child.process.stdin!.write(resumeLine(d)), Math.floor(random() * life)),
      );
      await sleep(life);
      for (const timer of timers) clearTimeout(timer);
      const exit = await child.kill();
      expect(exit.signal, `${when}: the child died on its own: ${child.stderr}`).toBe('SIGKILL');
      readAnswers(child, sent);
      expect(
        child.lines.filter((l) => l.startsWith('problem') || l.startsWith('run-failed')),
        when,
      ).toEqual([]);

      const snapshot = await inspect(storeDir, journalFile, when);
      checkAttempts(snapshot, when);
      const steps = stepsByKey(snapshot);
      let running = 0;
      for (const [key, step] of steps) {
        if (step.status === 'running') running++;
        if (step.status === 'completed' && !checkpointed.has(key)) {
          checkpointed.set(key, snapshot.journal.get(key) ?? 0);
        }
      }
      interruptedSteps += running;
      if (running > 0) killedMidWork++;
      const waits = new Set(
        [...snapshot.tasks.values()]
          .flat()
          .filter((t) => t.kind === 'wait' && t.status === 'completed')
          .map((t) => `${t.runId}/${t.taskId}`),
      );
      outstanding = outstanding.filter((d) => !waits.has(`${d.runId}/${d.taskId}`));
      const completedRuns = snapshot.runs.filter((r) => r.status === 'completed').length;
      console.log(
        `kill ${cycle + 1} after ${life} ms: ${completedRuns}/${snapshot.runs.length} runs completed, ` +
          `${checkpointed.size} steps checkpointed, ${running} steps cut short, ` +
          `${outstanding.length} approvals outstanding`,
      );
    }

    // The last life: every approval not yet given is sent (those kept before are not: the
    // runs must find them in the store), and the batch runs to the end.
    const last = spawnEngine(true);
    const sent = outstanding.filter((d) => !acked.has(keyOf(d)));
    for (const d of sent) last.process.stdin!.write(resumeLine(d));
    await last.waitForLine((line) => line === 'all-done', 30_000);
    const exit = await last.exited;
    expect(exit, last.stderr).toEqual({ code: 0, signal: null });
    readAnswers(last, sent);
    expect(last.lines.filter((l) => l.startsWith('problem') || l.startsWith('run-failed'))).toEqual(
      [],
    );

    const final = await inspect(storeDir, journalFile, 'at the end');
    checkAttempts(final, 'at the end');

    // Every run completed with the output an uninterrupted run gives.
    for (const run of plan) {
      const stored = final.runs.find((r) => r.id === run.id);
      expect(stored?.status, run.id).toBe('completed');
      expect(stored?.output, run.id).toEqual(expected.get(run.id));
    }
    // Every approval answered its wait, once, with what the parent sent.
    for (const d of decisions) {
      const wait = final.tasks.get(d.runId)?.find((t) => t.taskId === d.taskId);
      expect(wait?.status, keyOf(d)).toBe('completed');
      expect(wait?.output, keyOf(d)).toEqual(d.data);
      expect(['test-parent', 'inbox'], keyOf(d)).toContain(wait?.resumedBy);
    }
    // One shipping child per order, never a second one, each with its tracking id.
    const ships = final.runs.filter((r) => r.workflow === 'ship-order');
    expect(ships.map((r) => r.parentRunId).sort()).toEqual(
      plan.filter((r) => r.workflow === 'order-pipeline').map((r) => r.id),
    );
    for (const ship of ships) {
      expect(ship.status).toBe('completed');
      const order = expected.get(ship.parentRunId!) as { tracking: string };
      expect(ship.output).toEqual({ tracking: order.tracking });
    }
    expect(final.runs).toHaveLength(plan.length + ships.length);

    // A step whose completion was checkpointed never ran again.
    for (const [key, lines] of checkpointed) {
      expect(final.journal.get(key) ?? 0, `${key} ran again after its checkpoint`).toBe(lines);
    }
    // Every step that calls a service did so at least once.
    for (const [key, step] of stepsByKey(final)) {
      expect(step.status, key).toBe('completed');
      if (JOURNALED.test(step.taskId)) {
        expect(final.journal.get(key) ?? 0, key).toBeGreaterThanOrEqual(1);
      }
    }

    // The kills landed in the middle of the work, not only before or after it.
    console.log(
      `seed ${seed}: ${killedMidWork}/${KILLS} kills cut ${interruptedSteps} steps short; ` +
        `${checkpointed.size} checkpointed steps checked; ${acked.size} approvals acknowledged`,
    );
    expect(refused, 'resumes refused').toEqual([]);
    expect(killedMidWork).toBeGreaterThan(0);
  }, 120_000);
});
