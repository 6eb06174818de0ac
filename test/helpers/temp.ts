import { mkdtemp, rm } from 'node:fs/promises';
import { realpathSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** A fresh directory under the OS temp dir (real path), removed by the returned cleanup. */
export async function tempDir(
  label: string,
): Promise<{ path: string; cleanup: () => Promise<void> }> {
  const path = realpathSync(await mkdtemp(join(tmpdir(), `cairn-${label}-`)));
  return {
    path,
    cleanup: () => rm(path, { recursive: true, force: true, maxRetries: 3 }),
  };
}
