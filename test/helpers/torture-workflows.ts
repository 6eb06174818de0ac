import { openSync, writeSync } from 'node:fs';
import { setTimeout as delay } from 'node:timers/promises';
import { TerminalError, workflow, type AnyWorkflow, type WorkflowContext } from '@cairn/core';
import { z } from 'zod';

/**
 * The workflows of the torture test (test/torture.test.ts), shared by the driver (which
 * runs them once in memory to learn the expected outputs) and the child engine it kills.
 * Every output is a function of the run's input and the payloads its waits receive, never
 * of timing, run ids or attempts, so a run that was killed twenty times ends exactly like
 * one that never was.
 *
 * Every execution of a step appends `runId:taskId:attempt` to the journal (when one is
 * given) before anything else, synchronously: the journal is the side effect the engine
 * must not repeat once the step's checkpoint is committed.
 */

export const Input = z.object({ n: z.number().int().min(0), width: z.number().int().min(1) });
export type TortureInput = z.output<typeof Input>;

export const Approval = z.object({
  approved: z.boolean(),
  by: z.string(),
  amount: z.number().int().min(0),
});
export type ApprovalData = z.output<typeof Approval>;

/** Kinds of run, with how often the plan draws each. */
export const KINDS = {
  seq: 2,
  par: 2,
  retry: 2,
  wait: 2,
  waits: 1,
  sleep: 2,
  parent: 2,
  mixed: 3,
  deadline: 1,
  fallback: 1,
  doomed: 1,
} as const;
export type Kind = keyof typeof KINDS;

/** The waits of each kind that the driver answers (the `deadline` wait times out instead). */
export const WAITS: Partial<Record<Kind, readonly string[]>> = {
  wait: ['approval'],
  waits: ['legal', 'finance'],
  mixed: ['sign-off'],
};

export interface PlannedRun {
  readonly id: string;
  readonly kind: Kind;
  readonly workflow: string;
  readonly input: TortureInput;
}

export interface Decision {
  readonly runId: string;
  readonly taskId: string;
  readonly data: ApprovalData;
}

