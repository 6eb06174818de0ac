import type { Run, Task } from '@cairn/store';
import { formatDuration, formatTime, paintStatus } from './format.js';
import { colours, padEnd, padStart, type Colours, type Paint } from './output.js';
import { taskErrorCode, type ErrorCodes } from './stored-errors.js';

/**
 * A run's tasks on a common time axis: one line per task, its attempts drawn as bars from
 * when they started to when they ended, so tasks that ran in parallel show side by side.
 * Tasks started together (one parallel group) are bracketed with ┌ │ └.
 */
export interface TimelineOptions {
  readonly c: Colours;
  /** Columns for the bars. */
  readonly width: number;
  /** Where open tasks (running, waiting) end on the axis when the run has not ended. */
  readonly now: number;
  readonly codes: ErrorCodes;
}

/** Tasks that are the engine's recorded values (`$now`, `$random`, ...), not the user's. */
export function isRecordedValue(task: Task): boolean {
  return task.taskId.startsWith('$');
}

export function timeline(run: Run, allTasks: readonly Task[], options: TimelineOptions): string[] {
  const { c, width } = options;
  const tasks = allTasks.filter((t) => !isRecordedValue(t));
  if (tasks.length === 0) return [c.dim('  (no tasks yet)')];
  const start = Math.min(run.startedAt ?? run.createdAt, ...tasks.map((t) => t.startedAt));
  const end = axisEnd(run, tasks, options.now);
  const span = Math.max(1, end - start);
  const col = (at: number) => Math.round(((at - start) / span) * width);

  const brackets = groupBrackets(tasks);
  const ids = tasks.map((t, i) => `${brackets[i] ?? ''}${t.taskId}`);
  const idWidth = Math.max(4, ...ids.map((id) => id.length));
  const statusWidth = Math.max(...tasks.map((t) => t.status.length));
  const tookWidth = Math.max(...tasks.map((t) => formatDuration(taskTook(t, end)).length));

  const axis =
    `${' '.repeat(4 + idWidth + 2 + 5 + 2 + statusWidth + 2 + 5 + 2 + tookWidth + 2)}` +
    c.dim(axisLabel(span, width));
  const header = c.bold(
    `${'#'.padStart(3)} ${padEnd('TASK', idWidth)}  KIND   ${padEnd('STATUS', statusWidth)}  TRIES  ${padStart('TOOK', tookWidth)}`,
  );
  const lines = [axis, header];
  tasks.forEach((task, i) => {
    const bar = drawBar(task, col, width, end, c);
    lines.push(
      [
        String(task.seq).padStart(3),
        ' ',
        padEnd(c.dim(brackets[i] ?? '') + task.taskId, idWidth),
        '  ',
        task.kind.padEnd(5),
        '  ',
        padEnd(paintStatus(task.status, c), statusWidth),
        '  ',
        String(Math.max(task.attempt, task.attempts.length)).padStart(5),
        '  ',
        padStart(formatDuration(taskTook(task, end)), tookWidth),
        '  ',
        `${c.dim('│')}${bar}${c.dim('│')}`,
        ' ',
        taskNote(task, options),
      ]
        .join('')
        .trimEnd(),
    );
  });
  const used = new Set(tasks.flatMap((t) => [...drawBar(t, col, width, end, colours(false))]));
  const legend = LEGEND.filter(([glyph]) => used.has(glyph)).map(([g, what]) => `${g} ${what}`);
  if (brackets.some((b) => b !== '')) legend.push('┌│└ started together (parallel)');
  lines.push(c.dim(`    ${legend.join('   ')}`));
  return lines;
}

const LEGEND: readonly [string, string][] = [
  ['█', 'ran'],
  ['▒', 'failed, interrupted or cancelled'],
  ['▓', 'running'],
  ['░', 'waiting for input'],
  ['·', 'sleeping'],
];

