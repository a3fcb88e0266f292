/**
 * A circuit breaker whose state is shared, through Redis, by every instance that uses the same
 * `name` and `prefix`. It is the core `circuitBreaker` (same options, state machine and outcome
 * classification) with hooks that make its decisions fleet-wide:
 *
 * - **Opening.** Each instance counts its own outcomes (or, with `aggregate`, adds them to
 *   fleet-wide Redis buckets); the instance that opens writes the break (its end in Redis server
 *   time) to a key and PUBLISHes it; every subscribed instance opens on receipt.
 * - **Half-open.** After the break, at most `halfOpen.probes` probes run fleet-wide: a probe
 *   first takes a lease (a sorted set of tokens; a holder that dies frees it after
 *   `probeLeaseMs`). `successThreshold` successful probes (counted in Redis) close the breaker
 *   everywhere; one failure re-opens it everywhere.
 * - **Operators.** `isolate()` (reference-counted across the fleet), `forceOpen()`, `disable()`
 *   and `reset()` act on every instance.
 * - **Redis failing** or slower than `timeoutMs`: each instance runs its core breaker alone
 *   (events `fallback` / `recovered`). After its subscriber reconnects, an instance re-reads the
 *   state, so a change published while it was disconnected is not missed.
 */
import { randomBytes } from 'node:crypto';
import type { Redis } from 'ioredis';
import { CircuitBreakerPolicy, type CircuitBreakerStats } from '../core/breaker/circuit-breaker.js';
import { SHARED_CIRCUIT_BREAKER_DESCRIPTOR } from '../core/breaker/descriptor.js';
import type { BreakerHooks } from '../core/breaker/hooks.js';
import { type IsolationHandle, isolationHandle } from '../core/breaker/isolation.js';
import { breakerOperations } from '../core/breaker/operations.js';
import { FAILURE, NEUTRAL, type Outcome } from '../core/breaker/outcome.js';
import type { CircuitState, SavedCircuitState } from '../core/breaker/saved-state.js';
import type { Clock } from '../core/clock.js';
import type { ComponentDescriptor, ComponentOperation, Snapshot } from '../core/component.js';
import { type ExecuteOptions, ExecutionContext, type Operation } from '../core/context.js';
import type { CircuitBreakerEvent, Disposer, EventBase, Listener } from '../core/events.js';
import { PolicyEmitter } from '../core/events.js';
import { type Link, PolicyBase, start } from '../core/policy.js';
import { joinRegistry } from '../core/registry.js';
import { RedisLink } from './redis-link.js';
import { FleetCounts } from './shared-breaker-counts.js';
import {
  parseSharedBreakerOptions,
  type SharedBreakerSubscriber,
  type SharedCircuitBreakerOptions,
} from './shared-breaker-options.js';
import {
  CLOSE_SCRIPT,
  ISOLATE_SCRIPT,
  LEASE_SCRIPT,
  MODE_SCRIPT,
  OPEN_SCRIPT,
  PROBE_OK_SCRIPT,
  READ_SCRIPT,
  RELEASE_SCRIPT,
} from './shared-breaker-scripts.js';

/** States of a shared breaker (those of the core breaker). */
export type SharedCircuitState = CircuitState;

type Rekind<E> = E extends { readonly kind: 'circuitBreaker' }
  ? Omit<E, 'kind'> & { readonly kind: 'sharedCircuitBreaker' }
  : never;
type Own = EventBase & { readonly kind: 'sharedCircuitBreaker' };

/** Events of a shared circuit breaker: those of the core breaker, and its own. */
export type SharedCircuitBreakerEvent =
  | Rekind<Exclude<CircuitBreakerEvent, { event: 'stateChange' }>>
  | (Rekind<Extract<CircuitBreakerEvent, { event: 'stateChange' }>> & {
      /** `local`: this instance decided it; `remote`: another instance did (pub/sub or the key). */
      readonly source?: 'local' | 'remote';
    })
  /** This instance took a fleet-wide probe lease (or, during a fallback, probes locally). */
  | (Own & { readonly event: 'probe'; readonly leased: boolean })
  /** Redis failed or timed out: this instance runs its breaker alone until Redis answers. */
  | (Own & { readonly event: 'fallback'; readonly error: unknown })
  /** Redis answered again after a fallback. */
  | (Own & { readonly event: 'recovered' });

