/**
 * Prints where a `LevelStore` built with no options (or with `path` = argv[2], if given)
 * puts its data, as JSON; with `--open` anywhere in argv it also opens the store, writes a
 * run and closes it.
 */
import { LevelStore } from '@cairn/store';
import { makeRun } from '../helpers/records.js';

const args = process.argv.slice(2);
const open = args.includes('--open');
const [path] = args.filter((arg) => arg !== '--open');

const store = new LevelStore(path === undefined ? {} : { path });
if (open) {
  await store.open();
  await store.createRun(makeRun('located'));
  await store.close();
}
process.stdout.write(JSON.stringify({ location: store.location, cwd: process.cwd() }) + '\n');
