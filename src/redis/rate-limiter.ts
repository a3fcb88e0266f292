/**
 * A rate limiter whose state lives in Redis, shared by every instance that uses the same Redis and
 * prefix. A decision costs at most one round trip: one Lua script (EVALSHA) checks every limit of
 * the call and charges them only if all admit it, with the time taken from the Redis server. The
 * calls made in the same tick share that round trip: they are decided in arrival order by one
 * EVALSHA (grouped by hash slot on a Cluster), so under concurrency Redis runs one script per batch
 * instead of one per call. When Redis fails or does not answer within `timeoutMs`, those calls are
 * decided by an in-memory insurance limiter (or allowed / denied, per `onRedisError`); while Redis
 * keeps failing, calls are decided at once and one call every `probeIntervalMs` tries Redis again,
 * so Redis is used again as soon as it answers.
 */

import type { Clock } from '../core/clock.js';
import type { Component, ComponentDescriptor, Snapshot } from '../core/component.js';
import { type DeadlineNode, DeadlineQueue } from '../core/deadline-queue.js';
import { ConfigError } from '../core/errors.js';
import { type Disposer, type EventBase, type Listener, PolicyEmitter } from '../core/events.js';
import { clockOf } from '../core/policy.js';
import { joinRegistry } from '../core/registry.js';
import {
  type RateLimitDecision,
  type RateLimiter,
  type RateLimitSpec,
  rateLimiter,
} from '../limits/rate-limiter.js';
import {
  parseRedisRateLimiterOptions,
  REDIS_RATE_LIMITER_DESCRIPTOR,
  type RedisClientLike,
  type RedisRateLimiterOptions,
} from './rate-limiter-options.js';
import { type RateLimitScript, rateLimitScript, type ScriptLimit } from './script.js';

/** Events of a Redis rate limiter. */
export type RedisRateLimiterEvent =
  | (EventBase & {
      readonly kind: 'redisRateLimiter';
      /** Redis failed or timed out: calls are decided by the insurance (or `onRedisError`). */
      readonly event: 'fallback';
      readonly key: string;
      /** The Redis error, or a `RedisTimeoutError`. */
      readonly error: unknown;
    })
  | (EventBase & {
      readonly kind: 'redisRateLimiter';
      /** Redis answered again after a fallback. */
      readonly event: 'recovered';
      readonly key: string;
    });

declare module '../core/events.js' {
  interface PolicyEventMap {
    redisRateLimiter: RedisRateLimiterEvent;
  }
}

/** Redis did not answer within `timeoutMs`. */
export class RedisTimeoutError extends Error {
  constructor(readonly timeoutMs: number) {
    super(`Redis did not answer within ${timeoutMs} ms`);
    this.name = 'RedisTimeoutError';
  }
}

class Decision implements RateLimitDecision {
  constructor(
    readonly allowed: boolean,
    readonly remaining: number,
    readonly retryAfterMs: number,
    readonly resetMs: number,
    readonly limit: number,
    readonly windowMs: number,
  ) {}
}

/** A call waiting for its batch's reply. */
interface Pending {
  readonly key: string;
  readonly cost: number;
  readonly resolve: (d: RateLimitDecision) => void;
}

/** The calls sent in one EVALSHA; its own node in the timeout queue. */
class Batch implements DeadlineNode<Batch> {
  _dlPrev: Batch | null = null;
  _dlNext: Batch | null = null;
  _dlDeadline = 0;
  _dlQueued = false;
  /** Settled (by the reply, an error or the timeout): later outcomes are ignored. */
  done = false;
  constructor(
    readonly calls: Pending[],
    readonly probe: boolean,
    readonly numKeys: number,
    readonly args: string[],
  ) {}
}

const KINDS = {
  'fixed-window': 3,
  'sliding-window-counter': 4,
} as const;

function num(s: unknown): number {
  return typeof s === 'number' ? s : s === 'inf' ? Number.POSITIVE_INFINITY : Number(s);
}

