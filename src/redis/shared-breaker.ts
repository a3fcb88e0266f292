/**
 * A circuit breaker whose open / half-open state is shared, through Redis, by every instance that
 * uses the same `name` and `prefix`. Failures are counted locally (a core `CircuitBreakerPolicy`
 * runs each instance's window while the breaker is closed); when one instance opens, it writes
 * the break (its end in Redis server time) to a key and PUBLISHes it, and every subscribed
 * instance opens on receipt. After the break, exactly one probe runs fleet-wide: the instance
 * that wants to probe takes a lease (SET NX PX); the probe's success closes the breaker
 * everywhere, its failure re-opens it everywhere. A lease whose holder dies expires after
 * `probeLeaseMs`. When Redis fails or is slower than `timeoutMs`, each instance keeps its own
 * state machine (events `fallback` / `recovered`). With `aggregate`, failures are counted
 * fleet-wide in Redis time buckets instead (each instance sends its counts every `flushMs`), and
 * the script that adds them opens the breaker for everyone. After its subscriber reconnects, an
 * instance re-reads the state, so an opening published while it was disconnected is not missed.
 */
import { createHash, randomBytes } from 'node:crypto';
import type { Redis } from 'ioredis';

import { type Backoff, isBackoff } from '../core/backoff.js';
import type { BreakerOptions } from '../core/breaker-window.js';
import {
  CircuitBreakerPolicy,
  classifyError,
  classifyResult,
  FAILURE,
  NEUTRAL,
  SUCCESS,
} from '../core/circuit-breaker.js';
import type { Clock, RandomSource } from '../core/clock.js';
import { systemRandom } from '../core/clock.js';
import { type ExecuteOptions, ExecutionContext, type Operation, type Priority } from '../core/context.js';
import { BrokenCircuitError, ConfigError } from '../core/errors.js';
import { type EventBase, PolicyEmitter, reportError } from '../core/events.js';
import { DEFAULT_FAILURES, Handler } from '../core/handle.js';
import {
  checkFunction,
  checkKeys,
  checkObject,
  checkPriorities,
  checkString,
  optNumber,
  rules,
} from '../core/options.js';
import { clockOf, type Link, PolicyBase, start } from '../core/policy.js';
import { RedisTimeoutError } from './rate-limiter.js';

/** States of a shared breaker. */
export type SharedCircuitState = 'closed' | 'open' | 'half-open';

/** Events of a shared circuit breaker. */
export type SharedCircuitBreakerEvent =
  | (EventBase & {
      readonly kind: 'sharedCircuitBreaker';
      readonly event: 'stateChange';
      readonly from: SharedCircuitState;
      readonly to: SharedCircuitState;
      /** `local`: this instance decided it; `remote`: another instance did (pub/sub or the key). */
      readonly source: 'local' | 'remote';
      readonly reason?: string;
      readonly breakMs?: number;
    })
  | (EventBase & {
      readonly kind: 'sharedCircuitBreaker';
      readonly event: 'reject';
      readonly state: SharedCircuitState;
      readonly retryAfterMs: number;
    })
  | (EventBase & {
      readonly kind: 'sharedCircuitBreaker';
      readonly event: 'bypass';
      readonly state: SharedCircuitState;
    })
  | (EventBase & {
      readonly kind: 'sharedCircuitBreaker';
      /** This instance took the fleet-wide probe lease (or, during a fallback, probes locally). */
      readonly event: 'probe';
      readonly leased: boolean;
    })
  | (EventBase & {
      readonly kind: 'sharedCircuitBreaker';
      /** Redis failed or timed out: this instance runs its breaker alone until Redis answers. */
      readonly event: 'fallback';
      readonly error: unknown;
    })
  | (EventBase & {
      readonly kind: 'sharedCircuitBreaker';
      /** Redis answered again after a fallback. */
      readonly event: 'recovered';
    });

declare module '../core/events.js' {
  interface PolicyEventMap {
    sharedCircuitBreaker: SharedCircuitBreakerEvent;
  }
}

/** The subset of an ioredis client the shared breaker uses for commands. */
export type SharedBreakerClient = Pick<Redis, 'evalsha' | 'eval' | 'duplicate'>;
/** The subset of an ioredis client the shared breaker uses to listen (a connection in subscriber mode). */
export type SharedBreakerSubscriber = Pick<Redis, 'subscribe' | 'unsubscribe' | 'on' | 'off'>;

