import type { Output, Stream } from './output.js';

/** What a command gets: its arguments and where to write. */
export interface CommandContext {
  /** The arguments after the command's name. */
  readonly argv: readonly string[];
  readonly stdout: Stream;
  readonly stderr: Stream;
  readonly env: NodeJS.ProcessEnv;
  /** The current time (epoch ms), read once. */
  readonly now: number;
  /** Made by the command once it knows whether `--json` was given. */
  output(json: boolean): Output;
}

export interface Command {
  readonly name: string;
  /** One line for `cairn --help`. */
  readonly summary: string;
  /** The command's `--help`: usage line, then options. */
  readonly help: string;
  /** Resolves with the exit code; throws `CliError` or `CairnError` on failure. */
  run(ctx: CommandContext): Promise<number>;
}

/** Options every command takes, for the help texts. */
export const COMMON_HELP = `Common options:
  --store <dir>   the store directory (default: $CAIRN_STORE_DIR, else ./.cairn)
  --json          print machine-readable JSON only
  -h, --help      show this help`;

/** Prints a command's `--help` (on stdout, also with `--json`) and returns exit code 0. */
export function printHelp(out: Output, text: string): number {
  out.stdout.write(`${text}\n`);
  return 0;
}
