/**
 * `pnpm bench`: Cairn against the raw store on the same machine and disk, in one run.
 *
 * Each workload is measured against a raw baseline (plain `level` doing the least the same
 * work needs) measured in the same run, interleaved, several times; the table reports
 * medians and ratios. `--smoke` runs tiny sizes (CI runs it so the bench cannot rot).
 * `--only=W1,W3` runs some workloads. `Log` (in a full run, or `--only=Log`) measures W1, W2
 * and W3 with Cairn's store writing through its log and straight to LevelDB with LevelDB's own
 * sync, alternated, in both durabilities.
 */
import { cpus, totalmem } from 'node:os';
import { fileURLToPath } from 'node:url';
import { child, median, removeDir, tempDir } from './harness.js';
import {
  cairnResume,
  cairnSteps,
  rawBatchLatency,
  rawConcurrent,
  rawSequential,
  storeSequential,
  type ResumeFigures,
  type Sizes,
  type WritePathName,
} from './in-process.js';

const smoke = process.argv.includes('--smoke');
const onlyArg = process.argv.find((a) => a.startsWith('--only='));
const only = onlyArg ? new Set(onlyArg.slice('--only='.length).split(',')) : null;
const want = (w: string): boolean => only === null || only.has(w);
const childScript = fileURLToPath(new URL('./children.ts', import.meta.url));

const sizes: Sizes & {
  reps: number;
  w2Reps: number;
  w4Completed: number;
  w4Paused: number;
  w5: number[];
  memory: number;
  memoryReps: number;
} = smoke
  ? {
      workflows: 10,
      inFlight: 4,
      approvals: 10,
      reps: 1,
      w2Reps: 1,
      w4Completed: 1000,
      w4Paused: 20,
      w5: [40, 80],
      memory: 1000,
      memoryReps: 1,
    }
  : {
      workflows: 200,
      inFlight: 32,
      approvals: 200,
      reps: 5,
      w2Reps: 15,
      w4Completed: 100_000,
      w4Paused: 1000,
      w5: [2500, 5000, 10000],
      memory: 100_000,
      memoryReps: 3,
    };

interface Line {
  workload: string;
  [key: string]: string | number | boolean;
}
const lines: Line[] = [];
const rows: string[][] = [];

function emit(line: Line, row: string[]): void {
  lines.push(line);
  rows.push(row);
  console.log(JSON.stringify(line));
}

const fmt = (n: number, digits = 0): string =>
  n.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits });
const verdict = (ok: boolean): string => (ok ? 'met' : 'MISSED');

async function w1(durability: 'strict' | 'process'): Promise<void> {
  const raw: number[] = [];
  const cairn: number[] = [];
  const storeAlone: number[] = [];
  for (let r = 0; r < sizes.reps; r++) {
    raw.push(await rawSequential(sizes, durability));
    cairn.push(await cairnSteps(sizes, durability, 1));
    storeAlone.push(await storeSequential(sizes, durability));
  }
  const c = median(cairn);
  const b = median(raw);
  const s = median(storeAlone);
  const ratio = c / b;
  const target = durability === 'process' ? c >= 5000 && ratio >= 0.5 : ratio >= 0.6;
  emit(
    {
      workload: 'W1',
      durability,
      cairn_per_s: Math.round(c),
      raw_per_s: Math.round(b),
      ratio: +ratio.toFixed(3),
      target_met: target,
      // Cairn's own writes for the same runs, by its store without the engine: the ceiling of
      // the ratio while a run needs these writes.
      store_alone_per_s: Math.round(s),
      store_alone_ratio: +(s / b).toFixed(3),
    },
    [
      'W1 sequential',
      durability,
      `${fmt(c)} steps/s`,
      `${fmt(b)} puts/s`,
      ratio.toFixed(2),
      durability === 'process' ? '≥ 5,000/s, ≥ 0.5' : '≥ 0.6',
      verdict(target),
    ],
  );
}

