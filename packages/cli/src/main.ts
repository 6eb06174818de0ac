#!/usr/bin/env node
// The `cairn` command: `bin/cairn.js` runs this file from source with tsx.
import { cairn } from './cli.js';

process.exitCode = await cairn(process.argv.slice(2), {
  stdout: process.stdout,
  stderr: process.stderr,
  env: process.env,
});
