import { closeSync, openSync, writeSync } from 'node:fs';
import { setTimeout as delay } from 'node:timers/promises';
import { workflow, type AnyWorkflow } from '@cairn/core';
import { z } from 'zod';
import { isDeepStrictEqual } from 'node:util';
import type { Run, Task } from '@cairn/store';
import { mix } from './torture-workflows.js';

/**
 * The workload of the power-cut and log-damage tests (test/powercut.test.ts,
 * test/log-damage.test.ts): a chain whose history shows when it contradicts itself.
 *
 * A run goes through `STAGES` in order, the steps of a stage in parallel: ten sequential
 * steps, four parallel ones and a step joining them, a wait for input the driver answers,
 * ten more sequential steps. Every step returns `{ in, nonce, out }`: the input it was given
 * (computed by `inputOf` from the values before it), a random nonce, and `out`, a hash of
 * both. So step i+1's recorded `in` must be step i's recorded `out`: a step that went back to
 * an older state and ran again (a new nonce) while later steps kept their records shows as a
 * broken chain. `checkChain` checks a run's records against this.
 *
 * Every execution of a step appends `runId:taskId:attempt` to the journal first (as the
 * torture workflows do, test/helpers/torture-workflows.ts).
 */

export const CHAIN_WORKFLOW = 'powercut-chain';
export const WAIT = 'approval';
const PARALLEL = ['p0', 'p1', 'p2', 'p3'];
const seq = (from: number, to: number): string[][] =>
  Array.from({ length: to - from + 1 }, (_, i) => [`s${from + i}`]);

/** The stages of a run, in order; the tasks of a stage run in parallel. */
export const STAGES: readonly (readonly string[])[] = [
  ...seq(1, 10),
  PARALLEL,
  ['join'],
  [WAIT],
  ...seq(11, 20),
];
const LAST_STEP = 's20';
const STAGE_OF = new Map(STAGES.flatMap((stage, k) => stage.map((id) => [id, k] as const)));

export const ChainInput = z.object({ n: z.number().int() });
export const Decision = z.object({ amount: z.number().int(), by: z.string() });
export type DecisionData = z.output<typeof Decision>;

/** A run of the plan (the shape test/children/torture-engine.ts reads). */
export interface ChainRun {
  readonly id: string;
  readonly workflow: string;
  readonly input: { readonly n: number };
}

/** What a step records. */
export interface StepOutput {
  readonly in: unknown;
  readonly nonce: number;
  readonly out: number;
}

/**
 * The input of step `taskId`, from the run's input and `value(id)`: the `out` of an earlier
 * step, or the data the wait was answered with.
 */
export function inputOf(taskId: string, n: number, value: (id: string) => unknown): unknown {
  if (taskId === 's1') return n;
  if (PARALLEL.includes(taskId)) return { from: value('s10'), branch: taskId };
  if (taskId === 'join') return PARALLEL.map(value);
  if (taskId === 's11') return { from: value('join'), decision: value(WAIT) };
  return value(`s${Number(taskId.slice(1)) - 1}`);
}

const outOf = (taskId: string, input: unknown, nonce: number): number =>
  mix(taskId, JSON.stringify(input), nonce);

/** `count` runs, and the data each one's wait is answered with. */
export function makeChainPlan(
  count: number,
  random: () => number,
): { plan: ChainRun[]; decisions: Map<string, DecisionData> } {
  const plan: ChainRun[] = [];
  const decisions = new Map<string, DecisionData>();
  for (let i = 0; i < count; i++) {
    const id = `c${String(i).padStart(4, '0')}`;
    plan.push({ id, workflow: CHAIN_WORKFLOW, input: { n: Math.floor(random() * 1_000_000) } });
    decisions.set(id, { amount: Math.floor(random() * 500), by: `approver-${i}` });
  }
  return { plan, decisions };
}

export interface ChainWorkload {
  readonly workflows: AnyWorkflow[];
  /** The output the last execution of a step returned in this process (for its acknowledgement). */
  outputOf(runId: string, taskId: string): StepOutput | undefined;
  /** Closes the journal. */
  close(): void;
}

export interface ChainOptions {
  /** The journal file; none when absent. */
  readonly journal?: string;
  /** Scales the time each step takes (5-25 ms). @default 1 */
  readonly pace?: number;
}