/** Options of `sharedCircuitBreaker()`. */
export interface SharedCircuitBreakerOptions {
  /** An ioredis client for commands, owned by the caller. */
  readonly client: SharedBreakerClient;
  /**
   * A connection for SUBSCRIBE (may be shared by several breakers), owned by the caller. Default:
   * `client.duplicate()`, owned (and closed by `close()`) by the breaker.
   */
  readonly subscriber?: SharedBreakerSubscriber;
  /** The breaker's fleet-wide name: breakers with the same name (and prefix) share one state. */
  readonly name: string;
  /** How failures are counted (locally, on each instance). Default `{ kind: 'consecutive', threshold: 5 }`. */
  readonly breaker?: BreakerOptions;
  /** Break duration in ms, or a backoff growing with each re-open (reset on close). Default 30 000. */
  readonly halfOpenAfter?: number | Backoff;
  /** Which errors and results are failures (as in `circuitBreaker`). */
  readonly handle?: Handler;
  /** Errors and results that count neither way. */
  readonly exclude?: Handler;
  /** Priorities that pass while the breaker is open or half-open. */
  readonly bypass?: readonly Priority[];
  /** Prefix of the keys and channel. Default `'bulwark:cb:'`. */
  readonly prefix?: string;
  /** Longest wait for Redis, in ms, before this instance decides alone. Default 50. */
  readonly timeoutMs?: number;
  /** How long a probe's lease lasts, in ms (a holder that dies frees it after this). Default 10 000. */
  readonly probeLeaseMs?: number;
  /** Monotonic clock (tests). */
  readonly clock?: Clock;
  /** Random source for a jittered `halfOpenAfter` backoff. */
  readonly random?: RandomSource;
  /**
   * Count failures fleet-wide, in Redis time buckets, instead of on each instance: every instance
   * adds its outcomes to a ring of `buckets` buckets covering `windowMs` (one script per
   * `flushMs`, not per call), and the script that adds them opens the breaker for everyone when
   * the window holds at least `minimumCalls` calls with a failure ratio of at least `failureRate`.
   * While Redis fails, each instance counts locally with `breaker` again. Default: absent (local).
   */
  readonly aggregate?: {
    /** The window, ms. Default 10 000. */
    readonly windowMs?: number;
    /** Buckets in the window. Default 10. */
    readonly buckets?: number;
    /** Calls the window needs before it can open the breaker. Default 20. */
    readonly minimumCalls?: number;
    /** Failure ratio in (0, 1] that opens it. Default 0.5. */
    readonly failureRate?: number;
    /** How often an instance sends its counts, ms. Default 100. */
    readonly flushMs?: number;
  };
}

// KEYS[1] counts (hash: bucket slot -> "start:successes:failures"), KEYS[2] state key, KEYS[3] lease
// key. ARGV: successes, failures, bucketMs, buckets, minimumCalls, failureRate, breakMs, channel,
// extra ttl, id. Adds the counts to the current bucket; if the breaker is closed and the window
// trips, opens it (as OPEN_SCRIPT) and clears the counts. Returns {1 opened now | 2 already open
// | 0, break ms left, openCount, calls, failures}.
const COUNT_SCRIPT = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local bucketMs, nb = tonumber(ARGV[3]), tonumber(ARGV[4])
local start = math.floor(now / bucketMs) * bucketMs
local slot = tostring((start / bucketMs) % nb)
local cur = redis.call('HGET', KEYS[1], slot)
local s, f = 0, 0
if cur then
  local cs, ss, ff = string.match(cur, '^(%d+):(%d+):(%d+)$')
  if tonumber(cs) == start then s, f = tonumber(ss), tonumber(ff) end
end
s = s + tonumber(ARGV[1])
f = f + tonumber(ARGV[2])
redis.call('HSET', KEYS[1], slot, start .. ':' .. s .. ':' .. f)
redis.call('PEXPIRE', KEYS[1], bucketMs * nb * 2)
local calls, fails = 0, 0
local all = redis.call('HVALS', KEYS[1])
for i = 1, #all do
  local cs, ss, ff = string.match(all[i], '^(%d+):(%d+):(%d+)$')
  if cs and tonumber(cs) > start - bucketMs * nb then
    calls = calls + tonumber(ss) + tonumber(ff)
    fails = fails + tonumber(ff)
  end
