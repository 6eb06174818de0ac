export { workflow } from './workflow.js';
export type {
  AnyWorkflow,
  Workflow,
  WorkflowInput,
  WorkflowOptions,
  WorkflowOutput,
} from './workflow.js';
export { Engine, createEngine } from './engine.js';
export type {
  EngineOptions,
  CloseOptions,
  ListWaitingOptions,
  ResumeOptions,
  ResumeTaskOptions,
  ResumeTaskResult,
  RunHandle,
  StartOptions,
  WaitingTask,
} from './engine-types.js';
export type {
  ChildOptions,
  RetryOptions,
  StepContext,
  StepOptions,
  WaitOptions,
  WorkflowContext,
} from './context.js';
export type { EngineEventName, EngineEvents, Listener } from './events.js';
export { TerminalError } from './errors.js';
export { offlineCancel, offlinePause, offlineResume, offlineResumeTask } from './offline.js';
export { listWaitingTasks } from './waiting-list.js';
export type { WaitingQuery } from './waiting-list.js';
export type {
  OfflineResumeOptions,
  OfflineResumeTaskOptions,
  OfflineResumeTaskResult,
} from './offline.js';
export { ManualClock, systemClock } from './clock.js';
export type { Clock } from './clock.js';
export { toMs } from './duration.js';
export type { Duration } from './duration.js';
export {
  CairnError,
  FAULT_POINTS,
  LevelStore,
  MemoryStore,
  faults,
  isCairnError,
} from '@cairn/store';
export type {
  Diagnosis,
  ErrorCode,
  FaultAction,
  FaultPoint,
  ListRunsQuery,
  Run,
  RunDetail,
  RunStatus,
  Task,
  TaskStatus,
  UsageQuery,
  UsageRow,
} from '@cairn/store';