declare module '../core/events.js' {
  interface PolicyEventMap {
    sharedCircuitBreaker: SharedCircuitBreakerEvent;
  }
}

type StateChange = Extract<SharedCircuitBreakerEvent, { event: 'stateChange' }>;
const noop = () => {};

// Deliberate repetition: a policy class opens like every other (kind, name, emitter) after its
// descriptor literal: that is the Component contract; the descriptor values differ in meaning.
/** A circuit breaker sharing its state through Redis. See `sharedCircuitBreaker()`. */
export class SharedCircuitBreakerPolicy extends PolicyBase<never, SharedCircuitBreakerEvent> {
  readonly kind = 'sharedCircuitBreaker';
  readonly name: string;
  /** The kind's descriptor (states, gauges, counters). */
  override get descriptor(): ComponentDescriptor {
    return SHARED_CIRCUIT_BREAKER_DESCRIPTOR;
  }
  /** @internal */
  readonly emitter = new PolicyEmitter<SharedCircuitBreakerEvent>();
  /** Resolves once the breaker has subscribed and read the shared state (never rejects). */
  readonly ready: Promise<void>;
  /** This instance's id in published messages. */
  readonly instanceId = randomBytes(6).toString('hex');

  private readonly core: CircuitBreakerPolicy;
  private readonly link: RedisLink;
  private readonly subscriber: SharedBreakerSubscriber;
  private readonly ownsSubscriber: boolean;
  private readonly clock: Clock;
  private readonly prefix: string;
  private readonly probes: number;
  private readonly successThreshold: number;
  private readonly timeoutMs: number;
  private readonly leaseMs: number;
  private readonly key: {
    readonly state: string;
    readonly probes: string;
    readonly ok: string;
    readonly counts: string;
    readonly mode: string;
    readonly iso: string;
  };
  private readonly channel: string;
  private readonly onMessage: (channel: string, message: string) => void;
  private readonly onReconnect: () => void;
  private readonly aggregate: ReturnType<typeof parseSharedBreakerOptions>['aggregate'];
  /** Fleet-wide counting (`aggregate`), or null. */
  private readonly counts: FleetCounts | null;
  /** The lease token of each probe this instance runs. */
  private readonly tokens = new WeakMap<ExecutionContext, string>();
  private pendingLeases = 0;
  private leaseBusyUntil = 0;
  private seq = 0;
  /** Held while another instance isolates the breaker. */
  private remoteIsolation: IsolationHandle | null = null;
  private remoteChanges = 0;
  private closed = false;

