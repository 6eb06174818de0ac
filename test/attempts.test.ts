/**
 * A step whose process dies as soon as the step starts runs again with attempt + 1, after
 * every death: the start of an attempt reaches the operating system before the step function
 * runs (DESIGN §4). Real processes, killed with SIGKILL from inside the step.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { LevelStore, diagnose } from '@cairn/store';
import { Child } from './helpers/child.js';
import { tempDir } from './helpers/temp.js';

const RUN = '019b0000-0000-7000-8000-00000000c0de';
const cleanups: (() => Promise<void>)[] = [];

/** Runs the crash-loop child to its end (stdin stays open: it exits when its parent goes). */
async function life(
  args: string[],
): Promise<{ signal: string | null; code: number | null; lines: string[] }> {
  const child = new Child('crash-loop.ts', args);
  const exit = await child.exited;
  return { ...exit, lines: child.lines };
}
afterAll(async () => {
  for (const cleanup of cleanups) await cleanup();
});

describe.each(['strict', 'process'] as const)('%s durability', (durability) => {
  it('a crash loop shows attempts 1, 2, 3; in between, the store and diagnose() say which attempt was in flight', async () => {
    const { path, cleanup } = await tempDir(`attempts-${durability}`);
    cleanups.push(cleanup);
    const journal = join(path, 'journal');
    const store = join(path, 'store');
    for (const attempt of [1, 2]) {
      const exit = await life([store, durability, journal, '1,2']);
      expect(exit.signal).toBe('SIGKILL');
      const level = new LevelStore({ path: store, durability });
      await level.open();
      try {
        const task = await level.getTask(RUN, 'charge');
        expect(task).toMatchObject({ status: 'running', attempt });
        const diagnosis = await diagnose(level, RUN);
        expect(diagnosis.running).toEqual([expect.objectContaining({ taskId: 'charge', attempt })]);
        expect(diagnosis.findings.some((f) => f.includes(`attempt ${attempt}`))).toBe(true);
      } finally {
        await level.close();
      }
    }
    const last = await life([store, durability, journal, '1,2']);
    expect(last.code).toBe(0);
    expect(last.lines).toContain('done 3');
    expect(readFileSync(journal, 'utf8').split('\n').filter(Boolean)).toEqual(['1', '2', '3']);
  });
});