export function chainWorkload(options: ChainOptions = {}): ChainWorkload {
  const fd = options.journal === undefined ? null : openSync(options.journal, 'a');
  const pace = options.pace ?? 1;
  const outputs = new Map<string, StepOutput>();
  const chain = workflow(CHAIN_WORKFLOW, {
    input: ChainInput,
    async run(ctx, { n }) {
      const values = new Map<string, unknown>();
      const value = (id: string): unknown => values.get(id);
      for (const stage of STAGES) {
        const results = await Promise.all(
          stage.map(async (id): Promise<unknown> => {
            if (id === WAIT) return ctx.waitForInput(WAIT, { schema: Decision });
            const input = inputOf(id, n, value);
            const output = await ctx.step(id, async (s) => {
              if (fd !== null) writeSync(fd, `${s.runId}:${s.taskId}:${s.attempt}\n`);
              await delay(Math.round(pace * (5 + (mix(s.runId, s.taskId) % 20))));
              const nonce = Math.floor(Math.random() * 1_000_000_000);
              const recorded: StepOutput = { in: input, nonce, out: outOf(id, input, nonce) };
              outputs.set(`${s.runId}/${s.taskId}`, recorded);
              return recorded;
            });
            return output.out;
          }),
        );
        stage.forEach((id, k) => values.set(id, results[k]));
      }
      return { v: value(LAST_STEP) };
    },
  });
  return {
    workflows: [chain],
    outputOf: (runId, taskId) => outputs.get(`${runId}/${taskId}`),
    close: () => {
      if (fd !== null) closeSync(fd);
    },
  };
}

/**
 * What is wrong with a run's records, as a chain run (none when its history holds): the
 * stages done form a prefix (a stage has tasks only once every earlier one completed), each
 * completed step's output is whole and its `in` follows from the values before it, the wait
 * holds the decision, and the run record agrees with its tasks.
 */
export function checkChain(run: Run, tasks: readonly Task[], decision: DecisionData): string[] {
  const problems: string[] = [];
  const byId = new Map<string, Task>();
  for (const task of tasks) {
    if (task.taskId.startsWith('$')) continue;
    if (!STAGE_OF.has(task.taskId)) problems.push(`has a task ${task.taskId} it never calls`);
    byId.set(task.taskId, task);
  }
  const value = (id: string): unknown => {
    const task = byId.get(id)!;
    return id === WAIT ? task.output : (task.output as StepOutput).out;
  };
  const n = (run.input as { n: number }).n;
  // The first stage not wholly completed: nothing after it may have started.
  const open = STAGES.findIndex((stage) =>
    stage.some((id) => byId.get(id)?.status !== 'completed'),
  );
  const done = open === -1 ? STAGES.length : open;
  for (let k = done + 1; k < STAGES.length; k++) {
    for (const id of STAGES[k]!) {
      const task = byId.get(id);
      if (task === undefined) continue;
      const behind = STAGES[done]!.find((b) => byId.get(b)?.status !== 'completed')!;
      problems.push(
        `${id} is ${task.status} while ${behind} is ${byId.get(behind)?.status ?? 'missing'}`,
      );
    }
  }
  for (const [id, task] of byId) {
    if (task.status === 'failed') problems.push(`${id} failed: ${task.error?.code}`);
    if (task.status !== 'completed' || (STAGE_OF.get(id) ?? Infinity) > done) continue;
    if (id === WAIT) {
      if (!isDeepStrictEqual(task.output, decision)) {
        problems.push(`${WAIT} holds ${JSON.stringify(task.output)}, not the decision sent`);
      }
      continue;
    }
    const output = task.output as Partial<StepOutput> | undefined;
    if (output?.nonce === undefined || output.out !== outOf(id, output.in, output.nonce)) {
      problems.push(`${id} recorded a damaged output ${JSON.stringify(output)}`);
      continue;
    }
    const expected = inputOf(id, n, value);
    if (!isDeepStrictEqual(output.in, expected)) {
      problems.push(
        `${id} recorded input ${JSON.stringify(output.in)}, but what came before it ` +
          `recorded ${JSON.stringify(expected)}`,
      );
    }
  }
  if (run.status === 'completed') {
    if (done < STAGES.length) problems.push(`completed, but ${STAGES[done]!.join(',')} not`);
    else if (!isDeepStrictEqual(run.output, { v: value(LAST_STEP) })) {
      problems.push(`completed with ${JSON.stringify(run.output)}, its last step has another`);
    }
  } else if (run.status === 'paused') {
    if (run.pausedTaskId !== WAIT || byId.get(WAIT)?.status !== 'waiting') {
      problems.push(`paused at ${run.pausedTaskId}, which is ${byId.get(WAIT)?.status}`);
    }
  } else if (run.status === 'failed' || run.status === 'cancelled') {
    problems.push(`${run.status}: ${run.error?.code} ${run.error?.message}`);
  }
  return problems;
}
