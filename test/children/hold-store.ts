/**
 * Holds the store at argv[2] open: opens it, writes a run, prints `ready`, and on a
 * `close` line on stdin closes the store, prints `closed` and exits.
 */
import { createInterface } from 'node:readline';
import { LevelStore } from '@cairn/store';
import { makeRun } from '../helpers/records.js';

const [path] = process.argv.slice(2);
if (path === undefined) throw new Error('usage: hold-store <dir>');
setTimeout(() => process.exit(71), 60_000).unref();

const store = new LevelStore({ path });
await store.open();
await store.createRun(makeRun(`held-${process.pid}`));
process.stdout.write('ready\n');

const input = createInterface({ input: process.stdin });
for await (const line of input) {
  if (line === 'close') break;
}
// Also when stdin ends: the parent went away.
await store.close();
process.stdout.write('closed\n');
process.exit(0);
