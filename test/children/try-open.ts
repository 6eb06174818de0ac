/** Tries to open the store at argv[2]; prints the outcome as one JSON line. */
import { LevelStore, isCairnError } from '@cairn/store';

const [path] = process.argv.slice(2);
if (path === undefined) throw new Error('usage: try-open <dir>');

const store = new LevelStore({ path });
try {
  await store.open();
  const runs = await store.listRuns();
  await store.close();
  process.stdout.write(JSON.stringify({ ok: true, runs: runs.items.map((r) => r.id) }) + '\n');
} catch (error) {
  if (!isCairnError(error)) throw error;
  const { code, message, details } = error;
  process.stdout.write(JSON.stringify({ ok: false, code, message, details }) + '\n');
}
