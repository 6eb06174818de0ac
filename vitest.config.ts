import { defineConfig } from 'vitest/config';

export default defineConfig({
  resolve: {
    conditions: ['@cairn/source'],
  },
  ssr: {
    resolve: {
      conditions: ['@cairn/source'],
    },
  },
  test: {
    include: ['packages/*/test/**/*.test.ts', 'test/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    pool: 'forks',
    // Every record the engine writes through its unchecked path is checked in tests.
    env: { CAIRN_VALIDATE_WRITES: '1' },
  },
});
