/**
 * The sync client: edits are recorded as operations in a durable outbox (SQLite) and applied to
 * the local view at once; `sync()` replays them to the server in per-record order (critical
 * first), then pulls the server's changes into the replica. Works offline: nothing leaves the
 * outbox until the server acknowledged it.
 * @module
 */

import { type Clock, systemClock, type TimerHandle } from '../core/clock.js';
import type { Component, ComponentDescriptor, Snapshot } from '../core/component.js';
import { type Disposer, type Listener, PolicyEmitter } from '../core/events.js';
import { joinRegistry, type Registry } from '../core/registry.js';
import { s } from '../core/schema.js';
import { uuidv7 } from '../durable/ids.js';
import type { AdaptiveTimeoutPolicy } from '../limits/adaptive-timeout.js';
import { BulwarkSyncError } from './errors.js';
import { eventBase, type SyncClientEvent } from './events.js';
import { HybridClock } from './hlc.js';
import { defaultPolicy, type SyncPolicy } from './network.js';
import { type FlushOutcome, type Outbox, openOutbox } from './outbox.js';
import { ENTITY } from './protocol.js';
import {
  type Fields,
  PRIORITY_RANK,
  type SyncOperation,
  type SyncPriority,
  type SyncRecord,
} from './record.js';
import { openReplica, type Replica } from './replica.js';
import { keyOf } from './server-store.js';
import type { SyncTransport } from './transport.js';

/** Options of `openSyncClient()`. */
export interface SyncClientOptions {
  /** This device's id (also its clock's node id). */
  clientId: string;
  /** How to reach the server: `httpTransport(…)` or `localTransport(…)`. */
  transport: SyncTransport;
  /** A directory for `replica.db` and `outbox.db`, or `:memory:` (nothing survives a restart). */
  path: string;
  /** Most operations per push. Default 100. */
  batchSize?: number;
  /** Records per pull page. Default 500. */
  pageSize?: number;
  /** After a crash mid-replay, unacknowledged operations run again after this lease, ms. Default 30 000. */
  leaseMs?: number;
  /** Delay before an operation waiting for an earlier one of its record is tried again, ms. Default 50. */
  deferMs?: number;
  /**
   * Policy around each push and pull. Default: retries tiered by priority (critical: 6 attempts
   * from 100 ms; normal: 4 from 500 ms; low: 2) inside an adaptive timeout that follows the
   * network's latency (p99 × 2, 200 ms to 60 s).
   */
  policy?: SyncPolicy;
  /** Largest lead of a stamp over the wall clock, ms. Default 60 000. */
  maxDriftMs?: number;
  /** Clock (its `date()` stamps edits). Default the system clock. */
  clock?: Clock;
  name?: string;
  registry?: Registry;
}

const optionsSchema = s.object({
  clientId: s.string({
    pattern: /^[A-Za-z0-9_.:@-]{1,64}$/,
    patternRule: 'a client id of 1-64 characters A-Za-z0-9_.:@-',
  }),
  transport: s.custom('a sync transport', (v, p) =>
    typeof (v as SyncTransport | undefined)?.push === 'function'
      ? (v as SyncTransport)
      : s.fail(p, 'a sync transport', v),
  ),
  path: s.string(),
  batchSize: s.optional(s.int({ min: 1, max: 10_000 }), 100),
  pageSize: s.optional(s.int({ min: 1, max: 100_000 }), 500),
  leaseMs: s.optional(s.duration({ positive: true }), 30_000),
  deferMs: s.optional(s.duration(), 50),
  policy: s.optional(s.unknown()),
  maxDriftMs: s.optional(s.duration({ positive: true }), 60_000),
  clock: s.optional(s.unknown()),
  name: s.optional(s.string()),
  registry: s.optional(s.unknown()),
});

/** Options of one edit. */
export interface EditOptions {
  /** `critical` edits replay first (and may bypass the server's rate limit). Default `normal`. */
  priority?: SyncPriority;
}

/** What one `sync()` did. */
export interface SyncReport {
  /** Operations the server acknowledged. */
  readonly pushed: number;
  /** Of those, how many met a conflict (resolved by the server). */
  readonly conflicts: number;
  /** Records received. */
  readonly pulled: number;
  /** Operations still waiting (offline, or waiting for the server). */
  readonly pending: number;
  /** Why the round stopped early (the server was unreachable), or undefined. */
  readonly error?: unknown;
}

