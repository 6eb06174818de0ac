/** `cairn runs`, `show`, `waiting`, help, bad arguments, missing and locked stores. */
import { readdirSync } from 'node:fs';
import { LevelStore } from '@cairn/store';
import { makeRun, makeTask } from '@cairn/store/suite';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { populate, type Populated } from './fixture/populate.js';
import {
  cairn,
  tempDir,
  type ErrorOutput,
  type RunDetail,
  type RunsOutput,
  type WaitingOutput,
} from './support.js';

let dir: ReturnType<typeof tempDir>;
let ids: Populated;
let store: string[];

beforeAll(async () => {
  dir = tempDir();
  ids = await populate(dir.path);
  store = ['--store', dir.path];
});

afterAll(() => dir.remove());

describe('cairn runs', () => {
  it('lists every run newest first as a table', async () => {
    const r = await cairn(['runs', ...store]);
    expect(r.code).toBe(0);
    expect(r.stderr).toBe('');
    const lines = r.stdout.trim().split('\n');
    expect(lines[0]).toMatch(/^RUN\s+WORKFLOW\s+NAMESPACE\s+STATUS\s+CREATED\s+TOOK\s+NOTE$/);
    expect(r.stdout).toContain(`${ids.approval}  expense-approval@1  finance`);
    expect(r.stdout).toMatch(/waiting on manager-approval/);
    expect(r.stdout).toMatch(/STEP_FAILED: customers\.csv: unexpected end of input/);
    expect(r.stdout).toContain(`child of ${ids.order}`);
    expect(r.stdout).toContain('paused by an operator at cooldown');
    expect(lines.at(-1)).toBe('10 runs');
  });

  it('uses no colour when its output is not a terminal, even without NO_COLOR', async () => {
    const plain = await cairn(['runs', ...store], { env: { NO_COLOR: '' } });
    expect(plain.code).toBe(0);
    expect(plain.stdout).not.toContain('\x1b[');
    // FORCE_COLOR turns it on anywhere: the check above can tell the two apart.
    const forced = await cairn(['runs', ...store], { env: { NO_COLOR: '', FORCE_COLOR: '1' } });
    expect(forced.stdout).toContain('\x1b[');
  });

  it('--json prints the page and nothing else', async () => {
    const r = await cairn(['runs', ...store, '--json', '--status', 'paused']);
    expect(r.code).toBe(0);
    const page = r.json<{ items: { id: string; status: string }[]; cursor: string | null }>();
    expect(page.items.map((run) => run.id).sort()).toEqual(
      [ids.approval, ids.approval2, ids.contract, ids.operatorPaused].sort(),
    );
    expect(page.items.every((run) => run.status === 'paused')).toBe(true);
    expect(page.cursor).toBeNull();
  });

  it('filters by workflow, namespace, tag, age, and pages with a cursor', async () => {
    const ofWorkflow = (
      await cairn(['runs', ...store, '--json', '--workflow', 'llm-report'])
    ).json<RunsOutput>();
    expect(ofWorkflow.items.map((run: { id: string }) => run.id)).toEqual([ids.llm, ids.old[0]]);

    const finance = (
      await cairn(['runs', ...store, '--json', '--namespace', 'finance'])
    ).json<RunsOutput>();
    expect(finance.items).toHaveLength(2);

    const tagged = (await cairn(['runs', ...store, '--json', '--tag', 'q4'])).json<RunsOutput>();
    expect(tagged.items.map((run: { id: string }) => run.id)).toEqual([ids.approval]);

    const recent = (await cairn(['runs', ...store, '--json', '--since', '1d'])).json<RunsOutput>();
    expect(recent.items).toHaveLength(8);
    const older = (await cairn(['runs', ...store, '--json', '--until', '30d'])).json<RunsOutput>();
    expect(older.items.map((run: { id: string }) => run.id).sort()).toEqual([...ids.old].sort());

    const first = (await cairn(['runs', ...store, '--json', '--limit', '3'])).json<RunsOutput>();
    expect(first.items).toHaveLength(3);
    expect(first.cursor).toEqual(expect.any(String));
    const next = (
      await cairn(['runs', ...store, '--json', '--limit', '3', '--cursor', first.cursor ?? ''])
    ).json<RunsOutput>();
    expect(next.items).toHaveLength(3);
    expect(next.items[0]?.id).not.toBe(first.items[0]?.id);
  });
});

