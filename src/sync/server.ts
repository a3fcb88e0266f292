/**
 * The sync server: applies pushed operations to records (idempotently, in one transaction per
 * batch, resolving conflicts with a strategy and recording each in the audit sink before the
 * commit) and serves changes since a cursor, page by page. Transport-free: `syncHttpHandler` and
 * `syncFastifyPlugin` (http.ts) put it behind HTTP.
 * @module
 */

import { type Clock, systemClock } from '../core/clock.js';
import type { Component, ComponentDescriptor, Snapshot } from '../core/component.js';
import { type Disposer, type Listener, PolicyEmitter } from '../core/events.js';
import { joinRegistry, type Registry } from '../core/registry.js';
import { s } from '../core/schema.js';
import type { RateLimiter } from '../limits/rate-limiter.js';
import { type AuditSink, conflictEntry } from './audit.js';
import { BulwarkSyncError, ClockDriftError, SyncRateLimitedError } from './errors.js';
import { eventBase, type SyncServerEvent } from './events.js';
import { HybridClock } from './hlc.js';
import {
  type OpResult,
  operationSchema,
  type PullResponse,
  type PushResponse,
  parsePullQuery,
  parseRequest,
} from './protocol.js';
import {
  type ConflictReport,
  emptyRecord,
  isDeleted,
  type SyncOperation,
  type SyncPriority,
} from './record.js';
import { keyOf, type RecordWrite, type StoredRecord, type SyncServerStore } from './server-store.js';
import { applyOperation, type EntityResolver, lww, type SyncStrategy } from './strategies.js';

const DAY = 24 * 3600 * 1000;

/** Options of `syncServer()`. */
export interface SyncServerOptions {
  /** Where records live: `postgresSyncStore(…)` in production, `memorySyncStore()` in tests. */
  store: SyncServerStore;
  /** Conflict strategy. Default `lww()`. */
  strategy?: SyncStrategy;
  /** Per-entity-type resolvers, overriding the strategy for that type. */
  resolvers?: Readonly<Record<string, EntityResolver>>;
  /** Where every resolved conflict is recorded (e.g. `bulwark/audit`'s log). Default: nowhere. */
  audit?: AuditSink;
  /** Per-client rate limit (`rateLimiter` from `bulwark`, keyed by client id; cost 1 per request). */
  rateLimit?: { limiter: RateLimiter; bypass?: readonly SyncPriority[] };
  /** Most operations per push. Default 1 000. */
  maxBatch?: number;
  /** Largest page of a pull. Default 1 000. */
  maxPage?: number;
  /** Tombstones are kept this long after a delete (clients offline longer must resync). Default 30 days. */
  tombstoneRetentionMs?: number;
  /** Largest lead of an operation's stamp over the server clock; beyond it the op is answered `retry`. Default 60 000. */
  maxDriftMs?: number;
  /** Clock (its `date()` stamps retention). Default the system clock. */
  clock?: Clock;
  /** Component name. Default `sync`. */
  name?: string;
  registry?: Registry;
}

const optionsSchema = s.object({
  store: s.custom('a sync server store', (v, p) =>
    typeof v === 'object' && v !== null && typeof (v as SyncServerStore).push === 'function'
      ? (v as SyncServerStore)
      : s.fail(p, 'a sync server store (memorySyncStore() or postgresSyncStore())', v),
  ),
  strategy: s.optional(
    s.custom('a sync strategy (lww(), serverWins(), threeWay(), …)', (v, p) =>
      typeof (v as SyncStrategy | undefined)?.resolve === 'function' &&
      typeof (v as SyncStrategy).name === 'string'
        ? (v as SyncStrategy)
        : s.fail(p, 'a sync strategy (lww(), serverWins(), threeWay(), …)', v),
    ),
  ),
  resolvers: s.optional(s.record(s.fn<EntityResolver>())),
  audit: s.optional(
    s.custom('an audit sink with append(entry)', (v, p) =>
      typeof (v as AuditSink | undefined)?.append === 'function'
        ? (v as AuditSink)
        : s.fail(p, 'an audit sink', v),
    ),
  ),
  rateLimit: s.optional(
    s.object({
      limiter: s.unknown(),
      bypass: s.optional(s.array(s.oneOf(['critical', 'high', 'normal', 'low'] as const))),
    }),
  ),
  maxBatch: s.optional(s.int({ min: 1, max: 100_000 }), 1_000),
  maxPage: s.optional(s.int({ min: 1, max: 100_000 }), 1_000),
  tombstoneRetentionMs: s.optional(s.duration({ positive: true }), 30 * DAY),
  maxDriftMs: s.optional(s.duration({ positive: true }), 60_000),
  clock: s.optional(s.unknown()),
  name: s.optional(s.string(), 'sync'),
  registry: s.optional(s.unknown()),
});

