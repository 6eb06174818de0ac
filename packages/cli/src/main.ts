#!/usr/bin/env node
// The `cairn` command: `bin/cairn.js` runs this file from source with tsx.
import { cairn } from './cli.js';

// `cairn export | head`: a reader that stops early is not an error.
process.stdout.on('error', (error: NodeJS.ErrnoException) => {
  if (error.code === 'EPIPE') process.exit(0);
  throw error;
});

process.exitCode = await cairn(process.argv.slice(2), {
  stdout: process.stdout,
  stderr: process.stderr,
  env: process.env,
});