  constructor(options: SharedCircuitBreakerOptions) {
    super();
    const cfg = parseSharedBreakerOptions(options);
    this.name = cfg.breaker.name;
    this.clock = cfg.breaker.clock;
    this.prefix = cfg.prefix;
    this.probes = cfg.breaker.probes;
    this.successThreshold = cfg.breaker.successThreshold;
    this.timeoutMs = cfg.timeoutMs;
    this.leaseMs = cfg.leaseMs;
    this.aggregate = cfg.aggregate;
    this.link = new RedisLink(cfg.client, cfg.timeoutMs, (failing, error) => {
      if (!this.emitter.active) return;
      this.emitter.emit(
        failing ? { ...this.base(), event: 'fallback', error } : { ...this.base(), event: 'recovered' },
      );
    });
    this.core = new CircuitBreakerPolicy(
      {},
      { config: cfg.breaker, kind: this.kind, emitter: this.emitter, hooks: this.hooks() },
    );
    // Hash tag: every key of a breaker lives in one Redis Cluster slot.
    const k = `${cfg.prefix}{${this.name}}`;
    this.key = {
      state: k,
      probes: `${k}:probes`,
      ok: `${k}:ok`,
      counts: `${k}:counts`,
      mode: `${k}:mode`,
      iso: `${k}:iso`,
    };
    this.channel = `${k}:events`;
    const ttl = String(Math.max(60_000, 3 * this.leaseMs));
    const key = this.key;
    this.counts =
      cfg.aggregate === null
        ? null
        : new FleetCounts(
            cfg.aggregate,
            this.clock,
            this.link,
            [key.counts, key.state, key.probes, key.ok],
            [this.channel, ttl, this.instanceId],
            cfg.breaker.halfOpenAfterMs,
            cfg.breaker.random,
            () => this.core.state === 'closed' && !this.closed,
            ([opened, ms, count, calls, fails]) => {
              if (opened === 1)
                this.core._adopt(
                  'open',
                  `failure rate ${fails}/${calls} in the fleet-wide window`,
                  ms,
                  1,
                  'local',
                );
              else if (opened === 2)
                this.core._adopt('open', 'opened by another instance (seen when counting)', ms, count);
            },
          );
    if (cfg.subscriber === undefined) {
      const dup = cfg.client.duplicate();
      dup.on('error', noop);
      this.subscriber = dup;
      this.ownsSubscriber = true;
    } else {
      this.subscriber = cfg.subscriber;
      this.ownsSubscriber = false;
    }
    this.onMessage = (channel, message) => {
      if (channel === this.channel) this.receive(message);
    };
    // After a reconnect, what was published while disconnected was not heard: read the state.
    this.onReconnect = () => {
      void this.readState(Math.max(this.timeoutMs, 2_000));
    };
    this.ready = this.init();
    joinRegistry(cfg.breaker.registry, this);
  }

  /** Where the core breaker defers to the fleet. */
  private hooks(): BreakerHooks {
    return {
      counted: (outcome) => this.counts?.add(outcome),
      // With fleet-wide counting, the local window decides only while Redis fails.
      tripping: () => this.aggregate === null || this.link.failing,
      opened: (_reason, breakMs, openCount, probe) => this.publishOpen(breakMs, openCount, probe),
      probeSettled: (outcome, slow, ctx) => this.probeSettled(outcome, slow, ctx),
      closed: () => {
        this.link.eval(CLOSE_SCRIPT, this.probeKeys(), [this.channel, this.instanceId, 'closed']).catch(noop);
      },
    };
  }

  /** The current state on this instance (`half-open` once an open break has passed). */
  get state(): SharedCircuitState {
    const s = this.core.state;
    return s === 'open' && this.core.stats.retryAfterMs === 0 ? 'half-open' : s;
  }

  /** True while Redis is failing and this instance runs alone. */
  get isFallback(): boolean {
    return this.link.failing;
  }

  /** Ms until an open breaker admits a probe (0 when not open). */
  get retryAfterMs(): number {
    return this.core.stats.retryAfterMs;
  }

  /** Counters and current window figures of this instance. */
  get stats(): CircuitBreakerStats {
    return this.core.stats;
  }

  /**
   * This instance's state and figures (no I/O): the core breaker's gauges and counters, plus
   * `fallback` (1 while Redis fails), `remoteChanges` and `redisErrors`.
   *
   * @example
   * ```ts nocheck
   * const { state, gauges, counters } = breaker.snapshot();
   * console.log(state, gauges.fallback, counters.remoteChanges);
   * ```
   */
  /** The control plane's actions on this breaker (see `breakerOperations`). */
  operations(): readonly ComponentOperation[] {
    return breakerOperations(this);
  }

  override snapshot(): Snapshot {
    const s = this.core.snapshot();
    return {
      ...s,
      state: this.state,
      gauges: { ...s.gauges, fallback: this.link.failing ? 1 : 0 },
      counters: { ...s.counters, remoteChanges: this.remoteChanges, redisErrors: this.link.errors },
      details: {
        ...s.details,
        prefix: this.prefix,
        instanceId: this.instanceId,
        probeLeaseMs: this.leaseMs,
        aggregate: this.aggregate,
      },
    };
  }

  /** This instance's state to save, for `initialState` (see `circuitBreaker().toJSON()`). */
  toJSON(): SavedCircuitState {
    return this.core.toJSON();
  }