describe('cairn show', () => {
  it('draws the timeline with the parallel group, retries and the child', async () => {
    const r = await cairn(['show', ids.order, ...store, '--width', '40']);
    expect(r.code).toBe(0);
    const text = r.stdout;
    expect(text).toMatch(new RegExp(`^Run ${ids.order}  order-pipeline@1  completed`));
    const line = (task: string) => text.split('\n').find((l) => new RegExp(` ${task} `).test(l));
    // The three steps started together are bracketed, and their bars overlap on the axis.
    expect(line('┌ reserve')).toBeDefined();
    expect(line('│ reserve#2')).toBeDefined();
    expect(line('└ charge')).toMatch(/step\s+completed\s+2\s/);
    expect(text).toContain('┌│└ started together (parallel)');
    const bar = (task: string) => /│([^│]*)│/.exec(line(task) ?? '')?.[1] ?? '';
    expect(bar('validate')).toHaveLength(40);
    const span = (task: string): [number, number] => {
      const cells = bar(task);
      return [cells.search(/\S/), cells.trimEnd().length];
    };
    const [reserveStart, reserveEnd] = span('┌ reserve');
    const [chargeStart] = span('└ charge');
    expect(chargeStart).toBeLessThan(reserveEnd);
    expect(reserveStart).toBeGreaterThanOrEqual(span('validate')[1] - 1);
    expect(line('ship')).toContain(`→ ${ids.child}`);
    expect(text).toMatch(/charge attempt 1\s+STEP_FAILED: card processor timed out \(503\)/);
    expect(text).toMatch(/Children\n\s+RUN\s+TASK\s+WORKFLOW/);
    expect(text).toContain(`${ids.child}  ship  ship-order@1  completed`);
  });

  it('shows a waiting task with its schema fields and how to answer', async () => {
    const r = await cairn(['show', ids.approval, ...store]);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('paused     waiting for input on manager-approval');
    expect(r.stdout).toMatch(
      /Waiting for input\n\s+manager-approval\s+Approve 1250 for expense e-1\?/,
    );
    expect(r.stdout).toMatch(/approved: boolean\n\s+by: string\n\s+comment\?: string/);
    expect(r.stdout).toContain(`cairn resume ${ids.approval} --task manager-approval`);
    expect(r.stdout).toMatch(/Logs\n.*info\s+expense e-1 needs approval/);
  });

  it('shows token usage on model steps and the failed step with its error', async () => {
    const llm = await cairn(['show', ids.llm, ...store]);
    expect(llm.stdout).toMatch(/outline .*fake-large · 140 tok/);
    expect(llm.stdout).toMatch(/└ draft#3 /);
    const failed = await cairn(['show', ids.failed, ...store]);
    expect(failed.stdout).toMatch(/error\s+STEP_FAILED: customers\.csv/);
    expect(failed.stdout).toMatch(
      /parse attempt 1\s+STEP_FAILED \(TerminalError\): customers\.csv/,
    );
  });

  it('--json gives the run, tasks, groups, children, waiting tasks and logs', async () => {
    const d = (await cairn(['show', ids.order, ...store, '--json'])).json<RunDetail>();
    expect(d.run.id).toBe(ids.order);
    expect(d.tasks.map((t: { taskId: string }) => t.taskId)).toEqual(
      expect.arrayContaining(['validate', 'reserve', 'reserve#2', 'charge', 'ship', 'confirm']),
    );
    expect(d.groups).toContainEqual(
      expect.objectContaining({ taskIds: ['reserve', 'reserve#2', 'charge'] }),
    );
    expect(d.children.map((c: { id: string }) => c.id)).toEqual([ids.child]);
    const approval = (await cairn(['show', ids.approval, ...store, '--json'])).json<RunDetail>();
    expect(approval.waiting.map((t: { taskId: string }) => t.taskId)).toEqual(['manager-approval']);
    expect(approval.logs[0]?.message).toBe('expense e-1 needs approval');
  });

  it('names errors stored without a code by the code they report (show, runs)', async () => {
    const old = tempDir();
    try {
      const level = new LevelStore({ path: old.path });
      await level.open();
      const run = makeRun({
        status: 'failed',
        endedAt: Date.UTC(2025, 0, 1),
        error: { name: 'Error', message: 'thrown by the workflow' },
      });
      await level.createRun(run);
      const attempt = { attempt: 1, startedAt: 1, endedAt: 2 };
      await level.checkpoint({
        tasks: [
          makeTask(run, {
            taskId: 'charge',
            status: 'failed',
            attempts: [
              { ...attempt, error: { name: 'Error', message: 'busy', code: 'E_BUSY' } },
              { ...attempt, attempt: 2, error: { name: 'TypeError', message: 'gone' } },
            ],
            error: { name: 'TypeError', message: 'gone' },
          }),
        ],
      });
      await level.close();
      const r = await cairn(['show', run.id, '--store', old.path]);
      expect(r.code).toBe(0);
      expect(r.stdout).toMatch(/error\s+RUN_FAILED: thrown by the workflow/);
      expect(r.stdout).toMatch(/charge attempt 1\s+STEP_FAILED \(E_BUSY\): busy/);
      expect(r.stdout).toMatch(/charge attempt 2\s+STEP_FAILED \(TypeError\): gone/);
      expect(r.stdout).toMatch(/charge\s+step\s+failed .*STEP_FAILED$/m);
      const runs = await cairn(['runs', '--store', old.path]);
      expect(runs.stdout).toMatch(/RUN_FAILED: thrown by the workflow/);
    } finally {
      old.remove();
    }
  });

  it('an unknown run is exit 3 with one line', async () => {
    const r = await cairn(['show', 'no-such-run', ...store]);
    expect(r.code).toBe(3);
    expect(r.errLines).toEqual(['cairn: No run with id "no-such-run"']);
    const json = await cairn(['show', 'no-such-run', ...store, '--json']);
    expect(json.code).toBe(3);
    expect(json.json<ErrorOutput>().error.code).toBe('NOT_FOUND');
  });
});

describe('cairn waiting', () => {
  it('lists the approvals inbox with the fields each task expects', async () => {
    const r = await cairn(['waiting', ...store]);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^RUN\s+TASK\s+WORKFLOW\s+WAITING\s+DEADLINE\s+EXPECTS/);
    expect(r.stdout).toContain('{ approved: boolean, by: string, comment?: string }');
    expect(r.stdout).toContain('Approve 1250 for expense e-1?');
    expect(r.stdout.trim().split('\n').at(-1)).toBe('4 tasks waiting');
  });

  it('filters by namespace and workflow; --json has the schema', async () => {
    const finance = (
      await cairn(['waiting', ...store, '--namespace', 'finance', '--json'])
    ).json<WaitingOutput>();
    expect(finance.items.map((i: { runId: string }) => i.runId).sort()).toEqual(
      [ids.approval, ids.approval2].sort(),
    );
    expect(finance.items[0]?.schema.properties.approved).toEqual({ type: 'boolean' });
    const contract = (
      await cairn(['waiting', ...store, '--workflow', 'contract-review', '--json'])
    ).json<WaitingOutput>();
    expect(contract.items.map((i: { taskId: string }) => i.taskId)).toEqual([
      'finance-approval',
      'legal-approval',
    ]);
  });

  it('pages with --limit and the --cursor it prints, filters included, to the same list', async () => {
    const key = (i: { runId: string; taskId: string }): string => `${i.runId}/${i.taskId}`;
    for (const filter of [[], ['--namespace', 'finance'], ['--workflow', 'contract-review']]) {
      const all = (await cairn(['waiting', ...store, ...filter, '--json'])).json<WaitingOutput>();
      expect(all.cursor).toBeNull();
      const paged: string[] = [];
      let cursor: string | null = null;
      let pages = 0;
      do {
        const args = ['waiting', ...store, ...filter, '--json', '--limit', '1'];
        const page: WaitingOutput = (
          await cairn(cursor === null ? args : [...args, '--cursor', cursor])
        ).json<WaitingOutput>();
        expect(page.items.length).toBeLessThanOrEqual(1);
        paged.push(...page.items.map(key));
        cursor = page.cursor;
        pages++;
      } while (cursor !== null && pages < 10);
      expect(paged).toEqual(all.items.map(key));
    }
    const table = await cairn(['waiting', ...store, '--limit', '3']);
    expect(table.code).toBe(0);
    expect(table.stdout).toMatch(/More: cairn waiting … --cursor \S+/);
  });

  it('a cursor that is not one is refused with its code', async () => {
    const r = await cairn(['waiting', ...store, '--json', '--cursor', 'not a cursor']);
    expect(r.code).toBe(2);
    expect(r.json<ErrorOutput>().error.code).toBe('INVALID_ARGUMENT');
  });
});