/** CRC16-XMODEM table (Redis Cluster's key hash). */
const CRC16 = (() => {
  const t = new Uint16Array(256);
  for (let i = 0; i < 256; i++) {
    let c = i << 8;
    for (let j = 0; j < 8; j++) c = c & 0x8000 ? ((c << 1) ^ 0x1021) & 0xffff : (c << 1) & 0xffff;
    t[i] = c;
  }
  return t;
})();

/** The Redis Cluster hash slot of a key (its `{hash tag}` when it has a non-empty one). @internal */
export function keySlot(key: string): number {
  let k = key;
  const open = key.indexOf('{');
  if (open !== -1) {
    const close = key.indexOf('}', open + 1);
    if (close > open + 1) k = key.slice(open + 1, close);
  }
  const bytes = Buffer.from(k, 'utf8');
  let crc = 0;
  for (let i = 0; i < bytes.length; i++)
    crc = ((crc << 8) & 0xffff) ^ CRC16[((crc >> 8) ^ bytes[i]!) & 0xff]!;
  return crc & 16383;
}

function scaled(spec: RateLimitSpec, share: number): RateLimitSpec {
  if (share === 1) return spec;
  switch (spec.algorithm) {
    case 'token-bucket':
      return { ...spec, capacity: spec.capacity * share, refillRate: spec.refillRate * share };
    case 'gcra':
      return {
        ...spec,
        rate: spec.rate * share,
        burst: Math.max(0, Math.floor(((spec.burst ?? 0) + 1) * share) - 1),
      };
    default:
      return { ...spec, limit: spec.limit * share };
  }
}

/** A Redis rate limiter. See `redisRateLimiter()`. */
export class RedisRateLimiter implements Component {
  readonly kind = 'redisRateLimiter';
  /** @internal */
  readonly emitter = new PolicyEmitter<RedisRateLimiterEvent>();
  readonly name: string;
  readonly prefix: string;
  readonly timeoutMs: number;
  readonly onRedisError: 'insurance' | 'allow' | 'deny';
  /** The in-memory limiter deciding while Redis fails. */
  readonly insurance: RateLimiter;
  private readonly client: RedisClientLike;
  /** The limits as the in-memory limiter sees them (for `limit`/`windowMs` of a decision). */
  private readonly shape: RateLimiter;
  private readonly script: RateLimitScript;
  private readonly suffixes: string[];
  private readonly nowFn: (() => number) | undefined;
  private readonly clock: Clock;
  readonly probeIntervalMs: number;
  private readonly maxBatch: number;
  private readonly cluster: boolean;
  private readonly deadlines: DeadlineQueue<Batch>;
  /** Calls of the current tick, sent by `flush` (scheduled once per tick). */
  private queue: Pending[] = [];
  private readonly flushBound = () => this.flush();
  private failing = false;
  private probing = false;
  private nextProbeAt = 0;
  private redisCount = 0;
  private fallbackCount = 0;
  private rejections = 0;
  private redisErrors = 0;
  private fallbacks = 0;

  constructor(options: RedisRateLimiterOptions) {
    const o = parseRedisRateLimiterOptions(options);
    const client = o.client;
    this.client = client;
    const limits = o.limits;
    this.shape = rateLimiter({ limits });
    const scriptLimits: ScriptLimit[] = limits.map((l) => {
      switch (l.algorithm) {
        case 'token-bucket':
          return { kind: 1, a: l.capacity, b: l.refillRate / 1000 };
        case 'gcra': {
          const interval = l.periodMs / l.rate;
          return { kind: 2, a: interval, b: interval * ((l.burst ?? 0) + 1) };
        }
        default:
          return { kind: KINDS[l.algorithm as 'fixed-window'], a: l.limit, b: l.windowMs };
      }
    });
    const serverTime = o._now === undefined;
    this.script = rateLimitScript(scriptLimits, serverTime);
    // Limit i of a key is stored at `prefix{k:key}:i` + the kind's letter: changing a limit's kind
    // starts a fresh state instead of misreading the old one.
    // (A lone whole-ms fixed window in server time is a counter, `e`: see script.ts.)
    this.suffixes = this.script.microseconds
      ? [':0e']
      : scriptLimits.map((l, i) => `:${i}${'tgfs'[l.kind - 1]}`);
    this.prefix = o.prefix ?? 'bulwark:rl:';
    this.timeoutMs = o.timeoutMs ?? 50;
    this.onRedisError = o.onRedisError ?? 'insurance';
    this.name = o.name ?? 'redisRateLimiter';
    const share = o.insurance?.share ?? 1;
    this.insurance = o.insurance?.limiter ?? rateLimiter({ limits: limits.map((l) => scaled(l, share)) });
    this.nowFn = o._now;
    this.probeIntervalMs = o.probeIntervalMs ?? 100;
    this.maxBatch = o.maxBatch ?? 128;
    this.clock = o.clock ?? clockOf(undefined);
    this.cluster = (client as { isCluster?: unknown }).isCluster === true;
    this.deadlines = new DeadlineQueue<Batch>(this.clock, this.timeoutMs, (b) =>
      this.failBatch(b, new RedisTimeoutError(this.timeoutMs)),
    );
    joinRegistry(o.registry, this);
  }

