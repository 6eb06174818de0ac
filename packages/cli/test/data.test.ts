/** `cairn stats`, `doctor`, `export`, `import` and `prune` against a real store. */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createEngine, LevelStore, workflow } from '@cairn/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { populate, type Populated } from './fixture/populate.js';
import {
  cairn,
  snapshot,
  tempDir,
  type Diagnosis,
  type ExportOutput,
  type ImportResult,
  type PruneResult,
  type RunDetail,
  type RunsOutput,
  type StatsOutput,
} from './support.js';

let dir: ReturnType<typeof tempDir>;
let files: ReturnType<typeof tempDir>;
let ids: Populated;
let store: string[];

beforeAll(async () => {
  dir = tempDir();
  files = tempDir('cairn-cli-files-');
  ids = await populate(dir.path);
  store = ['--store', dir.path];
});

afterAll(() => {
  dir.remove();
  files.remove();
});

/** A store at `path` with a run paused at "approve", whose early input its schema refused. */
async function refusedEarly(path: string): Promise<string> {
  let release!: () => void;
  const prepared = new Promise<void>((resolve) => (release = resolve));
  const wf = workflow('refusing', {
    input: z.object({}),
    async run(ctx) {
      await ctx.step('prepare', () => prepared);
      return ctx.waitForInput('approve', { schema: z.object({ ok: z.boolean() }) });
    },
  });
  const level = new LevelStore({ path, durability: 'process' });
  const engine = await createEngine({ store: level, workflows: [wf] });
  const handle = await engine.start(wf, {});
  await engine.resumeTask(handle.id, 'approve', { ok: 'yes' });
  release();
  const refused = new Promise((resolve) => engine.on('task:input-refused', resolve));
  await refused;
  await engine.close();
  await level.close();
  return handle.id;
}

const runIds = async (args: string[]): Promise<string[]> =>
  (await cairn(['runs', ...args, '--json', '--limit', '1000']))
    .json<RunsOutput>()
    .items.map((r: { id: string }) => r.id);

describe('cairn stats', () => {
  it('totals tokens and steps by model', async () => {
    const r = await cairn(['stats', ...store, '--by', 'model', '--json']);
    expect(r.code).toBe(0);
    const { rows, total } = r.json<StatsOutput>();
    const row = (key: string) => rows.find((x: { key: string }) => x.key === key);
    // Recent llm run: outline 140 + summarise 240 (large), 3 drafts of 90 (mini); the old one
    // (one draft) adds 140 + 240 and 90.
    expect(row('fake-large')).toMatchObject({ steps: 4, totalTokens: 760, promptTokens: 600 });
    expect(row('fake-mini')).toMatchObject({ steps: 4, totalTokens: 360, completionTokens: 160 });
    expect(total.totalTokens).toBe(1120);
  });

  it('--since leaves out older days; the table has a total row', async () => {
    const recent = (
      await cairn(['stats', ...store, '--by', 'model', '--since', '7d', '--json'])
    ).json<StatsOutput>();
    expect(recent.rows.find((x) => x.key === 'fake-large')?.totalTokens).toBe(380);
    const table = await cairn(['stats', ...store, '--by', 'workflow']);
    expect(table.code).toBe(0);
    expect(table.stdout).toMatch(
      /WORKFLOW\s+STEPS\s+PROMPT\s+COMPLETION\s+TOTAL TOKENS\s+SHARE OF TOKENS/,
    );
    expect(table.stdout).toMatch(/llm-report\s+8\s+800\s+320\s+1,120\s+█{20} 100%/);
    expect(table.stdout).toMatch(/^total\s+\d+\s+800\s+320\s+1,120\s*$/m);
  });
});

describe('cairn doctor', () => {
  it('says what a paused run waits for and when it times out', async () => {
    const r = await cairn(['doctor', ids.approval, ...store]);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(
      /Findings\n\s+• waits for input on "manager-approval" since .*; it times out at/,
    );
    const json = (await cairn(['doctor', ids.approval, ...store, '--json'])).json<Diagnosis>();
    expect(json.status).toBe('paused');
    expect(json.waiting[0]?.taskId).toBe('manager-approval');
    expect(json.versionRegistered).toBeNull();
  });

  it('names an operator pause, a sleep, and a version the engine lacks', async () => {
    const r = await cairn(['doctor', ids.operatorPaused, ...store, '--versions', '2', '--json']);
    const { findings, versionRegistered } = r.json<Diagnosis>();
    expect(versionRegistered).toBe(false);
    expect(findings.join('\n')).toMatch(/version 1 is not registered/);
    expect(findings.join('\n')).toMatch(/an operator paused it/);
    expect(findings.join('\n')).toMatch(/sleeps in "cooldown"/);
  });

  it('shows input sent early that the wait refused, with its issues', async () => {
    const own = tempDir();
    try {
      const runId = await refusedEarly(own.path);
      const r = await cairn(['doctor', runId, '--store', own.path]);
      expect(r.code).toBe(0);
      expect(r.stdout).toMatch(/• input sent early for "approve" was refused by its schema/);
      expect(r.stdout).toMatch(/refused early input \{"ok":"yes"\}/);
      expect(r.stdout).toMatch(/^ {4}ok: /m);
      const json = (
        await cairn(['doctor', runId, '--store', own.path, '--json'])
      ).json<Diagnosis>();
      expect(json.waiting[0]?.refusedInput).toMatchObject({ data: { ok: 'yes' } });
      const waiting = await cairn(['waiting', '--store', own.path]);
      expect(waiting.stdout).toContain('refused early input (cairn doctor)');
    } finally {
      own.remove();
    }
  });

  it('an unknown run is exit 3', async () => {
    const r = await cairn(['doctor', 'nope', ...store]);
    expect(r.code).toBe(3);
    expect(r.errLines).toHaveLength(1);
  });
});

