import type { RunFilter } from '@cairn/store';
import { choiceOption, timeOption } from './args.js';
import { RUN_STATUSES } from './constants.js';

/** The options that select runs, shared by `runs` and `export`. */
export const FILTER_OPTIONS = {
  status: { type: 'string' },
  workflow: { type: 'string' },
  namespace: { type: 'string' },
  since: { type: 'string' },
  until: { type: 'string' },
  tag: { type: 'string', multiple: true },
} as const;

export const FILTER_HELP = `  --status <status>     ${RUN_STATUSES.join(' | ')}
  --workflow <name>     runs of this workflow
  --namespace <name>    runs of this namespace
  --since <when>        created at or after: a duration back from now (1d, 12h) or a date
  --until <when>        created before: a duration back from now or a date
  --tag <tag>           runs with this tag (repeat for several: all must match)`;

interface FilterValues {
  readonly status?: string | undefined;
  readonly workflow?: string | undefined;
  readonly namespace?: string | undefined;
  readonly since?: string | undefined;
  readonly until?: string | undefined;
  readonly tag?: string[] | undefined;
}

/** The store's `RunFilter` from the filter options (bad values are usage errors). */
export function runFilter(values: FilterValues, now: number): RunFilter {
  const status = choiceOption(values.status, 'status', RUN_STATUSES);
  const since = timeOption(values.since, 'since', now);
  const until = timeOption(values.until, 'until', now);
  return {
    ...(status === undefined ? {} : { status }),
    ...(values.workflow === undefined ? {} : { workflow: values.workflow }),
    ...(values.namespace === undefined ? {} : { namespace: values.namespace }),
    ...(since === undefined ? {} : { since }),
    ...(until === undefined ? {} : { until }),
    ...(values.tag === undefined ? {} : { tags: values.tag }),
  };
}
