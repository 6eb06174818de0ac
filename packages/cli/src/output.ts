/** Where a command writes: tables and colour for people, JSON for scripts. */

export interface Stream {
  write(text: string): unknown;
  readonly isTTY?: boolean;
  readonly columns?: number;
}

export type Paint = (text: string) => string;

export interface Colours {
  readonly bold: Paint;
  readonly dim: Paint;
  readonly red: Paint;
  readonly green: Paint;
  readonly yellow: Paint;
  readonly blue: Paint;
  readonly magenta: Paint;
  readonly cyan: Paint;
}

const ANSI = /\x1b\[[0-9;]*m/g;

/** Visible length of a string that may hold colour codes. */
export function visibleLength(text: string): number {
  return [...text.replace(ANSI, '')].length;
}

export function padEnd(text: string, width: number): string {
  return text + ' '.repeat(Math.max(0, width - visibleLength(text)));
}

export function padStart(text: string, width: number): string {
  return ' '.repeat(Math.max(0, width - visibleLength(text))) + text;
}

/** Colour on a terminal, unless NO_COLOR is set; FORCE_COLOR turns it on anywhere. */
export function useColour(stream: Stream, env: NodeJS.ProcessEnv): boolean {
  if (env.NO_COLOR !== undefined && env.NO_COLOR !== '') return false;
  if (env.FORCE_COLOR !== undefined && env.FORCE_COLOR !== '' && env.FORCE_COLOR !== '0') {
    return true;
  }
  return stream.isTTY === true && env.TERM !== 'dumb';
}

export function colours(enabled: boolean): Colours {
  const paint =
    (open: number, close: number): Paint =>
    (text) =>
      enabled && text !== '' ? `\x1b[${open}m${text}\x1b[${close}m` : text;
  return {
    bold: paint(1, 22),
    dim: paint(2, 22),
    red: paint(31, 39),
    green: paint(32, 39),
    yellow: paint(33, 39),
    blue: paint(34, 39),
    magenta: paint(35, 39),
    cyan: paint(36, 39),
  };
}

export interface Column {
  readonly header: string;
  readonly align?: 'left' | 'right';
}

export class Output {
  readonly c: Colours;
  readonly colour: boolean;

  constructor(
    readonly stdout: Stream,
    readonly stderr: Stream,
    readonly env: NodeJS.ProcessEnv,
    /** `--json`: only JSON on stdout. */
    readonly json: boolean,
  ) {
    this.colour = !json && useColour(stdout, env);
    this.c = colours(this.colour);
  }

  /** A line for people (nothing in `--json` mode). */
  line(text = ''): void {
    if (!this.json) this.stdout.write(`${text}\n`);
  }

  /** The command's result for scripts (only in `--json` mode). */
  result(value: unknown): void {
    if (this.json) this.stdout.write(`${JSON.stringify(value, jsonReplacer, 2)}\n`);
  }

  /** A note on stderr (hints, warnings): never mixed into stdout. */
  note(text: string): void {
    this.stderr.write(`${text}\n`);
  }

  /** Rows under headers, columns padded to their widest cell. */
  table(columns: readonly Column[], rows: readonly (readonly string[])[]): void {
    const widths = columns.map((col, i) =>
      Math.max(visibleLength(col.header), ...rows.map((row) => visibleLength(row[i] ?? ''))),
    );
    const render = (cells: readonly string[]): string =>
      cells
        .map((cell, i) => {
          const width = widths[i] ?? 0;
          if (i === cells.length - 1 && columns[i]?.align !== 'right') return cell;
          return columns[i]?.align === 'right' ? padStart(cell, width) : padEnd(cell, width);
        })
        .join('  ')
        .trimEnd();
    this.line(this.c.bold(render(columns.map((col) => col.header))));
    for (const row of rows) this.line(render(row));
  }

  /** `label  value` lines with the labels aligned. */
  fields(pairs: readonly (readonly [string, string])[], indent = ''): void {
    const width = Math.max(...pairs.map(([label]) => label.length));
    for (const [label, value] of pairs) {
      this.line(`${indent}${this.c.dim(label.padEnd(width))}  ${value}`);
    }
  }
}

/** Errors become plain objects in JSON output; everything else is as it is. */
function jsonReplacer(_key: string, value: unknown): unknown {
  if (value instanceof Error) {
    const { code, details } = value as { code?: unknown; details?: unknown };
    return { code, message: value.message, details };
  }
  return value;
}