// Deliberate repetition: a component descriptor is data (kind, help, category, states, gauges,
// counters); every component writes its own, alike in shape only.
const DESCRIPTOR: ComponentDescriptor = {
  kind: 'syncServer',
  help: 'An offline-first sync endpoint: pushes of operations, pulls of changes',
  category: 'sync',
  states: ['serving', 'closed'],
  gauges: { inFlight: 'Push and pull requests running now' },
  counters: {
    pushes: 'Push requests committed',
    applied: 'Operations applied',
    duplicates: 'Operations pushed again (answered from their stored outcome)',
    conflicts: 'Conflicts resolved (each recorded in the audit sink)',
    retries: 'Operations answered retry (clock stamp too far ahead)',
    pulls: 'Pull requests served',
    rejections: 'Requests refused (rate limit, bad request, expired cursor)',
    swept: 'Tombstones removed past retention',
  },
};

/** A sync server. See `syncServer()`. */
export class SyncServer implements Component {
  // Deliberate repetition: the Component fields every component declares (kind, name, descriptor).
  readonly kind = 'syncServer';
  readonly name: string;
  readonly descriptor = DESCRIPTOR;
  readonly store: SyncServerStore;
  readonly strategy: SyncStrategy;
  private readonly resolvers: Readonly<Record<string, EntityResolver>>;
  private readonly audit: AuditSink | undefined;
  private readonly limiter: RateLimiter | undefined;
  private readonly bypass: ReadonlySet<string>;
  private readonly maxBatch: number;
  /** Largest page of a pull. */
  readonly maxPage: number;
  private readonly tombstoneRetentionMs: number;
  private readonly clock: Clock;
  private readonly hlc: HybridClock;
  private readonly events = new PolicyEmitter<SyncServerEvent>();
  private readonly opSchema;
  private inFlight = 0;
  private closed = false;
  private readonly counts = {
    pushes: 0,
    applied: 0,
    duplicates: 0,
    conflicts: 0,
    retries: 0,
    pulls: 0,
    rejections: 0,
    swept: 0,
  };

  // Deliberate repetition: zeroed counters, then the options parsed by this component's own schema
  // (the shape every component's constructor has).
  constructor(options: SyncServerOptions) {
    const o = optionsSchema.parse(options, 'syncServer');
    this.store = o.store;
    this.strategy = (o.strategy as SyncStrategy | undefined) ?? lww();
    this.resolvers = o.resolvers ?? {};
    this.audit = o.audit;
    this.limiter = o.rateLimit?.limiter as RateLimiter | undefined;
    this.bypass = new Set(o.rateLimit?.bypass ?? []);
    this.maxBatch = o.maxBatch;
    this.maxPage = o.maxPage;
    this.tombstoneRetentionMs = o.tombstoneRetentionMs;
    this.clock = (o.clock as Clock | undefined) ?? systemClock;
    this.name = o.name;
    this.hlc = new HybridClock({
      node: 'server',
      maxDriftMs: o.maxDriftMs,
      clock: this.clock,
      name: this.name,
    });
    this.opSchema = s.object({ ops: s.array(operationSchema, { max: this.maxBatch }) });
  }

  private emit(e: SyncServerEvent): void {
    if (this.events.active) this.events.emit(e);
  }

