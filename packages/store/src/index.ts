export {
  CairnError,
  ERROR_CODES,
  isCairnError,
  osErrorOf,
  isErrorCode,
  reportedCode,
  taskFailureCode,
} from './errors.js';
export { checkOptionNames, closest, optionNames } from './options.js';
export type { CairnErrorOptions, ErrorCode } from './errors.js';
export {
  AttemptSchema,
  ErrorInfoSchema,
  IdSchema,
  LOG_LEVELS,
  LogLineSchema,
  RUN_STATUSES,
  RunSchema,
  RunStatusSchema,
  TASK_KINDS,
  TASK_STATUSES,
  TERMINAL_STATUSES,
  TaskSchema,
  TaskStatusSchema,
} from './records.js';
export type {
  Attempt,
  ErrorInfo,
  LogInput,
  LogLevel,
  LogLine,
  Run,
  RunStatus,
  Task,
  TaskKind,
  TaskStatus,
  Timer,
} from './records.js';
export { MAX_LIMIT, Store } from './store.js';
export type {
  Checkpoint,
  CheckpointOptions,
  CorruptRecord,
  Durability,
  InboxEntry,
  InboxRef,
  IntegrityProblem,
  IntegrityReport,
  ListRunsQuery,
  ListWaitingQuery,
  Page,
  RunFilter,
  StoreStatus,
  StoreSupports,
} from './store-types.js';
export { LevelBackedStore } from './level-backed-store.js';
export { LevelStore, MemoryStore } from './level-store.js';
export type { LogDamagePolicy, LogDamageReason, SalvageReport } from './log-recovery.js';
export type { LevelBackedStoreOptions } from './level-backed-store.js';
export type { LevelStoreOptions, MemoryStoreOptions } from './level-store.js';
export { CURRENT_SCHEMA_VERSION, MIGRATIONS } from './migrations.js';
export { USAGE_GROUPS, UsageDeltaSchema, countsForUsage, usageOfStep, utcDay } from './usage.js';
export type { UsageDelta, UsageGroup, UsageQuery, UsageRow, UsageTotals } from './usage.js';
export { PRUNABLE_STATUSES } from './retention.js';
export type {
  DeleteCounts,
  PrunableStatus,
  PruneOptions,
  PruneProgress,
  PruneResult,
} from './retention.js';
export { EXPORT_FORMAT, STEP_COLUMNS, csvField } from './export.js';
export type { ExportOptions, ExportProgress, ExportResult, LineWriter } from './export.js';
export type {
  ImportIssue,
  ImportOptions,
  ImportProgress,
  ImportResult,
  RunBundle,
} from './import.js';
export { fromTagged, toTagged } from './json-tags.js';
export { diagnose, refusedInputOf, runDetail } from './query.js';
export type {
  DiagnoseOptions,
  Diagnosis,
  RefusedInput,
  RunDetail,
  RunningTask,
  TaskGroup,
  TimerInfo,
  WaitingInfo,
} from './query.js';
export type { LevelDb, Migration, MigrationContext, MigrationProgress } from './migrations.js';
export { DEFAULT_STORE_DIR, STORE_DIR_ENV, resolveStorePath } from './paths.js';
export { uuidv7, isUuid } from './ids.js';
export { MAX_DEPTH, assertSerializable, roundTrip } from './codec.js';
export { FAULT_POINTS, InjectedFault, faults } from './faults.js';
export type { ArmOptions, FaultAction, FaultPoint } from './faults.js';
