/**
 * The option names each public call of @cairn/core takes, checked against their types at
 * compile time; a name not listed is refused with `INVALID_ARGUMENT` (`checkOptionNames`).
 */
import { optionNames } from '@cairn/store';
import type { ChildOptions, RetryOptions, StepOptions, WaitOptions } from './context.js';
import type {
  CloseOptions,
  EngineOptions,
  ListWaitingOptions,
  ResumeOptions,
  ResumeTaskOptions,
  StartOptions,
} from './engine-types.js';
import type { OfflineResumeOptions, OfflineResumeTaskOptions } from './offline.js';
import type { WorkflowOptions } from './workflow.js';

export const WORKFLOW_OPTIONS = optionNames<WorkflowOptions<never, unknown>>()({
  version: true,
  input: true,
  output: true,
  run: true,
  maxRecoveries: true,
  concurrency: true,
});

export const ENGINE_OPTIONS = optionNames<EngineOptions>()({
  store: true,
  workflows: true,
  concurrency: true,
  maxRecoveries: true,
  retry: true,
  clock: true,
  namespace: true,
  keepPausedRuns: true,
  recover: true,
  on: true,
});

export const RETRY_OPTIONS = optionNames<RetryOptions>()({
  attempts: true,
  initialDelay: true,
  factor: true,
  maxDelay: true,
  jitter: true,
  retryable: true,
});

export const START_OPTIONS = optionNames<StartOptions>()({ id: true, namespace: true, tags: true });

export const CLOSE_OPTIONS = optionNames<CloseOptions>()({ timeout: true });

export const RESUME_OPTIONS = optionNames<ResumeOptions>()({ by: true });

export const RESUME_TASK_OPTIONS = optionNames<ResumeTaskOptions>()({ by: true, keep: true });

export const OFFLINE_RESUME_OPTIONS = optionNames<OfflineResumeOptions>()({ by: true });

export const OFFLINE_RESUME_TASK_OPTIONS = optionNames<OfflineResumeTaskOptions>()({
  by: true,
  keep: true,
});

export const LIST_WAITING_OPTIONS = optionNames<ListWaitingOptions>()({
  namespace: true,
  workflow: true,
  runId: true,
  limit: true,
  cursor: true,
});

export const STEP_OPTIONS = optionNames<StepOptions<unknown>>()({
  retry: true,
  timeout: true,
  meta: true,
});

export const WAIT_OPTIONS = optionNames<WaitOptions<never>>()({
  schema: true,
  timeout: true,
  onTimeout: true,
  description: true,
});

export const CHILD_OPTIONS = optionNames<ChildOptions>()({ tags: true });