end
local v = redis.call('GET', KEYS[2])
if v then
  -- Already open (this instance may have missed the message): tell it.
  local u, c = string.match(v, '^(%d+):(%d+)')
  if u then return { 2, tonumber(u) - now, tonumber(c), calls, fails } end
  return { 0, 0, 0, calls, fails }
end
if calls < tonumber(ARGV[5]) or fails < calls * tonumber(ARGV[6]) then return { 0, 0, 0, calls, fails } end
local b = tonumber(ARGV[7])
redis.call('SET', KEYS[2], string.format('%d:%s', now + b, '1'), 'PX', b + tonumber(ARGV[9]))
redis.call('DEL', KEYS[3], KEYS[1])
redis.call('PUBLISH', ARGV[8], 'open:' .. ARGV[7] .. ':1:' .. ARGV[10])
return { 1, b, 1, calls, fails }
`;

// KEYS[1] state key, KEYS[2] lease key. ARGV: breakMs, force ('1'/'0'), channel, extra ttl, id, openCount.
// Returns {published (1/0), remaining break ms, openCount}.
const OPEN_SCRIPT = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
if ARGV[2] == '0' then
  local v = redis.call('GET', KEYS[1])
  if v then
    local u, c = string.match(v, '^(%d+):(%d+)')
    if u and tonumber(u) > now then return { 0, tonumber(u) - now, tonumber(c) } end
  end
end
local b = tonumber(ARGV[1])
redis.call('SET', KEYS[1], string.format('%d:%s', now + b, ARGV[6]), 'PX', b + tonumber(ARGV[4]))
redis.call('DEL', KEYS[2])
redis.call('PUBLISH', ARGV[3], 'open:' .. ARGV[1] .. ':' .. ARGV[6] .. ':' .. ARGV[5])
return { 1, b, tonumber(ARGV[6]) }
`;
// KEYS[1] state key. Returns {} when closed, else {remaining break ms (<= 0: half-open), openCount}.
const READ_SCRIPT = `
local v = redis.call('GET', KEYS[1])
if not v then return {} end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local u, c = string.match(v, '^(%d+):(%d+)')
if not u then return {} end
return { tonumber(u) - now, tonumber(c) }
`;
// KEYS[1] state key, KEYS[2] lease key. ARGV: token, leaseMs. Returns -1 when the lease is taken,
// -2 when the breaker is closed (no state key), else the ms left on another holder's lease.
const LEASE_SCRIPT = `
if redis.call('EXISTS', KEYS[1]) == 0 then return -2 end
if redis.call('SET', KEYS[2], ARGV[1], 'NX', 'PX', tonumber(ARGV[2])) then return -1 end
return redis.call('PTTL', KEYS[2])
`;
// KEYS[1] state key, KEYS[2] lease key, KEYS[3] fleet-wide counts. ARGV: channel, id.
const CLOSE_SCRIPT = `
redis.call('DEL', KEYS[1], KEYS[2], KEYS[3])
redis.call('PUBLISH', ARGV[1], 'closed:0:0:' .. ARGV[2])
return 1
`;
// KEYS[1] lease key. ARGV: token. Frees a lease this instance holds (a probe that counted neither way).
const RELEASE_SCRIPT = `
if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) end
return 1
`;

const SHA = new Map<string, string>();
function sha(script: string): string {
  let s = SHA.get(script);
  if (s === undefined) {
    s = createHash('sha1').update(script).digest('hex');
    SHA.set(script, s);
  }
  return s;
}

/** A circuit breaker sharing its state through Redis. See `sharedCircuitBreaker()`. */
export class SharedCircuitBreakerPolicy extends PolicyBase<never, SharedCircuitBreakerEvent> {
  readonly kind = 'sharedCircuitBreaker';
  readonly name: string;
  /** @internal */
  readonly emitter = new PolicyEmitter<SharedCircuitBreakerEvent>();
  /** Resolves once the breaker has subscribed and read the shared state (never rejects). */
  readonly ready: Promise<void>;
  /** This instance's id in published messages. */
  readonly instanceId = randomBytes(6).toString('hex');