  /** Subscribes to every state change (local or heard from another instance). */
  onStateChange(listener: Listener<StateChange>): Disposer {
    return this.emitter.on((e) => e.event === 'stateChange' && listener(e), ['stateChange']);
  }

  private async init(): Promise<void> {
    this.subscriber.on('message', this.onMessage);
    this.subscriber.on('ready', this.onReconnect);
    // A first command also waits for the connection: allow it more than `timeoutMs`.
    const ms = Math.max(this.timeoutMs, 2_000);
    const subscribed = this.subscriber.subscribe(this.channel) as Promise<unknown>;
    try {
      await this.link.bounded(subscribed, ms);
    } catch {
      // A fallback already. If the subscription still happens later, read the state then.
      subscribed.then(() => this.readState(ms), noop);
      return;
    }
    await this.readState(ms);
  }

  private async readState(ms: number): Promise<void> {
    if (this.closed) return;
    const k = this.key;
    let r: unknown[];
    try {
      r = (await this.link.eval(READ_SCRIPT, [k.state, k.mode, k.iso], [], ms)) as unknown[];
    } catch {
      return; // a fallback: this instance decides alone until Redis answers
    }
    const [has, remaining, count, mode, holders] = r;
    const core = this.core;
    if (Number(holders) > 0) {
      if (this.remoteIsolation === null) this.remoteIsolation = core.isolate();
    } else if (mode === 'forced-open' || mode === 'disabled') {
      core._adopt(mode, 'read from Redis');
    } else if (Number(has) === 1) {
      if (core.state === 'closed')
        core._adopt('open', 'state read from Redis', Number(remaining), Number(count));
    } else if (core.state === 'open') {
      // A state restored from `initialState`, not known to the fleet yet.
      const saved = core.toJSON();
      this.publishOpen(saved.openRemainingMs, saved.openCount, false);
    } else if (core.state === 'forced-open' || core.state === 'disabled') {
      this.setMode(core.state);
    }
  }

  // Deliberate repetition: each policy class defines its own copy of `execute` (and opens `_run` the
  // same way) so the call into `_run` stays monomorphic, a measured saving on the hot path (NOTES.md).
  /** Runs `fn` under this policy. */
  override execute<T, P extends object = Record<string, unknown>>(
    fn: Operation<T, P>,
    options?: ExecuteOptions<P>,
  ): Promise<T | never> {
    return this._run(ExecutionContext.root(fn, options), null) as Promise<T | never>;
  }

  /** @internal */
  _run(ctx: ExecutionContext, next: Link | null): Promise<unknown> {
    if (ctx._isAborted) return Promise.reject(ctx._abortReason);
    const core = this.core;
    if (core.state === 'closed' || core._halfOpenIfDue() !== 'half-open') return core._run(ctx, next);
    // Half-open: a fleet-wide lease first (if Redis fails to answer, the core probes locally).
    if (this.pendingLeases + core._probes >= this.probes || this.clock.now() < this.leaseBusyUntil)
      return this.refuse(ctx, next);
    this.pendingLeases++;
    const token = `${this.instanceId}:${++this.seq}`;
    return this.takeLease(token).then((got) => {
      this.pendingLeases--;
      if (got === 'busy') return this.refuse(ctx, next);
      if (got === 'closed') {
        core._adopt('closed', 'closed by another instance');
      } else if (core.state !== 'half-open') {
        // The state moved on while the lease was asked for (e.g. another probe re-opened it).
        if (got === 'leased') this.releaseLease(token);
      } else {
        if (got === 'leased') this.tokens.set(ctx, token);
        this.probeEvent(ctx, got === 'leased');
      }
      return core._run(ctx, next);
    });
  }

  private probeEvent(ctx: ExecutionContext, leased: boolean): void {
    if (this.emitter.wants('probe')) this.emitter.emit({ ...this.base(ctx), event: 'probe', leased });
  }

  /** A half-open call this instance does not run: rejected (or run, for a bypass priority). */
  private refuse(ctx: ExecutionContext, next: Link | null): Promise<unknown> {
    try {
      this.core._refuse(ctx, 'half-open', 0); // throws BrokenCircuitError unless the priority bypasses
    } catch (error) {
      return Promise.reject(error);
    }
    return start(ctx, next);
  }

