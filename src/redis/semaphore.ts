/**
 * A distributed semaphore with leases: at most `limit` permits are held at once across every
 * instance that uses the same Redis, name and prefix. The holders are a sorted set of random ids
 * scored by their lease's expiry (server time): acquiring is one Lua script (drop expired holders,
 * count, add when below the limit), releasing is ZREM, extending pushes the expiry of a holder
 * still present. A holder that dies without releasing loses its permit when its lease ends.
 * `redisBulkhead` (redis-bulkhead.ts) uses it as a bulkhead policy.
 */
import { createHash, randomUUID } from 'node:crypto';
import type { Cluster, Redis } from 'ioredis';

import { registrySchema } from '../core/breaker/options.js';
import type { Component, ComponentDescriptor, Snapshot } from '../core/component.js';
import { type Disposer, type Listener, PolicyEmitter } from '../core/events.js';
import type { Registry } from '../core/registry.js';
import { joinRegistry } from '../core/registry.js';
import { s } from '../core/schema.js';
import { clientSchema } from './client-schema.js';

/**
 * KEYS[1] = the holders' sorted set. ARGV[1] = 'a' (acquire), 'e' (extend) or 'c' (count), ARGV[2] = holder id,
 * ARGV[3] = lease in ms, ARGV[4] = limit (acquire only). Acquire returns `{1, holders}` when the
 * permit was taken, `{0, holders}` when full; extend returns 1, or 0 when the lease was lost;
 * count returns the holders.
 * @internal
 */
export const SEMAPHORE_SCRIPT = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local key, id, lease = KEYS[1], ARGV[2], tonumber(ARGV[3])
local expiry = now + lease
local function keep()
  -- The set lives as long as its longest lease (plus a margin), so an idle one disappears.
  if redis.call('PTTL', key) < lease + 1000 then redis.call('PEXPIRE', key, lease + 1000) end
end
redis.call('ZREMRANGEBYSCORE', key, '-inf', now)
if ARGV[1] == 'c' then return redis.call('ZCARD', key) end
if ARGV[1] == 'e' then
  if redis.call('ZADD', key, 'XX', 'CH', expiry, id) == 1 or redis.call('ZSCORE', key, id) then
    keep()
    return 1
  end
  return 0
end
local n = redis.call('ZCARD', key)
if redis.call('ZSCORE', key, id) then return { 1, n } end
if n < tonumber(ARGV[4]) then
  redis.call('ZADD', key, expiry, id)
  keep()
  return { 1, n + 1 }