  private readonly client: SharedBreakerClient;
  private readonly subscriber: SharedBreakerSubscriber;
  private readonly ownsSubscriber: boolean;
  private readonly local: CircuitBreakerPolicy;
  private readonly clock: Clock;
  private readonly random: RandomSource;
  private readonly handler: Handler;
  private readonly excluded: Handler | null;
  private readonly who: string;
  private readonly bypass: readonly string[];
  private readonly breakFixed: number;
  private readonly breakBackoff: Backoff | null;
  private readonly timeoutMs: number;
  private readonly leaseMs: number;
  private readonly stateKey: string;
  private readonly leaseKey: string;
  private readonly countsKey: string;
  private readonly channel: string;
  private readonly onMessage: (channel: string, message: string) => void;
  private readonly onReconnect: () => void;
  private readonly aggregate: {
    readonly bucketMs: number;
    readonly buckets: number;
    readonly minimumCalls: number;
    readonly failureRate: number;
    readonly flushMs: number;
  } | null;
  private pendingSuccesses = 0;
  private pendingFailures = 0;
  private flushTimer: ReturnType<Clock['setTimeout']> | null = null;
  private readonly flushBound = () => this.flush();

  private _state: SharedCircuitState = 'closed';
  private gen = 0;
  private openUntil = 0;
  private openCount = 0;
  private probing = false;
  private leaseBusyUntil = 0;
  private degraded = false;
  private closed = false;
  private resetting = false;

  constructor(options: SharedCircuitBreakerOptions) {
    super();
    const o = checkObject('sharedCircuitBreaker', options);
    checkKeys('sharedCircuitBreaker', o, [
      'client',
      'subscriber',
      'name',
      'breaker',
      'halfOpenAfter',
      'handle',
      'exclude',
      'bypass',
      'prefix',
      'timeoutMs',
      'probeLeaseMs',
      'clock',
      'random',
      'aggregate',
    ]);
    const client = o.client as SharedBreakerClient | undefined;
    if (typeof client !== 'object' || client === null || typeof client.evalsha !== 'function') {
      throw new ConfigError('sharedCircuitBreaker.client', 'an ioredis client', client);
    }
    this.client = client;
    if (typeof o.name !== 'string' || o.name === '')
      throw new ConfigError('sharedCircuitBreaker.name', 'a non-empty string', o.name);
    this.name = o.name;
    this.who = `sharedCircuitBreaker "${o.name}"`;
    const hoa = o.halfOpenAfter;
    if (isBackoff(hoa)) {
      this.breakBackoff = hoa;
      this.breakFixed = 0;
    } else {
      this.breakBackoff = null;
      this.breakFixed = optNumber('sharedCircuitBreaker.halfOpenAfter', hoa, rules.finite(0), 30_000);
    }
    if (o.handle !== undefined && !Handler.is(o.handle))
      throw new ConfigError('sharedCircuitBreaker.handle', 'a handler', o.handle);
    if (o.exclude !== undefined && !Handler.is(o.exclude))
      throw new ConfigError('sharedCircuitBreaker.exclude', 'a handler', o.exclude);
    this.handler = (o.handle as Handler | undefined) ?? DEFAULT_FAILURES;
    this.excluded = (o.exclude as Handler | undefined) ?? null;
    this.bypass = checkPriorities('sharedCircuitBreaker.bypass', o.bypass);
    const prefix = checkString('sharedCircuitBreaker.prefix', o.prefix, 'bulwark:cb:');
    this.timeoutMs = optNumber('sharedCircuitBreaker.timeoutMs', o.timeoutMs, rules.positive, 50);
    this.leaseMs = optNumber('sharedCircuitBreaker.probeLeaseMs', o.probeLeaseMs, rules.int(1), 10_000);
    this.clock = clockOf(o.clock as Clock | undefined, 'sharedCircuitBreaker.clock');
    this.random = checkFunction<RandomSource>('sharedCircuitBreaker.random', o.random) ?? systemRandom;
    // The core breaker counts this instance's outcomes while closed; its opening is taken over
    // here (and the core one reset at once), so it never rejects by itself.
    this.local = new CircuitBreakerPolicy({
      ...(o.breaker === undefined ? {} : { breaker: o.breaker as BreakerOptions }),
      handle: this.handler,
      ...(this.excluded === null ? {} : { exclude: this.excluded }),
      halfOpenAfter: 0,
      name: this.name,
      clock: this.clock,
    });
    this.local.onOpen((e) => {
      if (this.resetting) return;
      this.resetLocal();
      // With aggregated counting, the local window only decides while Redis fails.
      if (this.aggregate !== null && !this.degraded) return;
      this.openLocally(e.reason ?? 'failures', false);
    });
    // Hash tag: both keys of a breaker live in one Redis Cluster slot.
    this.stateKey = `${prefix}{${this.name}}`;
    this.leaseKey = `${prefix}{${this.name}}:lease`;
    this.countsKey = `${prefix}{${this.name}}:counts`;
    this.channel = `${prefix}{${this.name}}:events`;
    if (o.subscriber === undefined) {
      const dup = client.duplicate();
      dup.on('error', () => {});
      this.subscriber = dup;
      this.ownsSubscriber = true;
    } else {
      this.subscriber = o.subscriber as SharedBreakerSubscriber;
      this.ownsSubscriber = false;
    }
    this.onMessage = (channel, message) => {
      if (channel === this.channel) this.receive(message);
    };
    // After a reconnect, what was published while disconnected was not heard: read the state.
    this.onReconnect = () => {
      void this.readState(Math.max(this.timeoutMs, 2_000));
    };
    if (o.aggregate === undefined) {
      this.aggregate = null;
    } else {
      const a = checkObject('sharedCircuitBreaker.aggregate', o.aggregate);
      checkKeys('sharedCircuitBreaker.aggregate', a, [
        'windowMs',
        'buckets',
        'minimumCalls',
        'failureRate',
        'flushMs',
      ]);
      const windowMs = optNumber('sharedCircuitBreaker.aggregate.windowMs', a.windowMs, rules.int(1), 10_000);
      const buckets = optNumber('sharedCircuitBreaker.aggregate.buckets', a.buckets, rules.int(1), 10);
      if (windowMs % buckets !== 0 || windowMs / buckets < 1)
        throw new ConfigError(
          'sharedCircuitBreaker.aggregate.buckets',
          `a divisor of windowMs (${windowMs})`,
          buckets,
        );
      this.aggregate = {
        bucketMs: windowMs / buckets,
        buckets,
        minimumCalls: optNumber(
          'sharedCircuitBreaker.aggregate.minimumCalls',
          a.minimumCalls,
          rules.int(1),
          20,
        ),
        failureRate: optNumber('sharedCircuitBreaker.aggregate.failureRate', a.failureRate, rules.ratio, 0.5),
        flushMs: optNumber('sharedCircuitBreaker.aggregate.flushMs', a.flushMs, rules.positive, 100),
      };
    }
    this.ready = this.init();
  }