  // Deliberate repetition: the descriptor getter and snapshot literal of a Component (the same keys in
  // every component; the values differ in meaning).
  /** The kind's descriptor (states, gauges, counters). */
  get descriptor(): ComponentDescriptor {
    return REDIS_RATE_LIMITER_DESCRIPTOR;
  }

  /**
   * The limiter's state and figures (no I/O): `ok` or `failing`; decisions by Redis and by the
   * fallback, rejections, Redis errors.
   *
   * @example
   * ```ts nocheck
   * const { state, counters } = limiter.snapshot();
   * console.log(state, counters.redisDecisions, counters.fallbackDecisions);
   * ```
   */
  snapshot(): Snapshot {
    return {
      kind: this.kind,
      name: this.name,
      state: this.failing ? 'failing' : 'ok',
      gauges: { failing: this.failing ? 1 : 0, queued: this.queue.length },
      counters: {
        redisDecisions: this.redisCount,
        fallbackDecisions: this.fallbackCount,
        rejections: this.rejections,
        redisErrors: this.redisErrors,
        fallbacks: this.fallbacks,
      },
      details: {
        prefix: this.prefix,
        timeoutMs: this.timeoutMs,
        onRedisError: this.onRedisError,
        limits: this.shape.algorithms.map((a) => ({ limit: a.limit, windowMs: a.windowMs })),
      },
    };
  }

  /** Counters since creation: calls decided by Redis, and by the fallback; whether Redis is failing now. */
  get stats(): { readonly redis: number; readonly fallback: number; readonly failing: boolean } {
    return { redis: this.redisCount, fallback: this.fallbackCount, failing: this.failing };
  }

  /** Registers a listener for `fallback`/`recovered` events. */
  onEvent(listener: Listener<RedisRateLimiterEvent>): Disposer {
    return this.emitter.on(listener);
  }

  /**
   * Spends `cost` units (default 1) for `key` in every limit if all of them admit it, else spends
   * nothing. Never rejects for a Redis failure: such a call is decided by the fallback.
   */
  consume(key: string, cost = 1): Promise<RateLimitDecision> {
    if (typeof key !== 'string')
      return Promise.reject(new ConfigError('redisRateLimiter.consume(key)', 'a string', key));
    if (typeof cost !== 'number' || !Number.isFinite(cost) || cost < 0) {
      return Promise.reject(new ConfigError('redisRateLimiter.consume(cost)', 'a finite number >= 0', cost));
    }
    if (this.failing) {
      // Redis is failing: decide at once, except one probe call per interval.
      if (this.probing || this.clock.now() < this.nextProbeAt) {
        this.fallbackCount++;
        return Promise.resolve(this.fallback(key, cost));
      }
      this.probing = true;
      return new Promise<RateLimitDecision>((resolve) => {
        this.send([{ key, cost, resolve }], true);
      });
    }
    return new Promise<RateLimitDecision>((resolve) => {
      if (this.queue.length === 0) process.nextTick(this.flushBound);
      this.queue.push({ key, cost, resolve });
    });
  }

