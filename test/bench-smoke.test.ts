import { spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { describe, expect, it } from 'vitest';

const tsx = pathToFileURL(createRequire(import.meta.url).resolve('tsx')).href;
const bench = fileURLToPath(new URL('./bench/index.ts', import.meta.url));

/**
 * The benchmark's smoke mode, so it cannot rot: every workload runs at tiny sizes and reports
 * a well-formed line. No timing is asserted (benchmarks are not tests).
 */
describe('pnpm bench --smoke', () => {
  it('runs every workload and prints one JSON line each', () => {
    const result = spawnSync(
      process.execPath,
      ['--import', tsx, '--conditions=@cairn/source', bench, '--smoke'],
      {
        encoding: 'utf8',
        timeout: 240_000,
      },
    );
    expect(result.status, result.stderr).toBe(0);
    const lines = result.stdout
      .split('\n')
      .filter((line) => line.startsWith('{'))
      .map((line) => JSON.parse(line) as { workload: string; [key: string]: unknown });
    const workloads = new Set(lines.map((l) => l.workload));
    for (const w of ['W1', 'W2', 'W3', 'W4', 'W5', 'W5-linearity', 'Memory'])
      expect(workloads).toContain(w);
    for (const l of lines.filter((l) => l.workload === 'W1' || l.workload === 'W2')) {
      expect(l.cairn_per_s).toBeGreaterThan(0);
      expect(l.raw_per_s).toBeGreaterThan(0);
      expect(typeof l.ratio).toBe('number');
    }
    expect(lines.find((l) => l.workload === 'W5-linearity')?.lost).toBe(0);
    expect(lines.find((l) => l.workload === 'W4')?.paused).toBe(20);
  }, 300_000);
});