// Deliberate repetition: a component descriptor is data (kind, help, category, states, gauges,
// counters); every component writes its own, alike in shape only.
const DESCRIPTOR: ComponentDescriptor = {
  kind: 'syncClient',
  help: 'An offline-first sync client: a durable outbox of edits and a local replica',
  category: 'sync',
  states: ['idle', 'syncing', 'offline', 'closed'],
  gauges: {
    pending: 'Operations not yet acknowledged by the server',
    timeoutMs: 'Current timeout of a push or pull (follows network latency)',
    cursor: 'Last change cursor pulled',
  },
  counters: {
    recorded: 'Operations recorded',
    pushed: 'Operations acknowledged by the server',
    conflicts: 'Acknowledged operations that met a conflict',
    pulled: 'Records pulled',
    offline: 'Sync rounds that could not reach the server',
    deferred: 'Operations that waited for an earlier one of their record',
  },
};

const RANKS = Object.entries(PRIORITY_RANK) as [SyncPriority, number][];
const nameOfRank = (rank: number): SyncPriority => RANKS.find(([, r]) => r === rank)?.[0] ?? 'normal';

/** A sync client. See `openSyncClient()`. */
export class SyncClient implements Component {
  // Deliberate repetition: the Component fields every component declares (kind, name, descriptor).
  readonly kind = 'syncClient';
  readonly name: string;
  readonly descriptor = DESCRIPTOR;
  readonly clientId: string;
  /** The client's hybrid logical clock. */
  readonly hlc: HybridClock;
  private readonly events = new PolicyEmitter<SyncClientEvent>();
  private readonly counts = { recorded: 0, pushed: 0, conflicts: 0, pulled: 0, offline: 0, deferred: 0 };
  /** Unacknowledged operations per record, in `seq` order (laid over the replica). */
  private readonly overlay = new Map<string, SyncOperation[]>();
  private seq: number;
  private state: 'idle' | 'syncing' | 'offline' | 'closed' = 'idle';
  private running: Promise<SyncReport> | null = null;
  private loop: { timer: TimerHandle | null; stopped: boolean } | null = null;
  private recording: Promise<unknown> = Promise.resolve();

  /** @internal Use `openSyncClient()`. */
  constructor(
    private readonly o: ReturnType<typeof optionsSchema.parse> & { transport: SyncTransport },
    private readonly replica: Replica,
    private readonly outbox: Outbox,
    pendingOps: SyncOperation[],
    private readonly policy: SyncPolicy,
    private readonly timeout: AdaptiveTimeoutPolicy | undefined,
    private readonly clock: Clock,
  ) {
    this.clientId = o.clientId;
    this.name = o.name ?? o.clientId;
    let last = replica.meta('hlc');
    let seq = Number(replica.meta('seq') ?? 0);
    for (const op of pendingOps.sort((a, b) => a.seq - b.seq)) {
      this.overlayOf(op.entity, op.id).push(op);
      if (last === undefined || op.hlc > last) last = op.hlc;
      seq = Math.max(seq, op.seq);
    }
    this.seq = seq;
    this.hlc = new HybridClock({
      node: o.clientId,
      maxDriftMs: o.maxDriftMs,
      clock,
      name: this.name,
      ...(last !== undefined ? { last } : {}),
    });
  }

  private overlayOf(entity: string, id: string): SyncOperation[] {
    const k = keyOf(entity, id);
    let list = this.overlay.get(k);
    if (list === undefined) {
      list = [];
      this.overlay.set(k, list);
    }
    return list;
  }

  private emit(e: SyncClientEvent): void {
    if (this.events.active) this.events.emit(e);
  }

  /** The record as this device sees it: the server's last state with this device's pending edits on top. */
  get(entity: string, id: string): Readonly<Record<string, unknown>> | undefined {
    return this.view(this.replica.get(entity, id), this.overlay.get(keyOf(entity, id)));
  }

  private view(
    confirmed: SyncRecord | undefined,
    pending: readonly SyncOperation[] | undefined,
  ): Fields | undefined {
    let fields: Record<string, unknown> | undefined =
      confirmed === undefined ? undefined : { ...confirmed.fields };
    for (const op of pending ?? []) {
      if (op.kind === 'delete') fields = undefined;
      else fields = { ...fields, ...op.fields };
    }
    return fields;
  }

  /** Every record of `entity` as this device sees it, by id. */
  list(entity: string): Map<string, Fields> {
    const out = new Map<string, Fields>();
    const ids = new Set(this.replica.list(entity).map((r) => r.id));
    for (const [k, ops] of this.overlay)
      if (ops.length > 0 && ops[0]!.entity === entity && k.startsWith(`${entity}\u0000`)) ids.add(ops[0]!.id);
    for (const id of [...ids].sort()) {
      const v = this.get(entity, id);
      if (v !== undefined) out.set(id, v);
    }
    return out;
  }