  private refuse(clientId: string, reason: 'rateLimited' | 'badRequest' | 'cursorExpired'): void {
    this.counts.rejections++;
    this.emit({ ...eventBase('syncServer', this.name), event: 'rejected', clientId, reason });
  }

  private admit(clientId: string, ops: readonly { priority: string }[]): void {
    if (this.closed) throw new BulwarkSyncError('CLOSED', `Sync server "${this.name}" is closed`);
    if (this.limiter === undefined) return;
    if (ops.length > 0 && ops.every((op) => this.bypass.has(op.priority))) return;
    const d = this.limiter.consume(clientId);
    if (!d.allowed) {
      this.refuse(clientId, 'rateLimited');
      throw new SyncRateLimitedError(clientId, d.retryAfterMs);
    }
  }

  private parse<T>(clientId: string, fn: () => T): T {
    try {
      return fn();
    } catch (error) {
      if (error instanceof BulwarkSyncError && error.code === 'BAD_REQUEST')
        this.refuse(clientId, 'badRequest');
      throw error;
    }
  }

  /**
   * Applies a batch of operations from `clientId` (the body `{ ops }`), in order, in one
   * transaction: each operation once (an operation whose `seq` is at or below the highest this
   * client applied to that record was applied before: status `duplicate`, nothing changes),
   * conflicts resolved and appended to the audit sink before the commit.
   * Throws `BAD_REQUEST`, `SyncRateLimitedError`, or the store's error (nothing applied).
   */
  async push(clientId: string, body: unknown): Promise<PushResponse> {
    const req = this.parse(clientId, () => parseRequest(this.opSchema, body, 'push'));
    const ops: SyncOperation[] = req.ops.map((op) => ({ ...op, clientId }));
    this.admit(clientId, ops);
    this.inFlight++;
    try {
      const { results, conflicts } = await this.store.push((tx) => this.applyBatch(tx, ops));
      let applied = 0;
      let duplicates = 0;
      for (const r of results) {
        if (r.status === 'applied') applied++;
        else if (r.status === 'duplicate') duplicates++;
        else this.counts.retries++;
      }
      this.counts.pushes++;
      this.counts.applied += applied;
      this.counts.duplicates += duplicates;
      this.counts.conflicts += conflicts.length;
      if (this.events.active) {
        for (const c of conflicts) {
          this.emit({
            ...eventBase('syncServer', this.name),
            event: 'conflict',
            clientId,
            opId: c.opId,
            entity: c.entity,
            id: c.id,
            fields: c.fields,
            strategy: c.strategy,
          });
        }
        this.emit({
          ...eventBase('syncServer', this.name),
          event: 'pushed',
          clientId,
          applied,
          duplicates,
          conflicts: conflicts.length,
        });
      }
      return { results };
    } finally {
      this.inFlight--;
    }
  }

  private async applyBatch(
    tx: Parameters<Parameters<SyncServerStore['push']>[0]>[0],
    ops: readonly SyncOperation[],
  ): Promise<{ results: OpResult[]; conflicts: ConflictReport[] }> {
    const now = this.clock.date();
    const keys = new Map<string, { entity: string; id: string }>();
    for (const op of ops) keys.set(keyOf(op.entity, op.id), op);
    const current = await tx.read([...keys.values()]);
    const dirty = new Map<string, RecordWrite>();
    const results: OpResult[] = [];
    const conflicts: ConflictReport[] = [];
    /** Records whose next operations from this client wait (an earlier one was answered `retry`). */
    const blocked = new Set<string>();
    for (const op of ops) {
      const k = keyOf(op.entity, op.id);
      const stored: StoredRecord = current.get(k) ?? { record: emptyRecord(op.entity, op.id), marks: {} };
      const mark = stored.marks[op.clientId] ?? 0;
      if (op.seq <= mark) {
        // Applied before (a replay after a crash or a lost answer): the same outcome, nothing applied.
        results.push({ opId: op.opId, status: 'duplicate', version: stored.record.version, conflict: null });
        continue;
      }
      if (blocked.has(k)) {
        results.push({ opId: op.opId, status: 'retry', version: 0, conflict: null, code: 'ORDER' });
        continue;
      }
      try {
        this.hlc.receive(op.hlc);
      } catch (error) {
        if (!(error instanceof ClockDriftError)) throw error;
        blocked.add(k);
        results.push({ opId: op.opId, status: 'retry', version: 0, conflict: null, code: error.code });
        continue;
      }
      const out = applyOperation(stored.record, op, this.strategy, this.resolvers[op.entity]);
      const next: StoredRecord = { record: out.record, marks: { ...stored.marks, [op.clientId]: op.seq } };
      current.set(k, next);
      dirty.set(k, { ...next, deletedAt: isDeleted(out.record) ? now : null });
      if (out.conflict !== null) conflicts.push(out.conflict);
      results.push({
        opId: op.opId,
        status: 'applied',
        version: out.record.version,
        conflict: out.conflict?.fields ?? null,
      });
    }
    // Every conflict reaches the audit sink before the commit: if the sink fails, nothing is applied.
    if (this.audit !== undefined) for (const c of conflicts) await this.audit.append(conflictEntry(c));
    if (dirty.size > 0) await tx.write([...dirty.values()], now);
    return { results, conflicts };
  }

