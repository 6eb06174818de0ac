/**
 * A child whose step dies with SIGKILL as soon as it starts, on the attempts named: the crash
 * loop of test/attempts.test.ts. Opens the store at argv[2] with the durability argv[3],
 * starts (or recovers) the run `crash-loop`, and writes each attempt of its step to the journal
 * argv[4] before anything else. Prints `done <result>` when the run completes.
 *
 * argv: <storeDir> <durability> <journal> <attempts to die at, comma-separated>
 */
import { appendFileSync } from 'node:fs';
import { createEngine, LevelStore, workflow } from '@cairn/core';
import { z } from 'zod';
import { exitWithParent } from './guard.js';

const [path, durability, journal, dieAt = ''] = process.argv.slice(2);
if (path === undefined || journal === undefined)
  throw new Error('usage: crash-loop <dir> <durability> <journal> <attempts>');
if (durability !== 'strict' && durability !== 'process')
  throw new Error(`durability ${durability}`);
exitWithParent(60_000);
const deaths = new Set(dieAt.split(',').filter(Boolean).map(Number));

const loop = workflow('crash-loop', {
  input: z.object({}),
  async run(ctx) {
    const charged = await ctx.step('charge', (step) => {
      appendFileSync(journal, `${step.attempt}\n`);
      if (deaths.has(step.attempt)) process.kill(process.pid, 'SIGKILL');
      return { attempt: step.attempt };
    });
    return charged.attempt;
  },
});

const store = new LevelStore({ path, durability });
const engine = await createEngine({ store, workflows: [loop] });
const handle = await engine.start(loop, {}, { id: '019b0000-0000-7000-8000-00000000c0de' });
process.stdout.write(`done ${JSON.stringify(await handle.result())}\n`);
await engine.close();
await store.close();
process.exit(0);