  /** The current state on this instance. */
  get state(): SharedCircuitState {
    if (this._state === 'open' && this.clock.now() >= this.openUntil) return 'half-open';
    return this._state;
  }

  /** True while Redis is failing and this instance runs alone. */
  get isFallback(): boolean {
    return this.degraded;
  }

  /** Ms until an open breaker admits a probe (0 when not open). */
  get retryAfterMs(): number {
    return this._state === 'open' ? Math.max(0, this.openUntil - this.clock.now()) : 0;
  }

  private async init(): Promise<void> {
    this.subscriber.on('message', this.onMessage);
    this.subscriber.on('ready', this.onReconnect);
    // A first command also waits for the connection: allow it more than `timeoutMs`.
    const ms = Math.max(this.timeoutMs, 2_000);
    const subscribed = this.subscriber.subscribe(this.channel) as Promise<unknown>;
    try {
      await this.redis(subscribed, ms);
    } catch {
      // Reported by redis() as a fallback. If the subscription still happens later, read the
      // state then (what was published before it could not be heard).
      subscribed.then(
        () => this.readState(ms),
        () => {},
      );
      return;
    }
    await this.readState(ms);
  }

  private async readState(ms: number): Promise<void> {
    if (this.closed) return;
    try {
      const r = (await this.redis(this.eval(READ_SCRIPT, [this.stateKey], []), ms)) as number[];
      if (r.length === 2 && this._state === 'closed') {
        this.adoptOpen(Number(r[0]), Number(r[1]), 'state read at start');
      }
    } catch {
      // reported by redis() as a fallback
    }
  }

