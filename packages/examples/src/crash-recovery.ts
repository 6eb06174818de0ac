/**
 * Example: a process that dies in the middle of a run, and the next one carrying on from
 * the last checkpoint. The worker kills itself (SIGKILL: no cleanup, no goodbye) while the
 * fourth step runs; the restarted worker recovers the run by itself: the three finished
 * steps are replayed from the store, the fourth runs again (attempt 2), and the run
 * completes.
 */
import { fileURLToPath } from 'node:url';
import { workflow } from '@cairn/core';
import { z } from 'zod';
import { createEngine, LevelStore } from '@cairn/core';
import { bold, dim, green, heading, red, runPhase, say, timeline } from './lib/print.js';

const self = fileURLToPath(import.meta.url);

export const deploy = workflow('deploy', {
  version: '1',
  input: z.object({ service: z.string(), crashAt: z.string().optional() }),
  async run(ctx, input) {
    const stages = ['build', 'test', 'push-image', 'migrate-db', 'roll-out', 'smoke-test'];
    const done: string[] = [];
    for (const stage of stages) {
      await ctx.step(stage, async (s) => {
        say(`  [pid ${process.pid}] ${stage} (attempt ${s.attempt})`);
        await new Promise((resolve) => setTimeout(resolve, 150));
        if (stage === input.crashAt && s.attempt === 1) {
          say(red(`  [pid ${process.pid}] the process dies now, in the middle of ${stage}`));
          process.kill(process.pid, 'SIGKILL');
        }
      });
      done.push(stage);
    }
    return { service: input.service, stages: done.length };
  },
});

async function worker(runId: string, start: boolean): Promise<void> {
  const engine = await createEngine({ store: new LevelStore(), workflows: [deploy] });
  engine.on('run:recovered', (e) =>
    say(green(`  recovered run ${e.runId} (recoveries=${e.recoveries})`)),
  );
  if (start)
    await engine.start(deploy, { service: 'checkout', crashAt: 'migrate-db' }, { id: runId });
  const output = await engine.handle(runId).result();
  say(`${green('completed')} ${JSON.stringify(output)}`);
  say(timeline(await engine.tasks(runId)));
  await engine.close();
  await engine.store.close();
}

const [mode, runId] = process.argv.slice(2);
if (mode === 'start' || mode === 'recover') {
  await worker(runId!, mode === 'start');
} else {
  const id = `deploy-${Date.now().toString(36)}`;
  heading('Worker 1 starts a deploy');
  const first = await runPhase(self, ['start', id]);
  say(dim(`worker 1 ended with ${first.signal ?? `code ${first.code}`}`));
  heading('Worker 2 starts: the engine recovers the run without being asked');
  const second = await runPhase(self, ['recover', id]);
  if (second.code !== 0) throw new Error('worker 2 failed');
  say(bold('Steps 1-3 were not run again; migrate-db ran again with attempt 2.'));
}
