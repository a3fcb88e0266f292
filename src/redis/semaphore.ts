/**
 * A distributed semaphore with leases: at most `limit` permits are held at once across every
 * instance that uses the same Redis, name and prefix. The holders are a sorted set of random ids
 * scored by their lease's expiry (server time): acquiring is one Lua script (drop expired holders,
 * count, add when below the limit), releasing is ZREM, extending pushes the expiry of a holder
 * still present. A holder that dies without releasing loses its permit when its lease ends.
 * `redisBulkhead` uses it as a bulkhead policy (reject when full, renew while the call runs).
 */
import { createHash, randomUUID } from 'node:crypto';
import type { Cluster, Redis } from 'ioredis';
import type { ExecuteOptions, Operation } from '../core/context.js';
import { ExecutionContext } from '../core/context.js';
import { BulkheadRejectedError, ConfigError } from '../core/errors.js';
import { type BulkheadEvent, PolicyEmitter } from '../core/events.js';
import { checkKeys, checkObject, checkString, optNumber, rules } from '../core/options.js';
import { type Link, PolicyBase, start } from '../core/policy.js';

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
}

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
export class RedisSemaphore {
  readonly name: string;
  readonly limit: number;
  readonly leaseMs: number;
  /** The Redis key of the holders' sorted set. */
  readonly key: string;
  private readonly client: RedisSemaphoreClient;