  /** The records as the server last confirmed them (no pending edits). */
  confirmed(): SyncRecord[] {
    return this.replica.all();
  }

  /** Sets `fields` of a record (creating it). Resolves once the operation is durably in the outbox. */
  put(entity: string, id: string, fields: Fields, options: EditOptions = {}): Promise<SyncOperation> {
    return this.record('put', entity, id, fields, options);
  }

  /** Deletes a record. Resolves once the operation is durably in the outbox. */
  delete(entity: string, id: string, options: EditOptions = {}): Promise<SyncOperation> {
    return this.record('delete', entity, id, {}, options);
  }

  private record(
    kind: 'put' | 'delete',
    entity: string,
    id: string,
    fields: Fields,
    options: EditOptions,
  ): Promise<SyncOperation> {
    if (this.state === 'closed')
      return Promise.reject(new BulwarkSyncError('CLOSED', `Sync client "${this.name}" is closed`));
    if (!ENTITY.test(entity))
      return Promise.reject(new BulwarkSyncError('BAD_REQUEST', `Bad entity name ${JSON.stringify(entity)}`));
    if (typeof id !== 'string' || id.length === 0 || id.length > 200)
      return Promise.reject(new BulwarkSyncError('BAD_REQUEST', `Bad record id ${JSON.stringify(id)}`));
    const copy = JSON.parse(JSON.stringify(fields ?? {})) as Record<string, unknown>;
    const confirmed = this.replica.get(entity, id);
    const pending = this.overlayOf(entity, id);
    const seen = this.view(confirmed, pending) ?? {};
    const base: Record<string, unknown> = {};
    for (const f of Object.keys(kind === 'put' ? copy : seen)) if (seen[f] !== undefined) base[f] = seen[f];
    // Per-record order beats priority: an edit cannot replay before the record's earlier edits,
    // so it takes the lowest priority among them.
    let rank = PRIORITY_RANK[options.priority ?? 'normal'] ?? PRIORITY_RANK.normal;
    for (const p of pending) rank = Math.min(rank, PRIORITY_RANK[p.priority]);
    const op: SyncOperation = {
      opId: uuidv7(this.clock.date()),
      clientId: this.clientId,
      entity,
      id,
      kind,
      fields: kind === 'put' ? copy : {},
      base,
      baseVersion: confirmed?.version ?? 0,
      hlc: this.hlc.now(),
      priority: nameOfRank(rank),
      seq: ++this.seq,
    };
    this.replica.setMeta('seq', String(this.seq));
    this.replica.setMeta('hlc', this.hlc.last);
    pending.push(op);
    // Recorded in call order; the caller hears back only after the fsynced commit.
    const done = this.recording.then(() => this.outbox.add(op, rank));
    this.recording = done.catch(() => {});
    return done.then(
      () => {
        this.counts.recorded++;
        this.emit({ ...eventBase('syncClient', this.name, op.priority), event: 'recorded', entity, id });
        return op;
      },
      (error: unknown) => {
        const i = pending.indexOf(op);
        if (i >= 0) pending.splice(i, 1);
        throw error;
      },
    );
  }

  /** Operations not yet acknowledged by the server. */
  get pending(): number {
    let n = 0;
    for (const ops of this.overlay.values()) n += ops.length;
    return n;
  }

  /**
   * One round: replays every due operation (per-record order, critical first), then pulls every
   * change. Never throws for an unreachable server: the report carries `error` and the operations
   * stay in the outbox. Concurrent calls share one round.
   */
  sync(): Promise<SyncReport> {
    if (this.state === 'closed')
      return Promise.reject(new BulwarkSyncError('CLOSED', `Sync client "${this.name}" is closed`));
    this.running ??= this.round().finally(() => {
      this.running = null;
    });
    return this.running;
  }

  private setState(to: 'idle' | 'syncing' | 'offline' | 'closed'): void {
    const from = this.state;
    if (from === to) return;
    this.state = to;
    this.emit({ ...eventBase('syncClient', this.name), event: 'stateChange', from, to });
  }