describe('usage and failures', () => {
  it('cairn --help lists the commands and the exit codes', async () => {
    const r = await cairn(['--help']);
    expect(r.code).toBe(0);
    for (const name of [
      'runs',
      'show',
      'waiting',
      'resume',
      'pause',
      'cancel',
      'stats',
      'doctor',
      'prune',
      'export',
      'import',
    ]) {
      expect(r.stdout).toMatch(new RegExp(`^  ${name} `, 'm'));
    }
    expect(r.stdout).toMatch(/Exit codes:\n\s+0\s+ok\n\s+1 .*\n\s+2 .*\n\s+3 .*\n\s+4 .*locked/);
    const sub = await cairn(['runs', '--help']);
    expect(sub.code).toBe(0);
    expect(sub.stdout).toMatch(/^Usage: cairn runs/);
  });

  it('bad arguments: exit 2, one line on stderr, nothing on stdout', async () => {
    // These fail before the store is opened, so they can run side by side.
    const cases: [string[], string][] = [
      [[], 'cairn: missing command (see cairn --help)'],
      [['nope'], 'cairn: unknown command "nope" (see cairn --help)'],
      [['runs', '--bogus'], 'cairn: unknown option --bogus'],
      [['runs', '--limit'], 'cairn: option --limit needs a value'],
      [['runs', '--json=yes'], 'cairn: option --json takes no value'],
      [
        ['runs', '--limit', 'ten'],
        'cairn: --limit must be a whole number from 1 to 1000; got "ten"',
      ],
      [
        ['runs', '--status', 'sleepy'],
        'cairn: --status must be one of queued, running, paused, completed, failed, cancelled; got "sleepy"',
      ],
      [
        ['runs', '--since', 'yesterday'],
        'cairn: --since must be a duration back from now (7d, 12h) or a date; got "yesterday"',
      ],
      [['show'], 'cairn: missing run id'],
      [['show', 'a', 'b'], 'cairn: unexpected argument "b"'],
      [
        ['stats', '--by', 'colour'],
        'cairn: --by must be one of model, workflow, namespace, day; got "colour"',
      ],
      [['resume', 'r1', '--data', '{oops'], 'cairn: --data is not valid JSON'],
      [
        ['resume', 'r1', '--data', '{}', '--data-file', 'x.json'],
        'cairn: give --data or --data-file, not both',
      ],
      [
        ['resume', 'r1', '--task', 'approve'],
        'cairn: --task needs the input: --data or --data-file',
      ],
      [['pause'], 'cairn: missing run id'],
      [['prune'], 'cairn: --older-than is required (e.g. --older-than 30d)'],
      [
        ['prune', '--older-than', '30 days'],
        'cairn: --older-than must be a duration such as 30d, 12h, 15m or 45s; got "30 days"',
      ],
    ];
    const results = await Promise.all(
      cases.map(([args]) => cairn(args.length === 0 ? [] : [...args, ...store])),
    );
    results.forEach((r, i) => {
      const [args, message] = cases[i]!;
      // One line, starting with the message (node's JSON error text follows for --data).
      expect({ args, code: r.code, stderr: r.errLines, stdout: r.stdout }).toEqual({
        args,
        code: 2,
        stderr: [expect.stringMatching(`^${message.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}`)],
        stdout: '',
      });
    });
  });

  it('a directory without a store is exit 3, and nothing is created there', async () => {
    const empty = tempDir();
    try {
      const r = await cairn(['runs', '--store', empty.path]);
      expect(r.code).toBe(3);
      expect(r.errLines).toEqual([
        `cairn: no Cairn store at ${empty.path} (give its directory with --store or CAIRN_STORE_DIR)`,
      ]);
      const viaEnv = await cairn(['runs'], { env: { CAIRN_STORE_DIR: empty.path } });
      expect(viaEnv.code).toBe(3);
      expect(readdirSync(empty.path)).toEqual([]);
    } finally {
      empty.remove();
    }
  });

  it('a store held by a running engine is exit 4 with the path and what to do', async () => {
    const held = new LevelStore({ path: dir.path });
    await held.open();
    try {
      const r = await cairn(['runs', ...store]);
      expect(r.code).toBe(4);
      expect(r.errLines[0]).toBe(
        `cairn: the store at ${dir.path} is locked: another process (a running Cairn engine) has it open`,
      );
      expect(r.stderr).toContain('Stop that process');
      expect(r.stderr).toContain('from inside the application');
      const json = await cairn(['waiting', ...store, '--json']);
      expect(json.code).toBe(4);
      expect(json.json<ErrorOutput>().error).toMatchObject({
        code: 'STORE_LOCKED',
        details: { location: dir.path },
      });
    } finally {
      await held.close();
    }
  });
});