  constructor(options: RedisSemaphoreOptions) {
    const o = checkObject('redisSemaphore', options);
    checkKeys('redisSemaphore', o, ['client', 'name', 'limit', 'leaseMs', 'prefix']);
    const client = o.client as RedisSemaphoreClient | undefined;
    if (
      client === null ||
      typeof client !== 'object' ||
      typeof client.evalsha !== 'function' ||
      typeof client.eval !== 'function' ||
      typeof client.zrem !== 'function'
    ) {
      throw new ConfigError('redisSemaphore.client', 'an ioredis client', client);
    }
    this.client = client;
    if (typeof o.name !== 'string' || o.name === '')
      throw new ConfigError('redisSemaphore.name', 'a non-empty string', o.name);
    this.name = o.name;
    if (o.limit === undefined) throw new ConfigError('redisSemaphore.limit', 'an integer >= 1', undefined);
    this.limit = optNumber('redisSemaphore.limit', o.limit, rules.int(1), 1);
    this.leaseMs = optNumber('redisSemaphore.leaseMs', o.leaseMs, rules.int(1), 30_000);
    const prefix = checkString('redisSemaphore.prefix', o.prefix, 'bulwark:sem:');
    this.key = `${prefix}{${this.name}}`;
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
      return { permit: reply[0] === 1 ? this.permit(id) : null, holders };
    });
  }

  /** Permits held now (expired leases excluded), read from Redis. */
  count(): Promise<number> {
    return this.run(['c', '', String(this.leaseMs)]).then(Number);
  }

  private permit(id: string): RedisPermit {
    return {
      id,
      release: () => (this.client as Redis).zrem(this.key, id).then((n) => n === 1),
      extend: () => this.run(['e', id, String(this.leaseMs)]).then((r) => r === 1),
    };
  }

  /** EVALSHA; on NOSCRIPT, EVAL (which also caches the script). */
  private run(argv: string[]): Promise<unknown> {
    const c = this.client as Redis;
    return c.evalsha(SEMAPHORE_SHA, 1, this.key, ...argv).catch((error: unknown) => {
      if (error instanceof Error && error.message.startsWith('NOSCRIPT'))
        return c.eval(SEMAPHORE_SCRIPT, 1, this.key, ...argv);
      throw error;
    });
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

/** Options of `redisBulkhead()`. */
export interface RedisBulkheadOptions {
  /** The semaphore whose permits the calls take. */
  readonly semaphore: RedisSemaphore;
  /** How often a running call renews its lease, in ms. Default `leaseMs / 3`. */
  readonly renewEveryMs?: number;
  /** Name in events and errors. Default the semaphore's name. */
  readonly name?: string;
}

/** A bulkhead over a Redis semaphore. See `redisBulkhead()`. */
export class RedisBulkheadPolicy extends PolicyBase<never, BulkheadEvent> {
  readonly kind = 'bulkhead';
  readonly name: string;
  /** @internal */
  readonly emitter = new PolicyEmitter<BulkheadEvent>();
  readonly semaphore: RedisSemaphore;
  readonly renewEveryMs: number;
  private rejected = 0;
  private running = 0;
  private lost = 0;

  constructor(options: RedisBulkheadOptions) {
    super();
    const o = checkObject('redisBulkhead', options);
    checkKeys('redisBulkhead', o, ['semaphore', 'renewEveryMs', 'name']);
    if (!(o.semaphore instanceof RedisSemaphore))
      throw new ConfigError('redisBulkhead.semaphore', 'a redisSemaphore()', o.semaphore);
    this.semaphore = o.semaphore;
    this.renewEveryMs = optNumber(
      'redisBulkhead.renewEveryMs',
      o.renewEveryMs,
      rules.positive,
      Math.max(1, Math.floor(this.semaphore.leaseMs / 3)),
    );
    if (this.renewEveryMs >= this.semaphore.leaseMs) {
      throw new ConfigError(
        'redisBulkhead.renewEveryMs',
        `less than leaseMs (${this.semaphore.leaseMs})`,
        o.renewEveryMs,
      );
    }
    this.name = checkString('redisBulkhead.name', o.name, this.semaphore.name);
  }

  /** Calls of this instance holding a permit now; rejections and lost leases since creation. */
  get stats(): { readonly active: number; readonly rejected: number; readonly leasesLost: number } {
    return { active: this.running, rejected: this.rejected, leasesLost: this.lost };
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
    return this.semaphore._acquire().then(({ permit, holders }) => {
      if (permit === null) {
        this.rejected++;
        if (this.emitter.active) {
          this.emitter.emit({
            kind: 'bulkhead',
            name: this.name,
            priority: ctx.priority,
            operation: ctx.name,
            attempt: ctx.attempt,
            inFlight: holders,
            queued: 0,
            event: 'reject',
            reason: 'full',
          });
        }
        return Promise.reject(new BulkheadRejectedError(this.name, 'BULKHEAD_FULL', holders, 0));
      }
      if (ctx._isAborted) {
        this.giveBack(permit);
        return Promise.reject(ctx._abortReason);
      }
      this.running++;
      // Renewed only while the call holds the permit; unref'd: the call itself keeps the process alive.
      const timer = setInterval(() => {
        permit.extend().then(
          (held) => {
            if (!held) this.lost++;
          },
          () => {}, // Redis failing: the next tick tries again; the lease may end meanwhile.
        );
      }, this.renewEveryMs);
      timer.unref?.();
      const done = () => {
        clearInterval(timer);
        this.running--;
        this.giveBack(permit);
      };
      return start(ctx, next).then(
        (value) => {
          done();
          return value;
        },
        (error: unknown) => {
          done();
          throw error;
        },
      );
    });
  }

  /** Releases in the background: if Redis fails, the lease ends the permit anyway. */
  private giveBack(permit: RedisPermit): void {
    permit.release().then(
      () => {},
      () => {},
    );
  }
}

/**
 * Makes a bulkhead whose slots are the permits of a Redis semaphore (fleet-wide): a call takes a
 * permit or is rejected with `BulkheadRejectedError` (no queue), renews its lease while it runs,
 * and gives the permit back when it settles.
 *
 * @example
 * ```ts nocheck
 * import { pipeline, timeout } from 'bulwark';
 * import { redisBulkhead, redisSemaphore } from 'bulwark/redis';
 * const policy = pipeline(redisBulkhead({ semaphore: redisSemaphore({ client, name: 'db', limit: 50 }) }), timeout(5_000));
 * ```
 */
export function redisBulkhead(options: RedisBulkheadOptions): RedisBulkheadPolicy {
  return new RedisBulkheadPolicy(options);
}
