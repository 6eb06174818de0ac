/**
 * Writes to a bare LevelDB (classic-level) at argv[2] until it is killed, for the test of the
 * power-cut filesystem (test/powercut-fs.test.ts). Batch n puts the keys of `levelBatch(n)`;
 * every other batch is written with `{ sync: true }` and followed by `ack <n>`, the others by
 * `soft <n>`. Every 25th batch reads the whole database back through an iterator (LevelDB
 * reads its tables through mmap) and exits with code 3 if a value is wrong. Small write
 * buffers and table files make LevelDB flush, compact, rename and delete files often.
 *
 * argv: <dbDir>
 */
import { ClassicLevel } from 'classic-level';
import { exitWithParent } from './guard.js';
import { levelBatch, levelValue } from '../helpers/level-batches.js';

const [path] = process.argv.slice(2);
if (path === undefined) throw new Error('usage: level-writer <dbDir>');
exitWithParent();

const db = new ClassicLevel<string, string>(path, {
  writeBufferSize: 64 * 1024,
  maxFileSize: 64 * 1024,
});
await db.open();
process.stdout.write('ready\n');

for (let n = 0; ; n++) {
  const sync = n % 2 === 0;
  await db.batch(
    levelBatch(n).map(([key, value]) => ({ type: 'put' as const, key, value })),
    { sync } as object,
  );
  process.stdout.write(`${sync ? 'ack' : 'soft'} ${n}\n`);
  if (n % 25 === 24) {
    for await (const [key, value] of db.iterator()) {
      if (value !== levelValue(key)) {
        process.stderr.write(`wrong value for ${key}\n`);
        process.exit(3);
      }
    }
  }
}