/** The right edge of the axis: the run's end, or the latest thing that happened in it. */
function axisEnd(run: Run, tasks: readonly Task[], now: number): number {
  if (run.endedAt !== null) return Math.max(run.endedAt, ...tasks.map((t) => t.endedAt ?? 0));
  const known = Math.max(
    run.updatedAt,
    ...tasks.flatMap((t) => [
      t.startedAt,
      t.endedAt ?? 0,
      ...t.attempts.map((a) => a.endedAt ?? 0),
    ]),
  );
  // Something still running: the axis reaches now. Waiting for days: it stops at the last event.
  return tasks.some((t) => t.status === 'running') ? Math.max(known, now) : known;
}

function taskTook(task: Task, end: number): number | null {
  if (task.durationMs !== null) return task.durationMs;
  if (task.status === 'running') return end - task.startedAt;
  return null;
}

/** `0 ───────── 1.24 s` across the bar columns. */
function axisLabel(span: number, width: number): string {
  const right = formatDuration(span);
  const inner = Math.max(1, width - right.length - 3);
  return ` 0 ${'─'.repeat(inner)} ${right}`.slice(0, width + 2);
}

/** ┌ │ └ before the tasks of a parallel group (tasks started in the same turn). */
function groupBrackets(tasks: readonly Task[]): string[] {
  const members = new Map<string, number[]>();
  tasks.forEach((t, i) => {
    if (t.group === null) return;
    const list = members.get(t.group) ?? [];
    list.push(i);
    members.set(t.group, list);
  });
  const marks: string[] = tasks.map(() => '');
  for (const list of members.values()) {
    if (list.length < 2) continue;
    list.forEach((index, n) => {
      marks[index] = n === 0 ? '┌ ' : n === list.length - 1 ? '└ ' : '│ ';
    });
  }
  return marks;
}

/** Each attempt as a segment: failed attempts red, the last in its status's colour. */
function drawBar(
  task: Task,
  col: (at: number) => number,
  width: number,
  end: number,
  c: Colours,
): string {
  const cells: string[] = Array.from({ length: width }, () => ' ');
  const paint = (from: number, to: number, glyph: string, colour: Paint) => {
    const a = Math.min(width - 1, Math.max(0, col(from)));
    const b = Math.max(a + 1, Math.min(width, col(to)));
    for (let i = a; i < b; i++) cells[i] = colour(glyph);
  };
  const attempts = task.attempts.length > 0 ? task.attempts : [];
  if (attempts.length === 0 || task.kind !== 'step') {
    const [glyph, colour] = look(task.status, c);
    paint(task.startedAt, task.endedAt ?? end, glyph, colour);
    return cells.join('');
  }
  attempts.forEach((a, i) => {
    const next = attempts[i + 1];
    const [glyph, colour] = !next && task.status !== 'failed' ? look(task.status, c) : ['▒', c.red];
    // An attempt without an end was interrupted (its process stopped) when the next began.
    paint(a.startedAt, a.endedAt ?? next?.startedAt ?? task.endedAt ?? end, glyph, colour);
  });
  return cells.join('');
}

function look(status: Task['status'], c: Colours): [string, Paint] {
  switch (status) {
    case 'completed':
      return ['█', c.green];
    case 'failed':
    case 'timed_out':
      return ['█', c.red];
    case 'cancelled':
      return ['▒', c.magenta];
    case 'waiting':
      return ['░', c.yellow];
    case 'sleeping':
      return ['·', c.yellow];
    case 'running':
      return ['▓', c.cyan];
  }
}

/** What else a task's line says: model and tokens, who resumed a wait, a child run. */
export function taskNote(task: Task, { c, codes }: TimelineOptions): string {
  const parts: string[] = [];
  const { meta } = task;
  if (typeof meta.model === 'string') parts.push(meta.model);
  if (typeof meta.totalTokens === 'number') parts.push(`${meta.totalTokens} tok`);
  if (task.kind === 'wait' && task.status === 'waiting') parts.push(c.yellow('waiting for input'));
  if (task.resumedBy) parts.push(`by ${task.resumedBy}`);
  if (task.kind === 'sleep' && task.status === 'sleeping' && task.wakeAt) {
    parts.push(`wakes ${formatTime(task.wakeAt)}`);
  }
  if (task.kind === 'child' && task.childRunId) parts.push(`→ ${task.childRunId}`);
  if (task.error) parts.push(c.red(taskErrorCode(codes, task.kind, task.error)));
  return c.dim(parts.join(' · '));
}