describe('cairn export and import', () => {
  it('round-trips every run through NDJSON into a new store; steps as CSV', async () => {
    const ndjson = join(files.path, 'all.ndjson');
    const csv = join(files.path, 'steps.csv');
    const r = await cairn(['export', ...store, '--out', ndjson, '--steps-csv', csv, '--json']);
    expect(r.code).toBe(0);
    const summary = r.json<ExportOutput>();
    expect(summary.ndjson).toMatchObject({ runs: 10, out: ndjson });
    const lines = readFileSync(ndjson, 'utf8').trim().split('\n');
    expect(JSON.parse(lines[0]!)).toMatchObject({ type: 'cairn-export', format: 1 });
    expect(lines).toHaveLength(11);
    const rows = readFileSync(csv, 'utf8').trim().split('\n');
    expect(rows[0]).toMatch(/^runId,workflow,namespace,taskId,kind,status,attempt/);
    expect(rows.some((row) => row.includes(',outline,') && row.includes('fake-large'))).toBe(true);

    const copy = tempDir();
    try {
      const imported = await cairn(['import', ndjson, '--store', copy.path]);
      expect(imported.code).toBe(0);
      expect(imported.stdout).toMatch(/^Imported 10 runs \(\d+ tasks, 2 log lines/);
      expect((await runIds(['--store', copy.path])).sort()).toEqual((await runIds(store)).sort());
      const shown = (
        await cairn(['show', ids.order, '--store', copy.path, '--json'])
      ).json<RunDetail>();
      expect(shown.children.map((c: { id: string }) => c.id)).toEqual([ids.child]);

      const again = await cairn(['import', ndjson, '--store', copy.path]);
      expect(again.code).toBe(1);
      expect(again.errLines[0]).toBe(
        'cairn: 10 runs of the import are in the store already; nothing was imported',
      );
      expect(again.stderr).toContain('--skip-existing');
      const skipped = await cairn([
        'import',
        ndjson,
        '--store',
        copy.path,
        '--skip-existing',
        '--json',
      ]);
      expect(skipped.json<ImportResult>()).toMatchObject({ runs: 0, skipped: 10 });
    } finally {
      copy.remove();
    }
  });

  it('exports a filtered set to stdout with the summary on stderr', async () => {
    const r = await cairn(['export', ...store, '--status', 'completed', '--since', '7d']);
    expect(r.code).toBe(0);
    const lines = r.stdout
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line) as { run?: { status: string } });
    expect(lines.slice(1).map((l) => l.run?.status)).toEqual([
      'completed',
      'completed',
      'completed',
    ]);
    expect(r.stderr).toMatch(/^Exported 3 runs/);
  });

  it('a file with bad lines is refused whole: exit 1, the lines listed, nothing written', async () => {
    const bad = join(files.path, 'bad.ndjson');
    // An export of its own: this test does not lean on another one's file.
    const exported = join(files.path, 'for-bad-lines.ndjson');
    expect((await cairn(['export', ...store, '--out', exported])).code).toBe(0);
    const good = readFileSync(exported, 'utf8').trim().split('\n');
    writeFileSync(
      bad,
      [good[0], '{"type":"run","run":{"id":"x"}}', 'not json', good[1]].join('\n'),
    );
    const target = tempDir();
    try {
      await cairn(['import', exported, '--store', target.path]);
      const before = await snapshot(target.path);
      const r = await cairn(['import', bad, '--store', target.path, '--skip-existing']);
      expect(r.code).toBe(1);
      expect(r.errLines[0]).toBe('cairn: 2 bad lines in the import; nothing was imported');
      expect(r.errLines[1]).toMatch(/^ {2}line 2: /);
      expect(r.errLines[2]).toMatch(/^ {2}line 3: .*not valid JSON/);
      expect(await snapshot(target.path)).toEqual(before);
    } finally {
      target.remove();
    }
  });
});

describe('cairn prune', () => {
  it('--dry-run counts the old finished runs and deletes nothing', async () => {
    const r = await cairn(['prune', ...store, '--older-than', '30d', '--dry-run', '--json']);
    expect(r.code).toBe(0);
    expect(r.json<PruneResult>()).toMatchObject({ runs: 2, dryRun: true });
    expect(await runIds(store)).toHaveLength(10);
  });

  it('--keep keeps the newest, then a prune deletes what is left of the old runs', async () => {
    // Six runs have ended: four recent ones and the two old ones. Keeping the newest five
    // keeps one of the old.
    const kept = await cairn(['prune', ...store, '--older-than', '30d', '--keep', '5']);
    expect(kept.code).toBe(0);
    expect(kept.stdout).toMatch(/^Deleted 1 run that ended before /);
    expect(kept.stdout).toContain('kept 1 older run (--keep 5)');
    const r = await cairn(['prune', ...store, '--older-than', '30d', '--json']);
    expect(r.json<PruneResult>()).toMatchObject({ runs: 1, dryRun: false });
    const left = await runIds(store);
    expect(left).toHaveLength(8);
    expect(left).not.toContain(ids.old[0]);
    expect(left).not.toContain(ids.old[1]);
    // Paused runs are never pruned, however old: only finished ones were looked at.
    expect(left).toContain(ids.approval);
  });
});
