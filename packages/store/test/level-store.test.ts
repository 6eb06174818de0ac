import { mkdtempSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe } from 'vitest';
import { LevelStore } from '@cairn/store';
import { storeSuite } from '@cairn/store/suite';

const dirs: string[] = [];

afterAll(async () => {
  for (const dir of dirs.splice(0)) await rm(dir, { recursive: true, force: true, maxRetries: 3 });
});

storeSuite({
  factory: ({ reuse, ...options } = {}) => {
    if (reuse !== undefined)
      return new LevelStore({ ...options, path: (reuse as LevelStore).location });
    const path = mkdtempSync(join(tmpdir(), 'cairn-store-suite-'));
    dirs.push(path);
    return new LevelStore({ ...options, path });
  },
  supports: new LevelStore({ path: tmpdir() }).supports,
});

describe("in process durability (writes acknowledged by the store's log)", () => {
  storeSuite({
    factory: ({ reuse, ...options } = {}) => {
      if (reuse !== undefined)
        return new LevelStore({
          durability: 'process',
          ...options,
          path: (reuse as LevelStore).location,
        });
      const path = mkdtempSync(join(tmpdir(), 'cairn-store-suite-'));
      dirs.push(path);
      return new LevelStore({ durability: 'process', ...options, path });
    },
    supports: new LevelStore({ path: tmpdir() }).supports,
  });
});