  private base(ctx?: ExecutionContext) {
    return {
      kind: 'sharedCircuitBreaker' as const,
      name: this.name,
      priority: ctx?.priority ?? 'normal',
      operation: ctx?.name,
      attempt: ctx?.attempt ?? 0,
    };
  }

  /** 'leased' | 'local' (Redis failed: probe alone) | 'busy' (the leases are taken) | 'closed'. */
  private takeLease(token: string): Promise<'leased' | 'local' | 'busy' | 'closed'> {
    const k = this.key;
    return this.link
      .eval(LEASE_SCRIPT, [k.state, k.probes], [token, String(this.leaseMs), String(this.probes)])
      .then(
        (r) => {
          const n = Number(r);
          if (n === -1) return 'leased';
          if (n === -2) return 'closed';
          if (n > 0) this.leaseBusyUntil = this.clock.now() + Math.min(n, this.timeoutMs * 2);
          return 'busy';
        },
        () => 'local',
      );
  }

  private releaseLease(token: string): void {
    this.link.eval(RELEASE_SCRIPT, [this.key.probes], [token]).catch(noop);
  }

  /** The keys a close deletes. */
  private probeKeys(): string[] {
    const k = this.key;
    return [k.state, k.probes, k.ok, k.counts];
  }

  /** A probe settled: a leased one is counted fleet-wide (true: the core only frees its slot). */
  private probeSettled(outcome: Outcome, slow: boolean, ctx: ExecutionContext): boolean {
    const token = this.tokens.get(ctx);
    if (token === undefined) return false; // a local probe (Redis was failing): the core decides
    this.tokens.delete(ctx);
    if (outcome === NEUTRAL) {
      this.releaseLease(token);
      return true;
    }
    if (outcome === FAILURE || slow) return false; // the core re-opens; `opened` tells the fleet
    const core = this.core;
    // Until Redis has counted it, the probe keeps its slot (no other probe starts meanwhile).
    this.pendingLeases++;
    const close = (reason: string, source: 'local' | 'remote') => {
      this.pendingLeases--;
      if (core.state === 'half-open') core._adopt('closed', reason, 0, 0, source);
    };
    this.link
      .eval(PROBE_OK_SCRIPT, this.probeKeys(), [
        token,
        String(this.successThreshold),
        this.channel,
        this.instanceId,
      ])
      .then(
        (r) => {
          if (Number(r) === 1) close('half-open probes succeeded', 'local');
          else if (Number(r) === 2) close('closed by another instance', 'remote');
          else this.pendingLeases--;
        },
        // Redis failing: close here (the fleet hears of it when Redis answers again, if ever).
        () => close('half-open probe succeeded while Redis failed', 'local'),
      );
    return true;
  }

  /** Writes the break this instance decided to Redis and publishes it. */
  private publishOpen(breakMs: number, openCount: number, force: boolean): void {
    // Whole ms: Redis's PX takes integers only (a jittered backoff gives fractions).
    const ms = Math.ceil(breakMs);
    const k = this.key;
    const ttl = String(Math.max(60_000, 3 * this.leaseMs));
    const args = [String(ms), force ? '1' : '0', this.channel, ttl, this.instanceId, String(openCount)];
    this.link.eval(OPEN_SCRIPT, [k.state, k.probes, k.ok], args).then((r) => {
      const [published, remaining, count] = (r as unknown[]).map(Number) as [number, number, number];
      // Another instance had opened it already: take its break.
      if (published === 0 && this.core.state === 'open')
        this.core._adopt('open', 'opened by another instance', remaining, count);
    }, noop);
  }

