import { resolve } from 'node:path';

/** The environment variable that overrides the default store directory. */
export const STORE_DIR_ENV = 'CAIRN_STORE_DIR';

/** The default store directory, relative to the working directory. */
export const DEFAULT_STORE_DIR = '.cairn';

/** An explicit path wins, then `CAIRN_STORE_DIR`, then `.cairn` under the working directory. */
export function resolveStorePath(path?: string): string {
  const fromEnv = process.env[STORE_DIR_ENV];
  return resolve(path ?? (fromEnv !== undefined && fromEnv !== '' ? fromEnv : DEFAULT_STORE_DIR));
}
