/** The keys and values test/children/level-writer.ts writes: each key once, its value from its name. */

const KEYS_PER_BATCH = 16;

/** The value of a key: its name, padded so that tables fill. */
export function levelValue(key: string): string {
  return `${key}:`.padEnd(240, key.slice(-1));
}

/** The puts of batch `n`. */
export function levelBatch(n: number): [string, string][] {
  return Array.from({ length: KEYS_PER_BATCH }, (_, j) => {
    const key = `k${String(n).padStart(6, '0')}-${String(j).padStart(2, '0')}`;
    return [key, levelValue(key)];
  });
}
