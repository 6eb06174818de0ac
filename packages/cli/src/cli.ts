import type { Command, CommandContext } from './command.js';
import { COMMANDS } from './commands/index.js';
import { CliError, EXIT, exitCodeOf } from './errors.js';
import { Output, type Stream } from './output.js';

export interface Io {
  readonly stdout: Stream;
  readonly stderr: Stream;
  readonly env: NodeJS.ProcessEnv;
}

const EXIT_CODES_HELP = `Exit codes:
  0  ok
  1  the operation failed (e.g. resume data refused: INVALID_RESUME_INPUT)
  2  bad arguments or usage
  3  not found (no such run, task or store)
  4  the store is locked by another process (a running engine)
  5  the store's log is damaged (LOG_DAMAGED): cairn salvage opens it`;

function mainHelp(): string {
  const width = Math.max(...COMMANDS.map((cmd) => cmd.name.length));
  const list = COMMANDS.map((cmd) => `  ${cmd.name.padEnd(width)}  ${cmd.summary}`).join('\n');
  return `cairn: operate the runs of a Cairn store from the command line

Usage: cairn <command> [options]

Commands:
${list}

Every command takes --store <dir> (default: $CAIRN_STORE_DIR, else ./.cairn), --json
(machine-readable JSON only on stdout) and --help. Durations are like 30d, 12h, 15m, 45s.
Colour is used on a terminal unless NO_COLOR is set.

${EXIT_CODES_HELP}
`;
}

/** Runs `cairn <argv>` and resolves with the exit code; never throws. */
export async function cairn(argv: readonly string[], io: Io): Promise<number> {
  const [name, ...rest] = commandFirst(argv);
  const json = rest.includes('--json');
  let output: Output | undefined;
  const ctx: CommandContext = {
    argv: rest,
    stdout: io.stdout,
    stderr: io.stderr,
    env: io.env,
    now: Date.now(),
    output: (asJson) => (output = new Output(io.stdout, io.stderr, io.env, asJson)),
  };
  try {
    if (name === undefined) {
      throw new CliError(EXIT.usage, 'missing command (see cairn --help)', 'USAGE');
    }
    if (name === '--help' || name === '-h' || name === 'help') {
      const topic = name === 'help' ? rest[0] : undefined;
      const cmd = topic === undefined ? undefined : COMMANDS.find((c) => c.name === topic);
      io.stdout.write(cmd ? `${cmd.help}\n` : mainHelp());
      return EXIT.ok;
    }
    if (name === '--version' || name === '-v') {
      io.stdout.write('cairn 0.1.0\n');
      return EXIT.ok;
    }
    const cmd: Command | undefined = COMMANDS.find((c) => c.name === name);
    if (!cmd) {
      throw new CliError(EXIT.usage, `unknown command "${name}" (see cairn --help)`, 'USAGE');
    }
    return await cmd.run(ctx);
  } catch (error) {
    return report(error, output ?? new Output(io.stdout, io.stderr, io.env, json));
  }
}

/**
 * `cairn --store dir runs` as `cairn runs --store dir`: the common options may come before the
 * command's name.
 */
function commandFirst(argv: readonly string[]): string[] {
  const leading: string[] = [];
  let i = 0;
  for (; i < argv.length; i++) {
    const arg = argv[i] ?? '';
    if (arg === '--json' || arg.startsWith('--store=')) leading.push(arg);
    else if (arg === '--store' && i + 1 < argv.length) leading.push(arg, argv[++i] ?? '');
    else break;
  }
  if (leading.length === 0) return [...argv];
  if (i >= argv.length) return []; // options and no command
  return [argv[i] ?? '', ...leading, ...argv.slice(i + 1)];
}

/** The error as one line on stderr (plus any detail lines), and as JSON with `--json`. */
function report(error: unknown, out: Output): number {
  const exit = exitCodeOf(error);
  const message = error instanceof Error ? error.message : String(error);
  const code = (error as { code?: unknown } | null)?.code;
  const details = (error as { details?: unknown } | null)?.details;
  const lines = [`cairn: ${message.split('\n')[0] ?? message}`];
  if (error instanceof CliError) lines.push(...error.more);
  // Not an error raised on purpose: the stack helps whoever reports it.
  else if (typeof code !== 'string' && error instanceof Error && error.stack)
    lines.push(error.stack);
  out.stderr.write(`${lines.join('\n')}\n`);
  out.result({
    error: {
      code: typeof code === 'string' ? code : 'INTERNAL',
      message,
      ...(details === undefined ? {} : { details }),
    },
  });
  return exit;
}
