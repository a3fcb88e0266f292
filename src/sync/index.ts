/**
 * `bulwark/sync`: offline-first sync. Devices record edits offline in a durable outbox (SQLite),
 * replay them per record in order (critical first) when online, and pull the server's changes; the
 * server (PostgreSQL, node:http or Fastify) applies each operation once, resolves conflicts
 * deterministically (last-writer-wins by hybrid logical clock, server-authoritative, three-way
 * merge, or a resolver per entity type) and records every conflict in an audit sink.
 * @module
 */

export {
  type AuditEntry,
  type AuditSink,
  CONFLICT_ACTION,
  type ConflictLog,
  type MemoryAuditSink,
  memoryAuditSink,
} from './audit.js';
export {
  type EditOptions,
  openSyncClient,
  SyncClient,
  type SyncClientOptions,
  type SyncReport,
} from './client.js';
export { BulwarkSyncError, ClockDriftError, type SyncErrorCode, SyncRateLimitedError } from './errors.js';
export type { HybridClockEvent, SyncClientEvent, SyncServerEvent } from './events.js';
export {
  compareHlc,
  formatHlc,
  type HlcParts,
  HybridClock,
  type HybridClockOptions,
  hybridClock,
  isHlc,
  parseHlc,
} from './hlc.js';
export { type FastifyLike, type SyncHttpOptions, syncFastifyPlugin, syncHttpHandler } from './http.js';
export { type FieldDecider, type MergeResult, threeWayMerge } from './merge.js';
export type { SyncPolicy } from './network.js';
export { type PostgresSyncStoreOptions, postgresSyncStore } from './postgres-store.js';
export type { OpResult, PullResponse, PushRequest, PushResponse } from './protocol.js';
export {
  type ConflictReport,
  emptyRecord,
  type Fields,
  isDeleted,
  type SyncOperation,
  type SyncPriority,
  type SyncRecord,
  sameValue,
} from './record.js';
export { SyncServer, type SyncServerOptions, syncServer } from './server.js';
export {
  type ChangedRecord,
  memorySyncStore,
  type PullPage,
  type PushTx,
  type RecordWrite,
  type StoredRecord,
  type SyncServerStore,
} from './server-store.js';
export {
  type ApplyResult,
  applyOperation,
  type EntityConflict,
  type EntityResolver,
  type FieldConflict,
  type FieldPolicy,
  lww,
  type SyncStrategy,
  serverWins,
  type ThreeWayOptions,
  threeWay,
} from './strategies.js';
export {
  type HttpTransportOptions,
  httpTransport,
  type LocalTransport,
  localTransport,
  type SyncTransport,
} from './transport.js';