  private async round(): Promise<SyncReport> {
    this.setState('syncing');
    let pushed = 0;
    let conflicts = 0;
    let pulled = 0;
    let error: unknown;
    await this.recording;
    this.pushedInFlush = { pushed: 0, conflicts: 0 };
    for (let pass = 0; pass < 100; pass++) {
      const r = await this.outbox.drain((ops) => this.flush(ops));
      if (r.error !== undefined) {
        error = r.error;
        break;
      }
      if (r.later === 0) break;
      await new Promise((res) => setTimeout(res, this.o.deferMs));
    }
    pushed = this.pushedInFlush.pushed;
    conflicts = this.pushedInFlush.conflicts;
    if (error === undefined) {
      try {
        pulled = await this.pullAll();
      } catch (e) {
        error = e;
      }
    }
    if (error !== undefined) {
      this.counts.offline++;
      this.emit({ ...eventBase('syncClient', this.name), event: 'offline', error });
    }
    this.setState(error !== undefined ? 'offline' : 'idle');
    const report: SyncReport = { pushed, conflicts, pulled, pending: this.pending };
    return error !== undefined ? { ...report, error } : report;
  }

  private pushedInFlush = { pushed: 0, conflicts: 0 };

  private async flush(claimed: SyncOperation[]): Promise<Map<string, FlushOutcome>> {
    const out = new Map<string, FlushOutcome>();
    const inBatch = new Set(claimed.map((op) => op.opId));
    const ready: SyncOperation[] = [];
    for (const op of claimed.sort((a, b) => a.seq - b.seq)) {
      const list = this.overlay.get(keyOf(op.entity, op.id)) ?? [];
      const waits = list.some((p) => p.seq < op.seq && !inBatch.has(p.opId));
      if (waits) {
        out.set(op.opId, 'later');
        this.counts.deferred++;
        this.emit({
          ...eventBase('syncClient', this.name, op.priority),
          event: 'deferred',
          entity: op.entity,
          id: op.id,
        });
        continue;
      }
      if (!list.some((p) => p.opId === op.opId)) {
        out.set(op.opId, 'done'); // acknowledged before (a replay after a crash)
        continue;
      }
      ready.push(op);
    }
    // One request per priority class, critical first (a critical-only request may bypass the rate limit).
    for (const [priority] of RANKS.sort((a, b) => b[1] - a[1])) {
      const group = ready.filter((op) => op.priority === priority);
      if (group.length === 0) continue;
      const res = await this.policy.execute(({ signal }) => this.o.transport.push(group, signal), {
        priority,
      });
      let acked = 0;
      let conflicts = 0;
      group.forEach((op, i) => {
        const r = res.results[i];
        if (r === undefined || r.opId !== op.opId || r.status === 'retry') {
          out.set(op.opId, 'later');
          return;
        }
        out.set(op.opId, 'done');
        const list = this.overlay.get(keyOf(op.entity, op.id));
        const at = list?.findIndex((p) => p.opId === op.opId) ?? -1;
        if (at >= 0) list!.splice(at, 1);
        if (list !== undefined && list.length === 0) this.overlay.delete(keyOf(op.entity, op.id));
        acked++;
        if (r.conflict !== null) conflicts++;
      });
      this.counts.pushed += acked;
      this.counts.conflicts += conflicts;
      this.pushedInFlush.pushed += acked;
      this.pushedInFlush.conflicts += conflicts;
      this.emit({ ...eventBase('syncClient', this.name, priority), event: 'pushed', ops: acked, conflicts });
    }
    return out;
  }

  private async pullAll(): Promise<number> {
    let n = 0;
    let reset = false;
    for (let page = 0; page < 1_000_000; page++) {
      const cursor = Number(this.replica.meta('cursor') ?? 0);
      const res = await this.policy.execute(
        ({ signal }) => this.o.transport.pull(cursor, this.o.pageSize, signal),
        {
          priority: 'normal',
        },
      );
      if (res.reset) {
        this.replica.reset();
        reset = true;
        continue;
      }
      for (const r of res.changes) {
        try {
          this.hlc.receive(maxStamp(r));
        } catch {
          // A stamp too far ahead (another device's clock): keep the record, do not follow that clock.
        }
      }
      this.replica.apply(res.changes, res.cursor);
      n += res.changes.length;
      if (!res.hasMore) break;
    }
    this.counts.pulled += n;
    this.emit({ ...eventBase('syncClient', this.name), event: 'pulled', changes: n, reset });
    return n;
  }

