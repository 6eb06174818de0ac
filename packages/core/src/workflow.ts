import { CairnError, IdSchema, checkOptionNames } from '@cairn/store';
import type { z } from 'zod';
import type { WorkflowContext } from './context.js';
import { WORKFLOW_OPTIONS } from './option-names.js';

export interface WorkflowOptions<S extends z.ZodType, O> {
  /** Runs are pinned to the version they started with. @default '1' */
  readonly version?: string;
  /** Validates the input before anything is stored. */
  readonly input: S;
  /** Validates the result; a result it refuses fails the run with `INVALID_OUTPUT`. */
  readonly output?: z.ZodType<O>;
  /** The workflow function. */
  readonly run: (ctx: WorkflowContext, input: z.output<S>) => Promise<O>;
  /** Overrides the engine's `maxRecoveries` for this workflow. */
  readonly maxRecoveries?: number;
  /** At most this many steps of this workflow run at once (across its runs). */
  readonly concurrency?: number;
}

/** A workflow definition: what `engine.start()` runs. `I` is the input type callers pass. */
export interface Workflow<I = unknown, O = unknown> {
  readonly name: string;
  readonly version: string;
  readonly input: z.ZodType<unknown, I>;
  readonly output: z.ZodType<O> | undefined;
  readonly run: (ctx: WorkflowContext, input: never) => Promise<O>;
  readonly maxRecoveries: number | undefined;
  readonly concurrency: number | undefined;
}

/** The input type a caller passes to start a workflow. */
export type WorkflowInput<W> = W extends Workflow<infer I, unknown> ? I : never;
/** The result type of a workflow. */
export type WorkflowOutput<W> = W extends Workflow<unknown, infer O> ? O : never;

/** Any workflow, whatever its types. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type AnyWorkflow = Workflow<any, any>;

function typeError(message: string): TypeError {
  return Object.assign(new TypeError(message), { code: 'INVALID_ARGUMENT' });
}

function isSchema(value: unknown): value is z.ZodType {
  return (
    typeof value === 'object' &&
    value !== null &&
    typeof (value as z.ZodType).safeParse === 'function'
  );
}

/** Defines a workflow. */
export function workflow<S extends z.ZodType, O>(
  name: string,
  options: WorkflowOptions<S, O>,
): Workflow<z.input<S>, O> {
  if (typeof name !== 'string') throw typeError('workflow name must be a string');
  if (!IdSchema.safeParse(name).success) {
    throw new CairnError(
      'INVALID_ARGUMENT',
      'workflow name must be 1-200 characters without control characters or half of a surrogate pair',
    );
  }
  if (typeof options !== 'object' || options === null)
    throw typeError('workflow options must be an object');
  checkOptionNames('workflow options', options, WORKFLOW_OPTIONS);
  if (!isSchema(options.input)) throw typeError('options.input must be a zod schema');
  if (options.output !== undefined && !isSchema(options.output)) {
    throw typeError('options.output must be a zod schema');
  }
  if (typeof options.run !== 'function') throw typeError('options.run must be a function');
  const version = options.version ?? '1';
  if (typeof version !== 'string') throw typeError('options.version must be a string');
  if (!IdSchema.safeParse(version).success) {
    throw new CairnError(
      'INVALID_ARGUMENT',
      'version must be 1-200 characters without control characters or half of a surrogate pair',
    );
  }
  for (const k of ['maxRecoveries', 'concurrency'] as const) {
    const v = options[k];
    if (
      v !== undefined &&
      (typeof v !== 'number' || !Number.isInteger(v) || v < (k === 'concurrency' ? 1 : 0))
    ) {
      throw new CairnError('INVALID_ARGUMENT', `options.${k} must be a whole number`);
    }
  }
  return Object.freeze({
    name,
    version,
    input: options.input as z.ZodType<unknown, z.input<S>>,
    output: options.output,
    run: options.run,
    maxRecoveries: options.maxRecoveries,
    concurrency: options.concurrency,
  });
}
