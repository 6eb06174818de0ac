/** The CLI's pure parts, in process: arguments, schema summaries, colour, bars, the timeline. */
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { toMs } from '@cairn/core';
import { reportedCode, taskFailureCode, type Run, type Task } from '@cairn/store';
import { describe, expect, it } from 'vitest';
import { durationOption, intOption, parseCommand, timeOption } from '../src/args.js';
import { lineSink } from '../src/files.js';
import { formatDuration } from '../src/format.js';
import { colours, Output, useColour, visibleLength } from '../src/output.js';
import { renderBar } from '../src/progress.js';
import { describeSchema } from '../src/schema.js';
import { timeline } from '../src/timeline.js';

const usage = (fn: () => unknown) => {
  try {
    fn();
  } catch (error) {
    return { exitCode: (error as { exitCode?: unknown }).exitCode, message: String(error) };
  }
  return undefined;
};

describe('files', () => {
  it('an export whose file fails is refused with the error, not left waiting', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'cairn-cli-sink-'));
    try {
      const path = join(dir, 'out.ndjson');
      // The file cannot be opened: its ".partial" is a directory.
      mkdirSync(`${path}.partial`);
      const sink = lineSink(path, { write: () => true });
      await sink.write('{"a":1}');
      // The file is opened on the thread pool: wait until the sink has seen it fail (a write
      // then throws), so that close() comes after the failure.
      let seen = false;
      for (let i = 0; i < 10_000 && !seen; i++) {
        await new Promise((resolve) => setImmediate(resolve));
        seen = await Promise.resolve(sink.write('{"b":2}')).then(
          () => false,
          () => true,
        );
      }
      expect(seen).toBe(true);
      await expect(sink.close()).rejects.toMatchObject({ code: 'EISDIR' });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('arguments', () => {
  it('reads durations exactly as the engine does (the command line keeps its own copy)', () => {
    for (const text of [
      '0ms',
      '1ms',
      '250ms',
      '45s',
      '1.5h',
      '15m',
      '30d',
      '2w',
      ' 12h ',
      '3650d',
    ]) {
      expect(durationOption(text, 'x')).toBe(toMs(text as never, 'x'));
    }
  });

  it('reads durations as the engine does, and times back from now or as dates', () => {
    expect(durationOption('30d', 'older-than')).toBe(30 * 86_400_000);
    expect(durationOption('1.5h', 'x')).toBe(5_400_000);
    expect(durationOption('250ms', 'x')).toBe(250);
    for (const bad of ['30', '30 days', '-1d', 'd', '11000d']) {
      expect(usage(() => durationOption(bad, 'x'))?.exitCode).toBe(2);
    }
    expect(timeOption('1d', 'since', 1_000_000_000)).toBe(1_000_000_000 - 86_400_000);
    expect(timeOption('2025-01-31', 'since', 0)).toBe(Date.UTC(2025, 0, 31));
    expect(usage(() => timeOption('Jan 31', 'since', 0))?.exitCode).toBe(2);
  });

  it('whole numbers within bounds', () => {
    expect(intOption('10', 'limit', { max: 1000 })).toBe(10);
    expect(intOption(undefined, 'limit')).toBeUndefined();
    for (const bad of ['0', '1001', '1.5', '-3', 'ten', '']) {
      expect(usage(() => intOption(bad, 'limit', { max: 1000 }))?.exitCode).toBe(2);
    }
  });

  it('parseCommand: strict options, positional counts, short messages', () => {
    const options = { task: { type: 'string' } } as const;
    const parsed = parseCommand(['r1', '--task', 't', '--json'], options, [1, 1, 'run id']);
    expect(parsed.positionals).toEqual(['r1']);
    expect(parsed.values).toMatchObject({ task: 't', json: true });
    expect(usage(() => parseCommand(['--nope'], options))?.message).toContain(
      'unknown option --nope',
    );
    expect(usage(() => parseCommand([], options, [1, 1, 'run id']))?.message).toContain(
      'missing run id',
    );
    // --help is answered even when positionals are missing.
    expect(parseCommand(['--help'], options, [1, 1]).values.help).toBe(true);
  });
});

describe('output', () => {
  it('colour on a terminal only, never with NO_COLOR, always with FORCE_COLOR', () => {
    expect(useColour({ write: () => true, isTTY: true }, {})).toBe(true);
    expect(useColour({ write: () => true, isTTY: true }, { NO_COLOR: '1' })).toBe(false);
    expect(useColour({ write: () => true }, {})).toBe(false);
    expect(useColour({ write: () => true }, { FORCE_COLOR: '1' })).toBe(true);
    expect(colours(true).red('x')).toBe('\x1b[31mx\x1b[39m');
    expect(colours(false).red('x')).toBe('x');
  });

  it('tables pad by visible width, colour codes aside; --json prints only JSON', () => {
    let text = '';
    const out = new Output({ write: (s: string) => (text += s) }, { write: () => true }, {}, false);
    out.table(
      [{ header: 'A' }, { header: 'N', align: 'right' }, { header: 'Z' }],
      [
        [colours(true).green('ok'), '5', 'x'],
        ['longer', '12', 'y'],
      ],
    );
    const lines = text.trimEnd().split('\n');
    expect(lines.map(visibleLength)).toEqual([13, 13, 13]);
    expect(lines[2]).toBe('longer  12  y');
    text = '';
    const json = new Output({ write: (s: string) => (text += s) }, { write: () => true }, {}, true);
    json.line('for people');
    json.result({ a: 1 });
    expect(JSON.parse(text)).toEqual({ a: 1 });
  });

  it('bars and durations', () => {
    expect(renderBar('Importing', 45, 100)).toBe(
      `Importing ${'█'.repeat(13)}${'░'.repeat(15)}  45%  45/100`,
    );
    expect(formatDuration(850)).toBe('850 ms');
    expect(formatDuration(1240)).toBe('1.24 s');
    expect(formatDuration(185_000)).toBe('3m 05s');
    expect(formatDuration(3 * 86_400_000 + 4 * 3_600_000)).toBe('3d 4h');
  });

  it('describes the JSON schema a wait expects in one line', () => {
    expect(
      describeSchema({
        type: 'object',
        properties: {
          approved: { type: 'boolean' },
          by: { type: 'string' },
          level: { enum: ['low', 'high'] },
          tags: { type: 'array', items: { type: 'string' } },
        },
        required: ['approved', 'by'],
      }),
    ).toBe('approved: boolean, by: string, level?: "low" | "high", tags?: string[]');
  });
});

describe('timeline', () => {
  const codes = { reportedCode, taskFailureCode };
  const run = { id: 'r', createdAt: 0, startedAt: 0, endedAt: 100, updatedAt: 100 } as Run;
  const task = (taskId: string, seq: number, group: string, from: number, to: number): Task => ({
    runId: 'r',
    taskId,
    kind: 'step',
    seq,
    status: 'completed',
    attempt: 1,
    attempts: [{ attempt: 1, startedAt: from, endedAt: to, error: null }],
    startedAt: from,
    endedAt: to,
    durationMs: to - from,
    group,
    meta: {},
    error: null,
    parentTaskId: null,
  });

  it('brackets a parallel group and places bars on one axis', () => {
    const lines = timeline(
      run,
      [task('a', 0, 'g0', 0, 20), task('b', 1, 'g1', 20, 100), task('c', 2, 'g1', 20, 60)],
      { c: colours(false), width: 10, now: 100, codes },
    );
    const bar = (name: string) =>
      /│(.*)│/.exec(lines.find((l) => l.includes(` ${name} `)) ?? '')?.[1];
    expect(bar('a')).toBe('██        ');
    expect(bar('┌ b')).toBe('  ████████');
    expect(bar('└ c')).toBe('  ████    ');
    expect(lines.at(-1)).toContain('┌│└ started together (parallel)');
  });

  it('draws an interrupted attempt up to the retry', () => {
    const retried: Task = {
      ...task('m', 0, 'g0', 0, 100),
      attempt: 2,
      attempts: [
        { attempt: 1, startedAt: 0, endedAt: null, error: null },
        { attempt: 2, startedAt: 50, endedAt: 100, error: null },
      ],
    };
    const lines = timeline(run, [retried], { c: colours(false), width: 10, now: 100, codes });
    expect(lines.find((l) => l.includes(' m '))).toContain('│▒▒▒▒▒█████│');
  });
});