  /** Sends the calls of this tick: one EVALSHA per `maxBatch` calls (per hash slot on a Cluster). */
  private flush(): void {
    const calls = this.queue;
    this.queue = [];
    if (calls.length === 0) return;
    if (this.cluster) {
      const bySlot = new Map<number, Pending[]>();
      for (const c of calls) {
        const slot = keySlot(`${this.prefix}{k:${c.key}}`);
        const group = bySlot.get(slot);
        if (group === undefined) bySlot.set(slot, [c]);
        else group.push(c);
      }
      for (const group of bySlot.values()) this.sendChunks(group);
    } else {
      this.sendChunks(calls);
    }
  }

  private sendChunks(calls: Pending[]): void {
    if (calls.length <= this.maxBatch) {
      this.send(calls, false);
      return;
    }
    for (let i = 0; i < calls.length; i += this.maxBatch) this.send(calls.slice(i, i + this.maxBatch), false);
  }

  private send(calls: Pending[], probe: boolean): void {
    const n = this.shape.algorithms.length;
    const nk = calls.length * n;
    // One flat argument list (ioredis flattens it): the keys, then now and one cost per call.
    const args = new Array<string>(nk + 1 + calls.length);
    args[nk] = this.nowFn === undefined ? '' : String(this.nowFn());
    for (let c = 0; c < calls.length; c++) {
      const call = calls[c]!;
      const base = `${this.prefix}{k:${call.key}}`;
      for (let i = 0; i < n; i++) args[c * n + i] = base + this.suffixes[i]!;
      args[nk + 1 + c] = call.cost === 1 ? '1' : String(call.cost);
    }
    const batch = new Batch(calls, probe, nk, args);
    this.deadlines.add(batch);
    this.run(batch, false);
  }

  /** EVALSHA; on NOSCRIPT (script cache flushed or never loaded), EVAL, which also loads it. */
  private run(batch: Batch, withSource: boolean): void {
    // ioredis flattens array arguments; its typings do not say so.
    const c = this.client as unknown as {
      evalsha(sha: string, numkeys: number, args: string[]): Promise<unknown>;
      eval(source: string, numkeys: number, args: string[]): Promise<unknown>;
    };
    let sent: Promise<unknown>;
    try {
      sent = withSource
        ? c.eval(this.script.source, batch.numKeys, batch.args)
        : c.evalsha(this.script.sha, batch.numKeys, batch.args);
    } catch (error) {
      this.failBatch(batch, error);
      return;
    }
    sent.then(
      (reply) => this.settle(batch, reply),
      (error: unknown) => {
        if (batch.done) return; // decided by the fallback already: do not charge it in Redis now
        if (!withSource && error instanceof Error && error.message.startsWith('NOSCRIPT'))
          this.run(batch, true);
        else this.failBatch(batch, error);
      },
    );
  }

  private settle(batch: Batch, reply: unknown): void {
    if (batch.done) return;
    const calls = batch.calls;
    const width = this.script.microseconds ? 3 : 5;
    if (!Array.isArray(reply) || reply.length !== calls.length * width) {
      this.failBatch(batch, new Error('unexpected reply from the rate-limit script'));
      return;
    }
    const decisions = new Array<RateLimitDecision>(calls.length);
    try {
      if (width === 3)
        for (let c = 0; c < calls.length; c++) decisions[c] = this.windowDecision(reply, c * 3);
      else for (let c = 0; c < calls.length; c++) decisions[c] = this.decision(reply, c * 5);
    } catch (error) {
      this.failBatch(batch, error);
      return;
    }
    batch.done = true;
    this.deadlines.remove(batch);
    if (batch.probe) this.probing = false;
    this.redisCount += calls.length;
    if (this.failing) {
      this.failing = false;
      this.emit('recovered', calls[0]!.key, undefined);
    }
    for (let c = 0; c < calls.length; c++) {
      if (!decisions[c]!.allowed) this.rejections++;
      calls[c]!.resolve(decisions[c]!);
    }
  }