async function w2(): Promise<void> {
  const raw: number[] = [];
  const cairn: number[] = [];
  // A repetition lasts under a tenth of a second each side, so the median takes more of them.
  for (let r = 0; r < sizes.w2Reps; r++) {
    raw.push(await rawConcurrent(sizes, 'strict'));
    cairn.push(await cairnSteps(sizes, 'strict', sizes.inFlight));
  }
  const c = median(cairn);
  const b = median(raw);
  const ratio = c / b;
  const target = c >= 8000 && ratio >= 0.7;
  emit(
    {
      workload: 'W2',
      durability: 'strict',
      in_flight: sizes.inFlight,
      cairn_per_s: Math.round(c),
      raw_per_s: Math.round(b),
      ratio: +ratio.toFixed(3),
      target_met: target,
    },
    [
      'W2 32 in flight',
      'strict',
      `${fmt(c)} steps/s`,
      `${fmt(b)} puts/s (group commit)`,
      ratio.toFixed(2),
      '≥ 8,000/s, ≥ 0.7',
      verdict(target),
    ],
  );
}

async function w3(durability: 'strict' | 'process'): Promise<void> {
  const runs: ResumeFigures[] = [];
  const raw: number[] = [];
  for (let r = 0; r < sizes.reps; r++) {
    raw.push(await rawBatchLatency(sizes.approvals, durability));
    runs.push(await cairnResume(sizes, durability));
  }
  const p50 = median(runs.map((r) => r.p50));
  const p95 = median(runs.map((r) => r.p95));
  const perSecond = median(runs.map((r) => r.perSecond));
  const rawP50 = median(raw);
  const target = durability === 'process' ? p50 <= 1 : p50 <= 2 * rawP50;
  emit(
    {
      workload: 'W3',
      durability,
      resume_p50_ms: +p50.toFixed(3),
      resume_p95_ms: +p95.toFixed(3),
      resumes_per_s: Math.round(perSecond),
      raw_batch_p50_ms: +rawP50.toFixed(3),
      ratio: +(rawP50 / p50).toFixed(3),
      target_met: target,
    },
    [
      'W3 resume',
      durability,
      `p50 ${p50.toFixed(2)} ms, p95 ${p95.toFixed(2)} ms, ${fmt(perSecond)}/s`,
      `batch p50 ${rawP50.toFixed(2)} ms`,
      (rawP50 / p50).toFixed(2),
      durability === 'process' ? 'p50 ≤ 1 ms' : 'p50 ≤ 2× raw batch',
      verdict(target),
    ],
  );
}

interface W4Figures {
  open_ms: number;
  list_ms: number;
  resume_ms: number;
  listed: number;
}

async function w4Case(completed: number, paused: number): Promise<W4Figures> {
  const dir = tempDir('w4');
  await child(childScript, ['w4-build', dir, String(completed), String(paused)]);
  const figures = await child<W4Figures>(childScript, ['w4-measure', dir]);
  removeDir(dir);
  return figures;
}

async function w4(): Promise<void> {
  const big = await w4Case(sizes.w4Completed, sizes.w4Paused);
  const small = await w4Case(0, sizes.w4Paused);
  const growth = (big.list_ms + big.resume_ms) / (small.list_ms + small.resume_ms);
  const target = growth <= 1.5 && big.listed === sizes.w4Paused;
  emit(
    {
      workload: 'W4',
      durability: 'strict',
      total_runs: sizes.w4Completed + sizes.w4Paused,
      paused: sizes.w4Paused,
      open_ms: Math.round(big.open_ms),
      list_ms: +big.list_ms.toFixed(1),
      resume_all_ms: Math.round(big.resume_ms),
      listed: big.listed,
      small_open_ms: Math.round(small.open_ms),
      small_list_ms: +small.list_ms.toFixed(1),
      small_resume_all_ms: Math.round(small.resume_ms),
      ratio: +growth.toFixed(3),
      target_met: target,
    },
    [
      'W4 paused among many',
      'strict',
      `open ${fmt(big.open_ms)} ms, list ${fmt(big.list_ms, 1)} ms, resume all ${fmt(big.resume_ms)} ms`,
      `among ${fmt(sizes.w4Paused)}: open ${fmt(small.open_ms)}, list ${fmt(small.list_ms, 1)}, resume ${fmt(small.resume_ms)} ms`,
      growth.toFixed(2),
      '≤ 1.5× (list + resume)',
      verdict(target),
    ],
  );
}

