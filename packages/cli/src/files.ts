import { createReadStream, createWriteStream, renameSync, rmSync, type WriteStream } from 'node:fs';
import { once } from 'node:events';
import { finished } from 'node:stream/promises';
import { createInterface } from 'node:readline';
import type { Stream } from './output.js';

/** Lines written one at a time, with backpressure; `close()` makes the file appear. */
export interface LineSink {
  write(line: string): void | Promise<void>;
  /** Finishes the file (renamed into place only now: a failed export leaves no half file). */
  close(): Promise<void>;
  /** Drops a file that was being written. */
  abort(): void;
}

/** A sink writing to `path` (through `path.partial`), or to stdout for `-`. */
export function lineSink(path: string, stdout: Stream): LineSink {
  if (path === '-') {
    return {
      async write(line) {
        // Backpressure when stdout is a real stream (a slow pipe): wait for it to drain.
        if (stdout.write(`${line}\n`) === false && 'once' in stdout) {
          await once(stdout as unknown as NodeJS.EventEmitter, 'drain');
        }
      },
      close: async () => undefined,
      abort: () => undefined,
    };
  }
  const partial = `${path}.partial`;
  const stream: WriteStream = createWriteStream(partial, { encoding: 'utf8' });
  let failed: Error | null = null;
  stream.on('error', (error) => (failed = error));
  return {
    async write(line) {
      if (failed) throw failed;
      if (!stream.write(`${line}\n`)) await once(stream, 'drain');
    },
    async close() {
      stream.end();
      // Settles even when the stream failed before (a 'finish' would never come).
      await finished(stream);
      if (failed) throw failed;
      renameSync(partial, path);
    },
    abort() {
      stream.destroy();
      rmSync(partial, { force: true });
    },
  };
}

/** The lines of a file (or of stdin for `-`). */
export function readLines(path: string): AsyncIterable<string> {
  const input = path === '-' ? process.stdin : createReadStream(path, { encoding: 'utf8' });
  return createInterface({ input, crlfDelay: Infinity });
}