/** FNV-1a over the parts: the deterministic "work" every step does. */
export function mix(...parts: readonly (string | number)[]): number {
  let h = 0x811c9dc5;
  for (const ch of parts.join('|')) {
    h ^= ch.charCodeAt(0);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h % 1_000_000;
}

/** The batch: `count` runs drawn from `random`, and the payload each of their waits gets. */
export function makePlan(
  count: number,
  random: () => number,
): { plan: PlannedRun[]; decisions: Decision[] } {
  const bag: Kind[] = [];
  for (const [kind, weight] of Object.entries(KINDS) as [Kind, number][]) {
    for (let i = 0; i < weight; i++) bag.push(kind);
  }
  const plan: PlannedRun[] = [];
  const decisions: Decision[] = [];
  for (let i = 0; i < count; i++) {
    // The first runs cover every kind; the rest are drawn.
    const kinds = Object.keys(KINDS) as Kind[];
    const kind = i < kinds.length ? kinds[i]! : bag[Math.floor(random() * bag.length)]!;
    const id = `r${String(i).padStart(4, '0')}-${kind}`;
    const input = { n: Math.floor(random() * 1_000_000), width: 1 + Math.floor(random() * 4) };
    plan.push({ id, kind, workflow: `torture-${kind}`, input });
    for (const taskId of WAITS[kind] ?? []) {
      decisions.push({
        runId: id,
        taskId,
        data: {
          approved: random() < 0.8,
          by: `approver-${i}-${taskId}`,
          amount: Math.floor(random() * 500),
        },
      });
    }
  }
  return { plan, decisions };
}

export interface TortureOptions {
  /** The journal file; none when absent (the driver's reference run). */
  readonly journal?: string;
  /** Scales the time each step takes. @default 1 */
  readonly pace?: number;
}

/** The workflows, bound to a journal. */
export function tortureWorkflows(options: TortureOptions = {}): AnyWorkflow[] {
  const fd = options.journal === undefined ? null : openSync(options.journal, 'a');
  const pace = options.pace ?? 1;

  interface WorkOptions {
    /** The first `failFirst` attempts fail (then retries succeed). */
    readonly failFirst?: number;
    /** Every attempt fails: a plain error with 2 attempts, or a `TerminalError`. */
    readonly fail?: 'retried' | 'terminal';
  }

  /** A step: journals the execution, takes 10-60 ms, returns a hash of its inputs. */
  const work = (ctx: WorkflowContext, name: string, value: number, opts: WorkOptions = {}) =>
    ctx.step(
      name,
      async (s) => {
        if (fd !== null) writeSync(fd, `${s.runId}:${s.taskId}:${s.attempt}\n`);
        await delay(Math.round(pace * (10 + (mix(s.runId, s.taskId) % 50))));
        if (opts.fail === 'terminal') throw new TerminalError(`${name} can never succeed`);
        if (opts.fail === 'retried') throw new Error(`${name} fails on every attempt`);
        if (s.attempt <= (opts.failFirst ?? 0)) {
          throw new Error(`attempt ${s.attempt} of ${name} fails on purpose`);
        }
        return mix(name, value);
      },
      opts.failFirst !== undefined || opts.fail === 'retried'
        ? { retry: { attempts: (opts.failFirst ?? 0) + 3, initialDelay: 15, jitter: 0 } }
        : {},
    );

  const kid = workflow('torture-kid', {
    input: Input,
    async run(ctx, { n }) {
      const k1 = await work(ctx, 'k1', n);
      await ctx.sleep('k-nap', 20 + (n % 60));
      const k2 = await work(ctx, 'k2', k1, { failFirst: 1 });
      const k3 = await work(ctx, 'k3', k2);
      return { k2: k3 };
    },
  });

  const seq = workflow('torture-seq', {
    input: Input,
    async run(ctx, { n, width }) {
      let v = n;
      for (let i = 1; i <= 2 * width + 4; i++) v = await work(ctx, `s${i}`, v);
      ctx.log('sequence done', { v });
      return { v };
    },
  });

  const par = workflow('torture-par', {
    input: Input,
    async run(ctx, { n, width }) {
      const wave = async (name: string, from: number): Promise<number> => {
        const parts = await Promise.all(
          Array.from({ length: width + 2 }, (_, i) => work(ctx, `${name}${i}`, from + i)),
        );
        return work(
          ctx,
          `${name}-sum`,
          parts.reduce((a, b) => a + b, 0),
        );
      };
      const first = await wave('p', n);
      const second = await wave('q', first);
      return { first, second };
    },
  });

  const retry = workflow('torture-retry', {
    input: Input,
    async run(ctx, { n, width }) {
      const a = await work(ctx, 'flaky', n, { failFirst: 1 });
      const b = await work(ctx, 'flaky-twice', a, { failFirst: 2 });
      let c = b;
      for (let i = 1; i <= width + 1; i++) c = await work(ctx, `after${i}`, c);
      return { a, b, c };
    },
  });

  const wait = workflow('torture-wait', {
    input: Input,
    async run(ctx, { n }) {
      const p = await work(ctx, 'prepare', await work(ctx, 'load', n));
      const d = await ctx.waitForInput('approval', { schema: Approval });
      if (!d.approved) return { p, rejectedBy: d.by };
      const applied = await work(ctx, 'apply', p + d.amount);
      const notified = await work(ctx, 'notify', applied);
      return { p, notified, by: d.by };
    },
  });

  const waits = workflow('torture-waits', {
    input: Input,
    async run(ctx, { n }) {
      const [legal, finance, m] = await Promise.all([
        ctx.waitForInput('legal', { schema: Approval }),
        ctx.waitForInput('finance', { schema: Approval }),
        work(ctx, 'meanwhile', n).then((m1) => work(ctx, 'meanwhile-2', m1)),
      ]);
      const merged = await work(ctx, 'merge', m + legal.amount + finance.amount);
      return { merged, approved: legal.approved && finance.approved };
    },
  });

  const sleep = workflow('torture-sleep', {
    input: Input,
    async run(ctx, { n }) {
      const a = await work(ctx, 'a', n);
      await ctx.sleep('nap', 20 + (n % 180));
      const b = await work(ctx, 'b', a);
      await ctx.sleep('nap-2', 20 + ((n * 7) % 100));
      const c = await work(ctx, 'c', b);
      const d = await work(ctx, 'd', c);
      return { d };
    },
  });

  const parent = workflow('torture-parent', {
    input: Input,
    async run(ctx, { n }) {
      const before = await work(ctx, 'before', await work(ctx, 'prepare', n));
      const x = await ctx.child('kid', kid, { n: before, width: 1 });
      const [y, side] = await Promise.all([
        ctx.child('kid-b', kid, { n: n + 1, width: 1 }),
        work(ctx, 'side', n),
      ]);
      const after = await work(ctx, 'after', x.k2 + y.k2 + side);
      const done = await work(ctx, 'report', after);
      return { done };
    },
  });

  const mixed = workflow('torture-mixed', {
    input: Input,
    async run(ctx, { n }) {
      const a = await work(ctx, 'start', n);
      const [left, right, helper] = await Promise.all([
        work(ctx, 'left', a),
        (async () => {
          await ctx.sleep('pause', 20 + (n % 120));
          return work(ctx, 'right', a);
        })(),
        ctx.child('helper', kid, { n: a, width: 1 }),
      ]);
      const d = await ctx.waitForInput('sign-off', { schema: Approval });
      const finish = await work(ctx, 'finish', left + right + helper.k2 + d.amount, {
        failFirst: 1,
      });
      const archived = await work(ctx, 'archive', finish);
      return { archived, approved: d.approved };
    },
  });

  const deadline = workflow('torture-deadline', {
    input: Input,
    async run(ctx, { n }) {
      const asked = await work(ctx, 'ask', n);
      const d = await ctx.waitForInput('maybe', {
        schema: Approval,
        timeout: 50 + (n % 150),
        onTimeout: { default: { approved: false, by: 'nobody', amount: 0 } },
      });
      const settled = await work(ctx, 'settle', asked + d.amount);
      return { settled, by: d.by };
    },
  });

  const fallback = workflow('torture-fallback', {
    input: Input,
    async run(ctx, { n }) {
      const tried = await work(ctx, 'try', n);
      try {
        await work(ctx, 'boom', tried, { fail: 'retried' });
        return { via: 'boom' };
      } catch {
        const saved = await work(ctx, 'fallback', tried);
        return { via: 'fallback', saved };
      }
    },
  });

  const doomed = workflow('torture-doomed', {
    input: Input,
    async run(ctx, { n }) {
      const ok = await work(ctx, 'ok', n);
      await work(ctx, 'fatal', ok, { fail: 'terminal' });
      return { ok };
    },
  });

  return [kid, seq, par, retry, wait, waits, sleep, parent, mixed, deadline, fallback, doomed];
}