async function w5(): Promise<void> {
  const perRun: number[] = [];
  const cells: string[] = [];
  let lost = 0;
  for (const n of sizes.w5) {
    const dir = tempDir('w5');
    await child(childScript, ['w5-start', dir, String(n)], {
      kill: (line) => line.startsWith('{"ready"'),
    });
    const { recover_ms, completed } = await child<{ recover_ms: number; completed: number }>(
      childScript,
      ['w5-recover', dir, String(n)],
    );
    removeDir(dir);
    lost += n - completed;
    perRun.push(recover_ms / n);
    cells.push(`${fmt(n)}: ${fmt(recover_ms)} ms`);
    emit(
      {
        workload: 'W5',
        durability: 'process',
        in_flight: n,
        recover_ms: Math.round(recover_ms),
        per_run_ms: +(recover_ms / n).toFixed(3),
        completed,
      },
      [
        `W5 recover ${fmt(n)}`,
        'process',
        `${fmt(recover_ms)} ms (${(recover_ms / n).toFixed(2)} ms/run)`,
        '',
        '',
        '',
        '',
      ],
    );
  }
  const spread = Math.max(...perRun) / Math.min(...perRun);
  const target = lost === 0 && spread <= 2;
  emit({ workload: 'W5-linearity', per_run_spread: +spread.toFixed(3), lost, target_met: target }, [
    'W5 linearity',
    '',
    cells.join(', '),
    '',
    spread.toFixed(2),
    'time/run within 2×, none lost',
    verdict(target),
  ]);
}

async function memory(): Promise<void> {
  const empty = tempDir('mem');
  const full = tempDir('mem');
  await child(childScript, ['mem-build', full, String(sizes.memory)]);
  // A process's RSS varies by several MB from one start to the next: medians of fresh
  // processes, alternated. Each measures once its RSS has settled (children.ts) and reports
  // its highest reading too; the first open after the build also compacts LevelDB's log.
  const none: number[] = [];
  const paused: number[] = [];
  let peak = 0;
  let active = 0;
  for (let r = 0; r < sizes.memoryReps; r++) {
    const a = await child<{ rss_mb: number }>(childScript, ['mem-measure', empty], {
      nodeArgs: ['--expose-gc'],
    });
    const b = await child<{ rss_mb: number; rss_peak_mb: number; active: number }>(
      childScript,
      ['mem-measure', full],
      { nodeArgs: ['--expose-gc'] },
    );
    none.push(a.rss_mb);
    paused.push(b.rss_mb);
    peak = Math.max(peak, b.rss_peak_mb);
    active = Math.max(active, b.active);
  }
  removeDir(empty);
  removeDir(full);
  const rssNone = median(none);
  const rssPaused = median(paused);
  const delta = rssPaused - rssNone;
  const target = delta <= 30;
  emit(
    {
      workload: 'Memory',
      paused_on_disk: sizes.memory,
      rss_mb: +rssPaused.toFixed(1),
      rss_empty_mb: +rssNone.toFixed(1),
      rss_each_mb: paused.map((v) => +v.toFixed(1)).join(' '),
      rss_empty_each_mb: none.map((v) => +v.toFixed(1)).join(' '),
      rss_peak_mb: +peak.toFixed(1),
      delta_mb: +delta.toFixed(1),
      active_runs: active,
      target_met: target,
    },
    [
      'Memory',
      '',
      `${fmt(sizes.memory)} paused on disk: ${rssPaused.toFixed(1)} MB RSS (median)`,
      `none: ${rssNone.toFixed(1)} MB; peak while opening ${peak.toFixed(1)} MB`,
      `${delta >= 0 ? '+' : ''}${delta.toFixed(1)} MB`,
      '≤ +30 MB',
      verdict(target),
    ],
  );
}

