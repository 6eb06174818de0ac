import { existsSync, readFileSync } from 'node:fs';
import { userInfo } from 'node:os';
import { usageError } from './args.js';
import { CliError, EXIT } from './errors.js';

/** The payload of `--data '{…}'` or `--data-file <file>` (`-` reads stdin); undefined if neither. */
export function resumeData(values: {
  readonly data?: string | undefined;
  readonly 'data-file'?: string | undefined;
}): unknown {
  const inline = values.data;
  const file = values['data-file'];
  if (inline !== undefined && file !== undefined) {
    throw usageError('give --data or --data-file, not both');
  }
  if (inline !== undefined) return parseJson(inline, '--data');
  if (file === undefined) return undefined;
  if (file !== '-' && !existsSync(file)) {
    throw new CliError(EXIT.notFound, `no file ${file}`, 'NOT_FOUND', { file });
  }
  return parseJson(readFileSync(file === '-' ? 0 : file, 'utf8'), `--data-file ${file}`);
}

function parseJson(text: string, what: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error);
    throw usageError(`${what} is not valid JSON (${reason})`);
  }
}

/** Who resumed, as recorded in the task's `resumedBy`: `--by`, else `cli:<user>`. */
export function resumedBy(by: string | undefined): string {
  if (by !== undefined) {
    if (by.trim() === '') throw usageError('--by must not be empty');
    return by;
  }
  try {
    return `cli:${userInfo().username}`;
  } catch {
    return 'cli';
  }
}

/** The zod-style issues of an `INVALID_RESUME_INPUT`, one line each. */
export function issueLines(details: Record<string, unknown> | undefined): string[] {
  const issues = Array.isArray(details?.issues) ? (details.issues as unknown[]) : [];
  return issues.slice(0, 20).map((issue) => {
    const { path, message, taskId } = (issue ?? {}) as {
      path?: unknown;
      message?: unknown;
      taskId?: unknown;
    };
    const where = Array.isArray(path) && path.length > 0 ? path.join('.') : '(the data)';
    const task = typeof taskId === 'string' ? `${taskId}: ` : '';
    return `  ${task}${where}: ${typeof message === 'string' ? message : JSON.stringify(issue)}`;
  });
}