end
return { 0, n }
`;

/** SHA1 of the script, as EVALSHA wants it. @internal */
export const SEMAPHORE_SHA = createHash('sha1').update(SEMAPHORE_SCRIPT).digest('hex');

/** The subset of an ioredis client (or Cluster) the semaphore uses. */
export type RedisSemaphoreClient = Pick<Redis | Cluster, 'evalsha' | 'eval' | 'zrem'>;

/** Options of `redisSemaphore()`. */
export interface RedisSemaphoreOptions {
  /** An ioredis client or Cluster, owned by the caller. */
  readonly client: RedisSemaphoreClient;
  /** The semaphore's name: instances with the same name (and prefix) share its permits. */
  readonly name: string;
  /** Permits held at once, fleet-wide (an integer >= 1). */
  readonly limit: number;
  /** How long a permit lasts unless extended, in ms. Default 30,000. */
  readonly leaseMs?: number;
  /** Prefix of the key. Default `'bulwark:sem:'`. */
  readonly prefix?: string;
  /** The registry the semaphore joins at creation. */
  readonly registry?: Registry;
}

const schema = s.object({
  client: clientSchema<RedisSemaphoreClient>(['evalsha', 'eval', 'zrem']),
  name: s.string(),
  limit: s.int({ min: 1 }),
  leaseMs: s.optional(s.int({ min: 1 }), 30_000),
  prefix: s.optional(s.string(), 'bulwark:sem:'),
  registry: s.optional(registrySchema),
});

// Deliberate repetition: a descriptor literal (the same keys in every component; the values differ in meaning).
/** The descriptor of `redisSemaphore` components. */
export const REDIS_SEMAPHORE_DESCRIPTOR: ComponentDescriptor = Object.freeze({
  kind: 'redisSemaphore',
  help: 'A distributed semaphore with leases on Redis',
  category: 'bulkhead',
  states: Object.freeze(['ok', 'failing']),
  gauges: Object.freeze({
    held: 'Permits this instance holds now',
    limit: 'Permits held at once, fleet-wide',
  }),
  counters: Object.freeze({
    acquisitions: 'Permits taken',
    refusals: 'Acquisitions refused because the semaphore was full',
    leasesLost: 'Permits whose lease ended before they were released',
    redisErrors: 'Redis commands that failed',
  }),
});

/** A permit taken from a `redisSemaphore`. */
export interface RedisPermit {
  /** The holder id (random) under which the permit is held. */
  readonly id: string;
  /** Gives the permit back. Resolves true if it was still held (false: its lease had ended). */
  release(): Promise<boolean>;
  /** Extends the lease by `leaseMs` from now. Resolves false when the lease had already ended (the permit is lost). */
  extend(): Promise<boolean>;
}

/** A distributed semaphore on Redis. See `redisSemaphore()`. */
export class RedisSemaphore implements Component {
  readonly kind = 'redisSemaphore';
  readonly name: string;
  readonly limit: number;
  readonly leaseMs: number;
  /** The Redis key of the holders' sorted set. */
  readonly key: string;
  /** The kind's descriptor (states, gauges, counters). */
  readonly descriptor = REDIS_SEMAPHORE_DESCRIPTOR;
  /** @internal */
  readonly emitter = new PolicyEmitter<never>();
  private readonly client: RedisSemaphoreClient;
  private held = 0;
  private acquisitions = 0;
  private refusals = 0;
  private leasesLost = 0;
  private redisErrors = 0;
  private failing = false;

  constructor(options: RedisSemaphoreOptions) {
    const o = schema.parse(options, 'redisSemaphore');
    this.client = o.client;
    this.name = o.name;
    this.limit = o.limit;
    this.leaseMs = o.leaseMs ?? 30_000;
    this.key = `${o.prefix ?? 'bulwark:sem:'}{${this.name}}`;
    joinRegistry(o.registry, this);
  }

  /**
   * The permits this instance holds and what happened since creation (no I/O).
   *
   * @example
   * ```ts nocheck
   * console.log(sem.snapshot().gauges.held, sem.snapshot().counters.refusals);
   * ```
   */
  snapshot(): Snapshot {
    return {
      kind: this.kind,
      name: this.name,
      state: this.failing ? 'failing' : 'ok',
      gauges: { held: this.held, limit: this.limit },
      counters: {
        acquisitions: this.acquisitions,
        refusals: this.refusals,
        leasesLost: this.leasesLost,
        redisErrors: this.redisErrors,
      },
      details: { key: this.key, leaseMs: this.leaseMs },
    };
  }

  /** The semaphore emits no events of its own (its bulkhead does); for the `Component` contract. */
  onEvent(listener: Listener<never>): Disposer {
    return this.emitter.on(listener);
  }

  /**
   * Takes a permit if fewer than `limit` are held (expired leases do not count): resolves with the
   * permit, or null when the semaphore is full. Rejects when Redis fails.
   */
  acquire(): Promise<RedisPermit | null> {
    return this._acquire().then((r) => r.permit);
  }

  /** Acquire, with the number of holders seen. @internal */
  _acquire(): Promise<{ permit: RedisPermit | null; holders: number }> {
    const id = randomUUID();
    return this.run(['a', id, String(this.leaseMs), String(this.limit)]).then((reply) => {
      if (!Array.isArray(reply) || reply.length !== 2)
        throw new Error('unexpected reply from the semaphore script');
      const holders = Number(reply[1]);
      if (reply[0] !== 1) {
        this.refusals++;
        return { permit: null, holders };
      }
      this.acquisitions++;
      this.held++;
      return { permit: this.permit(id), holders };
    });
  }

  /** Permits held now (expired leases excluded), read from Redis. */
  count(): Promise<number> {
    return this.run(['c', '', String(this.leaseMs)]).then(Number);
  }

  private permit(id: string): RedisPermit {
    let held = true;
    const gone = (lost: boolean) => {
      if (!held) return;
      held = false;
      this.held--;
      if (lost) this.leasesLost++;
    };
    return {
      id,
      release: () =>
        this.watch((this.client as Redis).zrem(this.key, id)).then((n) => {
          gone(n !== 1);
          return n === 1;
        }),
      extend: () =>
        this.run(['e', id, String(this.leaseMs)]).then((r) => {
          if (r !== 1) gone(true);
          return r === 1;
        }),
    };
  }

  /** Tracks whether Redis answers. */
  private watch<T>(p: Promise<T>): Promise<T> {
    return p.then(
      (v) => {
        this.failing = false;
        return v;
      },
      (error: unknown) => {
        this.failing = true;
        this.redisErrors++;
        throw error;
      },
    );
  }

  /** EVALSHA; on NOSCRIPT, EVAL (which also caches the script). */
  private run(argv: string[]): Promise<unknown> {
    const c = this.client as Redis;
    return this.watch(
      c.evalsha(SEMAPHORE_SHA, 1, this.key, ...argv).catch((error: unknown) => {
        if (error instanceof Error && error.message.startsWith('NOSCRIPT'))
          return c.eval(SEMAPHORE_SCRIPT, 1, this.key, ...argv);
        throw error;
      }),
    );
  }
}

/**
 * Makes a distributed semaphore with leases on Redis.
 *
 * @example
 * ```ts nocheck
 * import { redisSemaphore } from 'bulwark/redis';
 * const sem = redisSemaphore({ client, name: 'payments', limit: 20, leaseMs: 10_000 });
 * const permit = await sem.acquire();
 * if (permit !== null) try { await work(); } finally { await permit.release(); }
 * ```
 */
export function redisSemaphore(options: RedisSemaphoreOptions): RedisSemaphore {
  return new RedisSemaphore(options);
}