/**
 * W1, W2 and W3 on Cairn's store writing through its log and straight to LevelDB (synced by
 * LevelDB in `strict`), alternated: what the log buys, as the ratio log / LevelDB (above 1:
 * the log is faster; for W3, the ratio of p50 latencies LevelDB / log).
 */
async function logAgainstLevelDb(durability: 'strict' | 'process'): Promise<void> {
  const w1: Record<WritePathName, number[]> = { log: [], leveldb: [] };
  const w2: Record<WritePathName, number[]> = { log: [], leveldb: [] };
  const w3: Record<WritePathName, number[]> = { log: [], leveldb: [] };
  for (let r = 0; r < sizes.reps; r++) {
    for (const path of ['log', 'leveldb'] as const) {
      w1[path].push(await cairnSteps(sizes, durability, 1, path));
      w2[path].push(await cairnSteps(sizes, durability, sizes.inFlight, path));
      w3[path].push((await cairnResume(sizes, durability, path)).p50);
    }
  }
  const m = (values: Record<WritePathName, number[]>): [number, number] => [
    median(values.log),
    median(values.leveldb),
  ];
  const [w1Log, w1Level] = m(w1);
  const [w2Log, w2Level] = m(w2);
  const [w3Log, w3Level] = m(w3);
  const gains = { w1: w1Log / w1Level, w2: w2Log / w2Level, w3: w3Level / w3Log };
  const target = Math.min(gains.w1, gains.w2, gains.w3) >= 1.15;
  emit(
    {
      workload: 'Log',
      durability,
      w1_log_per_s: Math.round(w1Log),
      w1_leveldb_per_s: Math.round(w1Level),
      w2_log_per_s: Math.round(w2Log),
      w2_leveldb_per_s: Math.round(w2Level),
      w3_log_p50_ms: +w3Log.toFixed(3),
      w3_leveldb_p50_ms: +w3Level.toFixed(3),
      w1_gain: +gains.w1.toFixed(3),
      w2_gain: +gains.w2.toFixed(3),
      w3_gain: +gains.w3.toFixed(3),
      target_met: target,
    },
    [
      'Log vs LevelDB',
      durability,
      `W1 ${fmt(w1Log)}/s, W2 ${fmt(w2Log)}/s, W3 p50 ${w3Log.toFixed(2)} ms`,
      `W1 ${fmt(w1Level)}/s, W2 ${fmt(w2Level)}/s, W3 p50 ${w3Level.toFixed(2)} ms`,
      `${gains.w1.toFixed(2)} / ${gains.w2.toFixed(2)} / ${gains.w3.toFixed(2)}`,
      'each ≥ 1.15',
      verdict(target),
    ],
  );
}

// `pnpm bench` builds the packages and runs them as they ship (compiled JavaScript); the test
// suite's smoke run loads their TypeScript sources instead.
const fromSource = process.execArgv.some((a) => a.includes('@cairn/source'));
console.log(
  `# cairn bench${smoke ? ' (smoke)' : ''}: node ${process.version}, ${cpus().length} × ${cpus()[0]?.model ?? 'cpu'}, ${fmt(totalmem() / 2 ** 30, 0)} GiB, packages ${fromSource ? 'from source' : 'as built'}`,
);
if (want('W1')) {
  await w1('strict');
  await w1('process');
}
if (want('W2')) await w2();
if (want('W3')) {
  await w3('strict');
  await w3('process');
}
if (want('W4')) await w4();
if (want('W5')) await w5();
if (want('Memory')) await memory();
if (want('Log')) {
  for (const durability of ['strict', 'process'] as const) await logAgainstLevelDb(durability);
}

const header = ['workload', 'durability', 'Cairn', 'raw baseline', 'ratio', 'target', ''];
const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
const show = (r: string[]): string => r.map((c, i) => c.padEnd(widths[i]!)).join('  ');
console.log();
console.log(show(header));
console.log(widths.map((w) => '-'.repeat(w)).join('  '));
for (const r of rows) console.log(show(r));