  /** Redis failed or timed out for a batch: its calls are decided without Redis. */
  private failBatch(batch: Batch, error: unknown): void {
    if (batch.done) return;
    batch.done = true;
    this.deadlines.remove(batch);
    if (batch.probe) this.probing = false;
    this.nextProbeAt = this.clock.now() + this.probeIntervalMs;
    const calls = batch.calls;
    this.redisErrors++;
    if (!this.failing) {
      this.failing = true;
      this.fallbacks++;
      this.emit('fallback', calls[0]!.key, error);
    }
    this.fallbackCount += calls.length;
    for (const c of calls) c.resolve(this.fallback(c.key, c.cost));
  }

  private decision(reply: unknown[], o: number): RateLimitDecision {
    const allowed = reply[o] === 1;
    const alg = this.shape.algorithms[Number(reply[o + 1])];
    if (alg === undefined) throw new Error('unexpected reply from the rate-limit script');
    const retry = this.ms(reply[o + 3]);
    return new Decision(
      allowed,
      num(reply[o + 2]),
      allowed ? 0 : retry > 0 ? retry : Number.MIN_VALUE,
      this.ms(reply[o + 4]),
      alg.limit,
      alg.windowMs,
    );
  }

  /** A decision of the lone-fixed-window script: code (1 allowed, 0 rejected, 2 never), remaining, reset. */
  private windowDecision(reply: unknown[], o: number): RateLimitDecision {
    const code = reply[o];
    const alg = this.shape.algorithms[0]!;
    const reset = this.ms(reply[o + 2]);
    if (code !== 0 && code !== 1 && code !== 2)
      throw new Error('unexpected reply from the rate-limit script');
    return new Decision(
      code === 1,
      num(reply[o + 1]),
      code === 1 ? 0 : code === 2 ? Number.POSITIVE_INFINITY : reset > 0 ? reset : Number.MIN_VALUE,
      reset,
      alg.limit,
      alg.windowMs,
    );
  }

  /** A time from the reply, in ms (numbers are µs from the lone-fixed-window script). */
  private ms(v: unknown): number {
    if (typeof v === 'number') return this.script.microseconds ? v / 1000 : v;
    return num(v);
  }

  /** The decision while Redis fails: the insurance's, or allow / deny per `onRedisError`. */
  private fallback(key: string, cost: number): RateLimitDecision {
    const d = this.fallbackDecision(key, cost);
    if (!d.allowed) this.rejections++;
    return d;
  }

  private fallbackDecision(key: string, cost: number): RateLimitDecision {
    const first = this.shape.algorithms[0]!;
    switch (this.onRedisError) {
      case 'allow':
        return new Decision(true, first.limit, 0, 0, first.limit, first.windowMs);
      case 'deny':
        return new Decision(false, 0, first.windowMs, first.windowMs, first.limit, first.windowMs);
      default:
        return this.insurance.consume(key, cost);
    }
  }

  private emit(event: 'fallback' | 'recovered', key: string, error: unknown): void {
    if (!this.emitter.active) return;
    const base = {
      kind: 'redisRateLimiter',
      name: this.name,
      priority: 'normal',
      operation: undefined,
      attempt: 1,
      key,
    } as const;
    this.emitter.emit(event === 'fallback' ? { ...base, event, error } : { ...base, event });
  }
}

/**
 * Makes a rate limiter whose state lives in Redis (shared by every instance), with an in-memory
 * insurance limiter for the calls Redis cannot decide in time.
 *
 * @example
 * ```ts
 * import { Redis } from 'ioredis';
 * import { redisRateLimiter } from 'bulwark/redis';
 * const limiter = redisRateLimiter({
 *   client: new Redis(),
 *   limits: [{ algorithm: 'gcra', rate: 100, periodMs: 1_000, burst: 20 }],
 *   insurance: { share: 1 / 10 }, // ten instances
 * });
 * const d = await limiter.consume('user-42');
 * ```
 */
export function redisRateLimiter(options: RedisRateLimiterOptions): RedisRateLimiter {
  return new RedisRateLimiter(options);
}

export {
  REDIS_RATE_LIMITER_DESCRIPTOR,
  type RedisClientLike,
  type RedisRateLimiterOptions,
} from './rate-limiter-options.js';
