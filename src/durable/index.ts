/**
 * `bulwark/durable`: a durable operation queue / transactional outbox. Items survive crashes and
 * restarts (SQLite embedded, or PostgreSQL), run at least once under fenced leases, retry with the
 * core backoffs, dead-letter with their last error, and can be encrypted at rest.
 * @module
 */

export { type CliIo, main as runQueueCli } from './cli.js';
export { defaultCodec, jsonCodec, type PayloadCodec } from './codec.js';
export { type Cron, nextCronTime, parseCron } from './cron.js';
export { DeadLetters, type RedriveResult, type RedriveSkip } from './dead-letters.js';
export { QUEUE_DESCRIPTOR, WORKER_DESCRIPTOR } from './descriptors.js';
export {
  Keyring,
  type KeyringKeyInput,
  keyring,
  keyringFromEnv,
} from './encryption.js';
export { BulwarkDurableError, type DurableErrorCode } from './errors.js';
export type { DurableQueueEvent, DurableWorkerEvent } from './events.js';
export { serializeError } from './failures.js';
export { FleetLimits, type LimitsOptions } from './fleet-limits.js';
export { uuidv7 } from './ids.js';
export type {
  DeadLetter,
  EnqueueResult,
  ItemView,
  Job,
  JobContext,
  JobHandler,
  QueueStats,
  RewrapProgress,
  WorkerStats,
} from './job.js';
export type {
  EnqueueOptions,
  QueueOptions,
  RedriveOptions,
  RetentionOptions,
  WorkOptions,
} from './options.js';
export type { SubjectKeyProvider } from './payloads.js';
export {
  type PostgresQueueStore,
  type PostgresStoreOptions,
  postgresStore,
} from './postgres-store.js';
export { encodeProgress, MAX_PROGRESS_BYTES } from './progress.js';
export { openQueue, Queue } from './queue.js';
export { MISSED_AFTER_MS, type ScheduleOptions, Schedules, type ScheduleView } from './schedules.js';
export { SqliteStore, type SqliteStoreOptions, sqliteStore } from './sqlite-store.js';
export type {
  ClaimedItem,
  EnqueueOutcome,
  FailAction,
  ItemState,
  LeaseRef,
  ListOptions,
  NewItem,
  QueueStore,
  RedriveSelection,
  StoredItem,
  StoreStats,
  SweepOptions,
} from './store.js';
export {
  type ExecutesOperations,
  type ForwardOutcome,
  type ForwardSender,
  storeAndForward,
} from './store-and-forward.js';
// Deliberate repetition: the public re-export of the feature types (an export list).
export type {
  CatchUp,
  QueueLimits,
  RedriveMove,
  RedriveMoveOutcome,
  ScheduleRecord,
  ScheduleRun,
  StoreFeatures,
} from './store-features.js';
export { storeFromSpec } from './store-spec.js';
export { Worker } from './worker.js';
