import { ClassicLevel } from 'classic-level';

/** Opens the LevelDB directory at `path` without Cairn (the store must be closed). */
export async function withRawDb<T>(
  path: string,
  fn: (db: ClassicLevel<string, Uint8Array>) => Promise<T>,
): Promise<T> {
  const db = new ClassicLevel<string, Uint8Array>(path, {
    keyEncoding: 'utf8',
    valueEncoding: 'view',
    createIfMissing: false,
  });
  await db.open();
  try {
    return await fn(db);
  } finally {
    await db.close();
  }
}

/** Every key and value in the database (values as hex), in key order. */
export async function dumpDb(path: string): Promise<Map<string, string>> {
  return withRawDb(path, async (db) => {
    const out = new Map<string, string>();
    for await (const [k, v] of db.iterator()) out.set(k, Buffer.from(v).toString('hex'));
    return out;
  });
}

/** Keys that start with `prefix`. */
export function keysWithPrefix(dump: ReadonlyMap<string, string>, prefix: string): string[] {
  return [...dump.keys()].filter((k) => k.startsWith(prefix));
}

/**
 * What differs from `before` to `after` (two `dumpDb`s): each key added or changed with its new
 * value, each key removed with `null`, in key order.
 */
export function changedEntries(
  before: ReadonlyMap<string, string>,
  after: ReadonlyMap<string, string>,
): [string, string | null][] {
  const changed: [string, string | null][] = [];
  for (const [k, v] of after) if (before.get(k) !== v) changed.push([k, v]);
  for (const k of before.keys()) if (!after.has(k)) changed.push([k, null]);
  return changed.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
}
