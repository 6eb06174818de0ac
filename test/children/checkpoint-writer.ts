/**
 * Crash-test writer: opens the store at argv[2] with the durability in argv[4] ('strict' or
 * 'process', default 'strict'; anything else exits with code 2) and runs run lifecycles
 * (test/helpers/lifecycle.ts) on several concurrent workers until it is killed.
 * Prints `ready`, then `ack <runId> <createdAt> <stage>` once each write's promise resolved.
 */
import { LevelStore, uuidv7, type Durability } from '@cairn/store';
import { LAST_STAGE, stageWrite } from '../helpers/lifecycle.js';
import { exitWithParent } from './guard.js';

exitWithParent();
const [path, workersArg, durabilityArg = 'strict'] = process.argv.slice(2);
if (path === undefined) {
  throw new Error('usage: checkpoint-writer <dir> [workers] [strict|process]');
}
const workers = Number(workersArg ?? 8);
if (durabilityArg !== 'strict' && durabilityArg !== 'process') {
  process.stderr.write(
    `checkpoint-writer: durability must be strict or process, not ${durabilityArg}\n`,
  );
  process.exit(2);
}
const durability: Durability = durabilityArg;

const store = new LevelStore({ path, durability });
await store.open();
process.stdout.write('ready\n');

async function worker(): Promise<never> {
  for (;;) {
    const runId = uuidv7();
    const createdAt = Date.now();
    for (let stage = 0; stage <= LAST_STAGE; stage++) {
      const { run, tasks } = stageWrite(runId, createdAt, stage);
      if (stage === 0) await store.createRun(run);
      else await store.checkpoint({ runs: [run], tasks });
      process.stdout.write(`ack ${runId} ${createdAt} ${stage}\n`);
    }
  }
}

await Promise.all(Array.from({ length: workers }, worker));