  /**
   * Closes the breaker on every instance (DEL + PUBLISH) and forgets this instance's counts.
   * Resolves once Redis has it (or has failed / timed out: then only this instance is closed).
   */
  async reset(): Promise<void> {
    this.transition('closed', 'local', 'reset');
    await this.redis(
      this.eval(
        CLOSE_SCRIPT,
        [this.stateKey, this.leaseKey, this.countsKey],
        [this.channel, this.instanceId],
      ),
    ).catch(() => {});
  }

  /** Unsubscribes (and closes the subscriber connection this breaker made). */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.subscriber.off('message', this.onMessage);
    this.subscriber.off('ready', this.onReconnect);
    if (this.flushTimer !== null) {
      this.clock.clearTimeout(this.flushTimer);
      this.flushTimer = null;
    }
    if (this.ownsSubscriber) {
      (this.subscriber as unknown as Redis).disconnect();
      return;
    }
    try {
      await this.subscriber.unsubscribe(this.channel);
    } catch {
      // the connection is going away anyway
    }
  }

  /** Runs `fn` under this policy. (Defined per class to keep the call into `_run` monomorphic.) */
  override execute<T, P extends object = Record<string, unknown>>(
    fn: Operation<T, P>,
    options?: ExecuteOptions<P>,
  ): Promise<T | never> {
    return this._run(ExecutionContext.root(fn, options), null) as Promise<T | never>;
  }

  /** @internal */
  _run(ctx: ExecutionContext, next: Link | null): Promise<unknown> {
    if (ctx._isAborted) return Promise.reject(ctx._abortReason);
    if (this._state === 'closed') {
      if (this.aggregate === null) return this.local._run(ctx, next);
      // Fleet-wide counting; the local window still runs, and decides only while Redis fails
      // (the flushes keep trying Redis, so the first one it answers ends the fallback).
      return this.local._run(ctx, next).then(
        (result) => {
          this.count(classifyResult(this.handler, this.excluded, result, this.who));
          return result;
        },
        (error: unknown) => {
          this.count(classifyError(this.handler, this.excluded, error, ctx, this.who));
          throw error;
        },
      );
    }
    const now = this.clock.now();
    if (this._state === 'open' && now >= this.openUntil) this.transition('half-open', 'local', undefined);
    if (this._state === 'open') return this.refuse(ctx, 'open', this.openUntil - now, next);
    if (this.probing || now < this.leaseBusyUntil) return this.refuse(ctx, 'half-open', 0, next);
    this.probing = true;
    const gen = this.gen;
    const token = `${this.instanceId}:${gen}`;
    return this.takeLease(token).then((got) => {
      if (gen !== this.gen) {
        // The state changed while the lease was asked for (e.g. closed by another probe).
        if (got === 'leased') this.releaseLease(token);
        return this._run(ctx, next);
      }
      if (got === 'busy') {
        this.probing = false;
        return this.refuse(ctx, 'half-open', 0, next);
      }
      if (got === 'closed') {
        this.transition('closed', 'remote', 'closed by another instance');
        return this.local._run(ctx, next);
      }
      if (this.emitter.wants('probe'))
        this.emitter.emit({ ...this.base(ctx), event: 'probe', leased: got === 'leased' });
      if (ctx._isAborted) {
        this.probeDone(gen, NEUTRAL, token);
        return Promise.reject(ctx._abortReason);
      }
      return start(ctx, next).then(
        (result) => {
          this.probeDone(gen, classifyResult(this.handler, this.excluded, result, this.who), token);
          return result;
        },
        (error: unknown) => {
          this.probeDone(gen, classifyError(this.handler, this.excluded, error, ctx, this.who), token);
          throw error;
        },
      );
    });
  }

  /** Aggregated counting: adds an outcome to what the next flush sends. */
  private count(kind: number): void {
    if (kind === NEUTRAL) return;
    if (kind === SUCCESS) this.pendingSuccesses++;
    else this.pendingFailures++;
    if (this.flushTimer === null && !this.closed) {
      const t = this.clock.setTimeout(this.flushBound, this.aggregate!.flushMs);
      t.unref();
      this.flushTimer = t;
    }
  }

  /** Sends this instance's counts; the script opens the breaker fleet-wide when the window trips. */
  private flush(): void {
    this.flushTimer = null;
    const a = this.aggregate!;
    const s = this.pendingSuccesses;
    const f = this.pendingFailures;
    this.pendingSuccesses = 0;
    this.pendingFailures = 0;
    if (s + f === 0 || this._state !== 'closed' || this.closed) return;
    const breakMs = Math.ceil(this.breakFor(1));
    const gen = this.gen;
    this.redis(
      this.eval(
        COUNT_SCRIPT,
        [this.countsKey, this.stateKey, this.leaseKey],
        [
          String(s),
          String(f),
          String(a.bucketMs),
          String(a.buckets),
          String(a.minimumCalls),
          String(a.failureRate),
          String(breakMs),
          this.channel,
          String(Math.max(60_000, 3 * this.leaseMs)),
          this.instanceId,
        ],
      ),
    ).then(
      (r) => {
        const [opened, ms, count, calls, fails] = (r as number[]).map(Number) as number[];
        if (gen !== this.gen || this._state !== 'closed') return;
        if (opened === 1) {
          this.openCount = 1;
          this.openUntil = this.clock.now() + (ms ?? breakMs);
          this.transition('open', 'local', `failure rate ${fails}/${calls} in the fleet-wide window`, ms);
        } else if (opened === 2) {
          this.adoptOpen(ms ?? 0, count ?? 1, 'opened by another instance (seen when counting)');
        }
      },
      () => {},
    );
  }

  private refuse(
    ctx: ExecutionContext,
    state: SharedCircuitState,
    retryAfterMs: number,
    next: Link | null,
  ): Promise<unknown> {
    if (this.bypass.length !== 0 && this.bypass.includes(ctx.priority)) {
      if (this.emitter.active) this.emitter.emit({ ...this.base(ctx), event: 'bypass', state });
      return start(ctx, next);
    }
    if (this.emitter.active) this.emitter.emit({ ...this.base(ctx), event: 'reject', state, retryAfterMs });
    return Promise.reject(new BrokenCircuitError(this.name, state as 'open' | 'half-open', retryAfterMs));
  }

  private base(ctx: ExecutionContext | null) {
    return {
      kind: 'sharedCircuitBreaker' as const,
      name: this.name,
      priority: ctx?.priority ?? 'normal',
      operation: ctx?.name,
      attempt: ctx?.attempt ?? 0,
    };
  }

  /** 'leased' | 'local' (Redis failed: probe alone) | 'busy' (another holder) | 'closed'. */
  private takeLease(token: string): Promise<'leased' | 'local' | 'busy' | 'closed'> {
    return this.redis(
      this.eval(LEASE_SCRIPT, [this.stateKey, this.leaseKey], [token, String(this.leaseMs)]),
    ).then(
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
    this.redis(this.eval(RELEASE_SCRIPT, [this.leaseKey], [token])).catch(() => {});
  }

  private probeDone(gen: number, kind: number, token: string): void {
    if (gen !== this.gen) return; // the state moved on (another instance closed or re-opened it)
    this.probing = false;
    if (kind === NEUTRAL) {
      this.releaseLease(token);
      return;
    }
    if (kind === FAILURE) {
      this.openLocally('half-open probe failed', true);
      return;
    }
    this.transition('closed', 'local', undefined);
    this.redis(
      this.eval(
        CLOSE_SCRIPT,
        [this.stateKey, this.leaseKey, this.countsKey],
        [this.channel, this.instanceId],
      ),
    ).catch(() => {});
  }

  /** Opens here at once, then writes the break to Redis and publishes it. */
  private openLocally(reason: string, force: boolean): void {
    const count = this.openCount + 1;
    // Whole ms: Redis's PX takes integers only (a jittered backoff gives fractions).
    const breakMs = Math.ceil(this.breakFor(count));
    this.openCount = count;
    this.openUntil = this.clock.now() + breakMs;
    this.transition('open', 'local', reason, breakMs);
    const gen = this.gen;
    this.redis(
      this.eval(
        OPEN_SCRIPT,
        [this.stateKey, this.leaseKey],
        [
          String(breakMs),
          force ? '1' : '0',
          this.channel,
          String(Math.max(60_000, 3 * this.leaseMs)),
          this.instanceId,
          String(count),
        ],
      ),
    ).then(
      (r) => {
        const [published, remaining, c] = (r as number[]).map(Number) as [number, number, number];
        // Another instance had opened it already: adopt its break.
        if (published === 0 && gen === this.gen) {
          this.openUntil = this.clock.now() + remaining;
          this.openCount = c;
        }
      },
      () => {},
    );
  }

  private breakFor(count: number): number {
    if (this.breakBackoff === null) return this.breakFixed;
    try {
      const seq = this.breakBackoff.start(undefined, this.random);
      let ms = 0;
      for (let k = Math.min(count, 64); k >= 1; k--) ms = seq.next();
      return ms;
    } catch (error) {
      reportError(`sharedCircuitBreaker "${this.name}": the halfOpenAfter backoff`, error);
      return 30_000;
    }
  }

  private receive(message: string): void {
    const [what, a, b, id] = message.split(':');
    if (id === this.instanceId || this.closed) return;
    if (what === 'open') {
      this.adoptOpen(Number(a), Number(b), 'opened by another instance');
    } else if (what === 'closed' && this._state !== 'closed') {
      this.transition('closed', 'remote', 'closed by another instance');
    }
  }

  private adoptOpen(remainingMs: number, count: number, reason: string): void {
    if (!Number.isFinite(remainingMs)) return;
    this.openCount = Number.isFinite(count) ? count : this.openCount;
    this.openUntil = this.clock.now() + Math.max(0, remainingMs);
    this.resetLocal();
    this.transition(remainingMs > 0 ? 'open' : 'half-open', 'remote', reason, Math.max(0, remainingMs));
  }

  private resetLocal(): void {
    this.resetting = true;
    try {
      this.local.reset();
    } finally {
      this.resetting = false;
    }
  }

  private transition(
    to: SharedCircuitState,
    source: 'local' | 'remote',
    reason: string | undefined,
    breakMs?: number,
  ): void {
    const from = this._state;
    this._state = to;
    this.gen++;
    this.probing = false;
    this.leaseBusyUntil = 0;
    if (to === 'closed') {
      this.openCount = 0;
      this.resetLocal();
    }
    if ((from !== to || to === 'open') && this.emitter.wants('stateChange')) {
      this.emitter.emit({
        ...this.base(null),
        event: 'stateChange',
        from,
        to,
        source,
        ...(reason === undefined ? {} : { reason }),
        ...(to === 'open' && breakMs !== undefined ? { breakMs } : {}),
      });
    }
  }

  private eval(script: string, keys: string[], args: string[]): Promise<unknown> {
    const c = this.client;
    return c.evalsha(sha(script), keys.length, ...keys, ...args).catch((error: unknown) => {
      if (error instanceof Error && error.message.startsWith('NOSCRIPT'))
        return c.eval(script, keys.length, ...keys, ...args);
      throw error;
    });
  }

  /** A Redis call bounded by `timeoutMs`; failures switch to (and answers back from) fallback. */
  private redis<T>(p: Promise<T>, timeoutMs = this.timeoutMs): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      let done = false;
      const timer = setTimeout(() => {
        if (done) return;
        done = true;
        const error = new RedisTimeoutError(timeoutMs);
        this.failed(error);
        reject(error);
      }, timeoutMs);
      p.then(
        (v) => {
          if (done) return;
          done = true;
          clearTimeout(timer);
          this.answered();
          resolve(v);
        },
        (error: unknown) => {
          if (done) return;
          done = true;
          clearTimeout(timer);
          this.failed(error);
          reject(error);
        },
      );
    });
  }

  private failed(error: unknown): void {
    if (this.degraded) return;
    this.degraded = true;
    if (this.emitter.active) this.emitter.emit({ ...this.base(null), event: 'fallback', error });
  }

  private answered(): void {
    if (!this.degraded) return;
    this.degraded = false;
    if (this.emitter.active) this.emitter.emit({ ...this.base(null), event: 'recovered' });
  }
}

/**
 * Makes a circuit breaker whose state is shared, through Redis, by every instance with the same
 * `name` and `prefix`.
 *
 * @example
 * ```ts nocheck
 * import { Redis } from 'ioredis';
 * import { sharedCircuitBreaker } from 'bulwark/redis';
 * const breaker = sharedCircuitBreaker({ client: new Redis(), name: 'payments', halfOpenAfter: 10_000 });
 * await breaker.ready;
 * await breaker.execute(() => fetch('https://payments.internal/charge'));
 * ```
 */
export function sharedCircuitBreaker(options: SharedCircuitBreakerOptions): SharedCircuitBreakerPolicy {
  return new SharedCircuitBreakerPolicy(options);
}
