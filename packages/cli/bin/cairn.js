#!/usr/bin/env node
// The `cairn` command, run from its TypeScript source: tsx compiles it on the fly, and the
// workspace packages resolve to their sources (the `@cairn/source` export condition), as
// `tsx --conditions=@cairn/source src/main.ts` would do, so nothing needs to be built.
import { register } from 'node:module';

register('./source-condition.js', import.meta.url);
const { register: registerTsx } = await import('tsx/esm/api');
registerTsx();
await import('../src/main.ts');