  private receive(message: string): void {
    const [what, a, b, id] = message.split(':');
    if (id === this.instanceId || this.closed) return;
    this.remoteChanges++;
    const core = this.core;
    const s = core.state;
    const manual = s === 'isolated' || s === 'forced-open' || s === 'disabled';
    if (what === 'open') {
      const remaining = Number(a);
      if (!manual && Number.isFinite(remaining))
        core._adopt('open', 'opened by another instance', remaining, Number(b) || 1);
    } else if (what === 'closed') {
      if (s === 'open' || s === 'half-open') core._adopt('closed', 'closed by another instance');
    } else if (what === 'mode') {
      if (a === 'forced-open' || a === 'disabled') core._adopt(a, `${a} on another instance`);
    } else if (what === 'isolate') {
      if (this.remoteIsolation === null) this.remoteIsolation = core.isolate();
    } else if (what === 'release') {
      this.dropRemoteIsolation();
    } else if (what === 'reset') {
      this.remoteIsolation = null;
      core.reset();
    }
  }

  private dropRemoteIsolation(): void {
    const h = this.remoteIsolation;
    this.remoteIsolation = null;
    h?.release();
  }

  /**
   * Holds the breaker open on EVERY instance until every handle returned (on any instance) is
   * released. Priorities in `bypass` do not pass an isolated breaker. The isolation is kept in
   * Redis (a set of tokens): an instance that dies holding one keeps the fleet isolated until
   * `reset()`.
   */
  isolate(): IsolationHandle {
    const local = this.core.isolate();
    const token = `${this.instanceId}:iso:${++this.seq}`;
    const iso = (add: '1' | '0') =>
      this.link.eval(ISOLATE_SCRIPT, [this.key.iso], [token, this.channel, this.instanceId, add]);
    iso('1').catch(noop);
    let released = false;
    return isolationHandle(() => {
      if (released) return;
      released = true;
      local.release();
      iso('0').then((left) => {
        if (Number(left) === 0) this.dropRemoteIsolation();
      }, noop);
    });
  }

  /** Opens the breaker on every instance until `reset()`. Resolves once Redis has it. */
  forceOpen(): Promise<void> {
    this.core.forceOpen();
    return this.setMode('forced-open');
  }

  /** Lets every call through on every instance, counting nothing, until `reset()`. */
  disable(): Promise<void> {
    this.core.disable();
    return this.setMode('disabled');
  }

  private setMode(mode: 'forced-open' | 'disabled'): Promise<void> {
    return this.link
      .eval(MODE_SCRIPT, [this.key.mode], [mode, this.channel, this.instanceId])
      .then(noop, noop);
  }

  /**
   * Closes the breaker on every instance and ends forcing, disabling and isolation (DEL +
   * PUBLISH). Resolves once Redis has it (or has failed / timed out: then only this instance is
   * reset).
   */
  async reset(): Promise<void> {
    this.remoteIsolation = null;
    this.core.reset();
    const k = this.key;
    await this.link
      .eval(CLOSE_SCRIPT, [...this.probeKeys(), k.mode, k.iso], [this.channel, this.instanceId, 'reset'])
      .catch(noop);
  }

  /** Unsubscribes (and closes the subscriber connection this breaker made). */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.subscriber.off('message', this.onMessage);
    this.subscriber.off('ready', this.onReconnect);
    this.counts?.stop();
    if (this.ownsSubscriber) {
      (this.subscriber as unknown as Redis).disconnect();
      return;
    }
    await this.subscriber.unsubscribe(this.channel).catch(noop);
  }
}

/**
 * Makes a circuit breaker whose state is shared, through Redis, by every instance with the same
 * `name` and `prefix`. Takes every option of `circuitBreaker()`.
 *
 * @example
 * ```ts nocheck
 * import { Redis } from 'ioredis';
 * import { sharedCircuitBreaker } from 'bulwark/redis';
 * const breaker = sharedCircuitBreaker({
 *   client: new Redis(),
 *   name: 'payments',
 *   halfOpenAfterMs: 10_000,
 *   halfOpen: { probes: 3, successThreshold: 2 },
 * });
 * await breaker.ready;
 * await breaker.execute(() => fetch('https://payments.internal/charge'));
 * ```
 */
export function sharedCircuitBreaker(options: SharedCircuitBreakerOptions): SharedCircuitBreakerPolicy {
  return new SharedCircuitBreakerPolicy(options);
}

export type {
  AggregateOptions,
  SharedBreakerClient,
  SharedBreakerSubscriber,
  SharedCircuitBreakerOptions,
} from './shared-breaker-options.js';
