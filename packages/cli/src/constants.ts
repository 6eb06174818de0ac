import type { PrunableStatus, RunStatus, UsageGroup } from '@cairn/store';

/**
 * Words the store defines, listed here so that arguments are checked before the store
 * package is loaded (a typo costs no start-up). The checks below fail to compile if the
 * store adds or drops one.
 */
export const RUN_STATUSES = [
  'queued',
  'running',
  'paused',
  'completed',
  'failed',
  'cancelled',
] as const satisfies readonly RunStatus[];

export const USAGE_GROUPS = [
  'model',
  'workflow',
  'namespace',
  'day',
] as const satisfies readonly UsageGroup[];

export const PRUNABLE_STATUSES = [
  'completed',
  'failed',
  'cancelled',
] as const satisfies readonly PrunableStatus[];

type Exhaustive<All, Listed> = [Exclude<All, Listed>] extends [never] ? true : false;
export const LISTS_ARE_COMPLETE: [
  Exhaustive<RunStatus, (typeof RUN_STATUSES)[number]>,
  Exhaustive<UsageGroup, (typeof USAGE_GROUPS)[number]>,
  Exhaustive<PrunableStatus, (typeof PRUNABLE_STATUSES)[number]>,
] = [true, true, true];