  /**
   * Syncs now and then every `intervalMs` (default 5 000); after a failed round, again after a
   * backoff (1 s doubling to `maxOfflineDelayMs`, default 60 000). `stop()` ends it.
   */
  start(options: { intervalMs?: number; maxOfflineDelayMs?: number } = {}): void {
    const o = s
      .object({
        intervalMs: s.optional(s.duration({ positive: true }), 5_000),
        maxOfflineDelayMs: s.optional(s.duration({ positive: true }), 60_000),
      })
      .parse(options, 'syncClient.start');
    if (this.loop !== null) return;
    const loop: { timer: TimerHandle | null; stopped: boolean } = { timer: null, stopped: false };
    this.loop = loop;
    let failures = 0;
    const tick = (): void => {
      loop.timer = null;
      void this.sync().then(
        (r) => {
          failures = r.error === undefined ? 0 : failures + 1;
          if (loop.stopped) return;
          const delay =
            failures === 0
              ? o.intervalMs
              : Math.min(o.maxOfflineDelayMs, 1_000 * 2 ** Math.min(failures - 1, 20));
          loop.timer = this.clock.setTimeout(tick, delay);
        },
        () => {},
      );
    };
    tick();
  }

  /** Stops the loop of `start()` (a round in progress finishes). */
  stop(): void {
    if (this.loop === null) return;
    this.loop.stopped = true;
    if (this.loop.timer !== null) this.clock.clearTimeout(this.loop.timer);
    this.loop = null;
  }

  /** Operations still waiting and operations given up (the server refused them as malformed; kept as dead letters). */
  outboxCounts(): Promise<{ waiting: number; dead: number }> {
    return this.outbox.counts();
  }

  /** Stops, waits for a round in progress, and closes the outbox and replica. */
  async close(): Promise<void> {
    if (this.state === 'closed') return;
    this.stop();
    await this.running?.catch(() => {});
    await this.recording;
    this.setState('closed');
    await this.outbox.close();
    this.replica.close();
  }

  snapshot(): Snapshot {
    // Deliberate repetition: the Snapshot literal every component returns, with its own gauges.
    return {
      kind: this.kind,
      name: this.name,
      state: this.state,
      gauges: {
        pending: this.pending,
        timeoutMs: this.timeout?.timeoutMs ?? Number.NaN,
        cursor: Number(this.replica.meta('cursor') ?? 0),
      },
      counters: { ...this.counts },
      details: { clientId: this.clientId, hlc: this.hlc.last },
    };
  }

  onEvent(listener: Listener<SyncClientEvent>): Disposer {
    return this.events.on(listener);
  }
}

function maxStamp(r: SyncRecord): string {
  let m = r.deleted ?? '';
  for (const st of Object.values(r.stamps)) if (st > m) m = st;
  return m === '' ? '000000000000-0000-server' : m;
}

/**
 * Opens a sync client: its replica and durable outbox (rebuilt from disk after a restart).
 *
 * @example
 * ```ts
 * import { localTransport, memorySyncStore, openSyncClient, syncServer } from 'bulwark/sync';
 * const server = syncServer({ store: memorySyncStore() });
 * const phone = await openSyncClient({ clientId: 'phone', path: ':memory:', transport: localTransport(server, 'phone') });
 * await phone.put('note', 'n1', { text: 'written offline' });
 * const report = await phone.sync();
 * console.log(report.pushed, phone.get('note', 'n1')); // 1 { text: 'written offline' }
 * await phone.close();
 * ```
 */
export async function openSyncClient(options: SyncClientOptions): Promise<SyncClient> {
  const o = optionsSchema.parse(options, 'syncClient') as ReturnType<typeof optionsSchema.parse> & {
    transport: SyncTransport;
  };
  const clock = (o.clock as Clock | undefined) ?? systemClock;
  const memory = o.path === ':memory:';
  if (!memory) {
    const { mkdirSync } = await import('node:fs');
    mkdirSync(o.path, { recursive: true });
  }
  const replica = await openReplica(memory ? ':memory:' : `${o.path}/replica.db`);
  let outbox: Outbox;
  try {
    outbox = await openOutbox({
      path: memory ? ':memory:' : `${o.path}/outbox.db`,
      name: `sync:${o.clientId}`,
      batchSize: o.batchSize,
      leaseMs: o.leaseMs,
      laterMs: o.deferMs,
    });
  } catch (error) {
    replica.close();
    throw error;
  }
  const pending = await outbox.unacknowledged();
  const made =
    o.policy === undefined ? defaultPolicy(clock) : { policy: o.policy as SyncPolicy, timeout: undefined };
  const client = new SyncClient(o, replica, outbox, pending, made.policy, made.timeout, clock);
  return joinRegistry(o.registry as Registry | undefined, client);
}