  /**
   * Changes after `query.cursor` (default 0), at most `query.limit` (default and cap `maxPage`).
   * A cursor older than the tombstone retention answers `reset: true` (pull again from 0).
   */
  async pull(clientId: string, query: { cursor?: unknown; limit?: unknown } = {}): Promise<PullResponse> {
    const { cursor, limit } = this.parse(clientId, () => parsePullQuery(query, this.maxPage));
    this.admit(clientId, []);
    this.inFlight++;
    try {
      const page = await this.store.pull(cursor, limit + 1);
      this.counts.pulls++;
      if (cursor > 0 && cursor < page.horizon) {
        this.refuse(clientId, 'cursorExpired');
        return { changes: [], cursor: 0, hasMore: true, reset: true };
      }
      const changes = page.changes.slice(0, limit);
      const next = changes.length > 0 ? changes[changes.length - 1]!.cursor : cursor;
      this.emit({
        ...eventBase('syncServer', this.name),
        event: 'pulled',
        clientId,
        changes: changes.length,
      });
      return { changes, cursor: next, hasMore: page.changes.length > limit, reset: false };
    } finally {
      this.inFlight--;
    }
  }

  /** Removes tombstones and operation outcomes past their retention; returns the tombstones removed. */
  async sweep(): Promise<number> {
    const now = this.clock.date();
    const removed = await this.store.sweep(now - this.tombstoneRetentionMs);
    this.counts.swept += removed;
    this.emit({ ...eventBase('syncServer', this.name), event: 'swept', removed });
    return removed;
  }

  /** Refuses new requests and closes the store. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.emit({ ...eventBase('syncServer', this.name), event: 'stateChange', from: 'serving', to: 'closed' });
    await this.store.close();
  }

  snapshot(): Snapshot {
    return {
      kind: this.kind,
      name: this.name,
      state: this.closed ? 'closed' : 'serving',
      gauges: { inFlight: this.inFlight },
      counters: { ...this.counts },
      details: {
        strategy: this.strategy.name,
        store: this.store.description,
        resolvers: Object.keys(this.resolvers),
      },
    };
  }

  onEvent(listener: Listener<SyncServerEvent>): Disposer {
    return this.events.on(listener);
  }
}

/**
 * Makes a sync server over a store.
 *
 * @example
 * ```ts
 * import { memoryAuditSink, memorySyncStore, syncServer, threeWay } from 'bulwark/sync';
 * const audit = memoryAuditSink();
 * const server = syncServer({ store: memorySyncStore(), strategy: threeWay(), audit });
 * const { results } = await server.push('phone-1', { ops: [] });
 * const page = await server.pull('phone-1', { cursor: 0 });
 * console.log(results.length, page.changes.length); // 0 0
 * ```
 */
export function syncServer(options: SyncServerOptions): SyncServer {
  const server = new SyncServer(options);
  return joinRegistry(options.registry as Registry | undefined, server);
}
