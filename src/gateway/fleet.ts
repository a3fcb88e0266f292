/**
 * What several gateway instances share, from the `redis` and `postgres` settings of the file:
 *
 * - `redis`: client limits through `redisRateLimiter` (one count per client for the fleet; while
 *   Redis fails each instance decides in memory with `insuranceShare` of the limit) and endpoint
 *   breakers through `sharedCircuitBreaker` (an endpoint opened by one instance is open on all;
 *   while Redis fails each runs its breaker locally);
 * - `postgres`: the store-and-forward queue on `postgresStore` and its idempotency records in the
 *   same schema, so any instance delivers a queued write (once: claims are leased with SKIP LOCKED)
 *   and answers any status URL, 409 or 422.
 *
 * With neither, everything is local and embedded: memory limiters, local breakers, SQLite in
 * `dataDir`. The drivers (ioredis, pg, better-sqlite3) are optional peers loaded only when used.
 * @module
 */

import { join } from 'node:path';
import type { Redis } from 'ioredis';
import type { Pool } from 'pg';
import { circuitBreaker } from '../core/breaker/circuit-breaker.js';
import type { Component } from '../core/component.js';
import type { Registry } from '../core/registry.js';
import { settlePostgresOptions } from '../durable/pg-options.js';
import { postgresStore } from '../durable/postgres-store.js';
import { sqliteStore } from '../durable/sqlite-store.js';
import type { QueueStore } from '../durable/store.js';
import type { RateLimitDecision } from '../limits/rate-limiter.js';
import { RedisRateLimiter, redisRateLimiter } from '../redis/rate-limiter.js';
import {
  type SharedBreakerSubscriber,
  SharedCircuitBreakerPolicy,
  sharedCircuitBreaker,
} from '../redis/shared-breaker.js';
import type { GatewayConfig } from './config.js';
import { postgresRecords, type RecordStore, sqliteRecords } from './idempotency-records.js';
import {
  clientLimiter,
  type EndpointBreaker,
  type EndpointBreakerSettings,
  endpointBreakerOptions,
} from './policies.js';
import type { Route } from './route.js';
import type { Upstream } from './upstream.js';

/** A client limiter: in memory (a decision) or on Redis (a promise of one). */
export interface ClientLimiter {
  consume(key: string): RateLimitDecision | Promise<RateLimitDecision>;
}

type RedisSetting = NonNullable<GatewayConfig['redis']>;
const REDIS_DEFAULTS = { prefix: 'bulwark:gw:', timeoutMs: 50, insuranceShare: 1 };

/** Redis settings with defaults, from the string or object form. */
export function redisSettings(r: RedisSetting): { url: string } & typeof REDIS_DEFAULTS {
  return typeof r === 'string' ? { url: r, ...REDIS_DEFAULTS } : { ...REDIS_DEFAULTS, ...r };
}

/**
 * One SUBSCRIBE connection for every endpoint breaker of this instance (instead of one each),
 * counting subscriptions per channel: a breaker replaced on reload unsubscribes its channel only
 * when no other breaker of the same endpoint still listens.
 */
class SubscriberMux {
  private readonly counts = new Map<string, number>();
  constructor(readonly connection: Redis) {
    connection.setMaxListeners(0); // one 'message' and one 'ready' listener per breaker
  }
  subscribe(channel: string): Promise<unknown> {
    const n = (this.counts.get(channel) ?? 0) + 1;
    this.counts.set(channel, n);
    return n === 1 ? this.connection.subscribe(channel) : Promise.resolve(1);
  }
  unsubscribe(channel: string): Promise<unknown> {
    const n = (this.counts.get(channel) ?? 0) - 1;
    if (n > 0) {
      this.counts.set(channel, n);
      return Promise.resolve(0);
    }
    this.counts.delete(channel);
    return this.connection.unsubscribe(channel);
  }
  on(event: string, listener: (...args: never[]) => void): this {
    this.connection.on(event, listener as (...args: unknown[]) => void);
    return this;
  }
  off(event: string, listener: (...args: never[]) => void): this {
    this.connection.off(event, listener as (...args: unknown[]) => void);
    return this;
  }
}

/** `{` and `}` are Redis Cluster hash tags; names keep everything else. */
const keyPart = (name: string) => name.replace(/[{}\s]/g, '_');

/**
 * The shared state of one gateway process: made once at start from `redis` / `postgres` (a reload
 * that changes either is refused: restart to move a fleet), closed last.
 *
 * @example
 * ```ts
 * import { Fleet, parseGatewayConfig } from 'bulwark/gateway';
 * const fleet = await Fleet.open(parseGatewayConfig({
 *   listen: 0,
 *   upstreams: { api: { endpoints: [{ url: 'http://127.0.0.1:7001' }] } },
 *   routes: [{ match: { path: '/' }, upstream: 'api' }],
 * }));
 * console.log(fleet.describe()); // { limits: 'memory', breakers: 'local', queue: 'sqlite' }
 * await fleet.close();
 * ```
 */
export class Fleet {
  private readonly breakers = new Set<{ close(): Promise<void> }>();
  private pool: Pool | null = null;
  private subscriber: SubscriberMux | null = null;
  private schema = 'bulwark';

  private constructor(
    private readonly config: GatewayConfig,
    private readonly redis: Redis | null,
  ) {}

  /** Connects to Redis when `redis` is set (PostgreSQL connects on first use). */
  static async open(config: GatewayConfig): Promise<Fleet> {
    if (config.redis === undefined) return new Fleet(config, null);
    const { Redis } = await import('ioredis');
    const client = new Redis(redisSettings(config.redis).url, {
      maxRetriesPerRequest: 1,
      // Reconnect quickly and forever: decisions never wait for it (timeoutMs bounds them).
      retryStrategy: (times) => Math.min(times * 100, 1_000),
    });
    client.on('error', () => {}); // reported through the limiters' and breakers' fallback events
    return new Fleet(config, client);
  }

  /** Whether `next` keeps this fleet's Redis and PostgreSQL (else a restart is needed). */
  sameAs(next: GatewayConfig): boolean {
    return (
      JSON.stringify([next.redis, next.postgres]) ===
      JSON.stringify([this.config.redis, this.config.postgres])
    );
  }

  /** Where each kind of state lives. */
  describe(): { limits: string; breakers: string; queue: string } {
    const r = this.redis !== null;
    return {
      limits: r ? 'redis' : 'memory',
      breakers: r ? 'redis' : 'local',
      queue: this.config.postgres !== undefined ? 'postgres' : 'sqlite',
    };
  }

  /** The limiter of limit `index` of `route`: `limit` per `windowMs`, fleet-wide with Redis. */
  clientLimiter(route: string, index: number, name: string, limit: number, windowMs: number): ClientLimiter {
    if (this.redis === null) return clientLimiter(limit, windowMs);
    const r = redisSettings(this.config.redis!);
    return redisRateLimiter({
      client: this.redis,
      limits: [{ algorithm: 'sliding-window-counter', limit, windowMs }],
      prefix: `${r.prefix}rl:${keyPart(route)}:${index}:`,
      timeoutMs: r.timeoutMs,
      insurance: { share: r.insuranceShare },
      name: `${route}/${name}`,
    });
  }

  /** The breaker of an endpoint: shared through Redis (same name on every instance), or local. */
  endpointBreaker(name: string, settings: EndpointBreakerSettings): EndpointBreaker {
    if (this.redis === null) return circuitBreaker(endpointBreakerOptions(name, settings));
    const r = redisSettings(this.config.redis!);
    if (this.subscriber === null) {
      const connection = this.redis.duplicate();
      connection.on('error', () => {}); // the breakers report it (fallback events)
      this.subscriber = new SubscriberMux(connection);
    }
    const b = sharedCircuitBreaker({
      ...endpointBreakerOptions(keyPart(name), settings),
      client: this.redis,
      // The mux has the subscriber methods the breaker calls (typed loosely: ioredis overloads).
      subscriber: this.subscriber as unknown as SharedBreakerSubscriber,
      prefix: `${r.prefix}cb:`,
      timeoutMs: r.timeoutMs,
    });
    this.breakers.add(b);
    return b;
  }

  /**
   * Keeps `registry` holding the shared limiters and breakers of the current routes and upstreams
   * (their `fallback` / `recovered` events reach the admin event stream, their figures /metrics).
   */
  track(registry: Registry, routes: readonly Route[], upstreams: Iterable<Upstream>): void {
    const now = new Set<Component>();
    for (const r of routes)
      for (const l of r.limits) if (l.limiter instanceof RedisRateLimiter) now.add(l.limiter);
    for (const u of upstreams)
      for (const e of u.endpoints) if (e.breaker instanceof SharedCircuitBreakerPolicy) now.add(e.breaker);
    for (const c of this.tracked) if (!now.has(c)) registry.unregister(c);
    for (const c of now) if (!this.tracked.has(c)) registry.register(c);
    this.tracked = now;
  }
  private tracked = new Set<Component>();

  /** Closes the shared breakers of replaced endpoints (their subscriptions). */
  async release(breakers: readonly (EndpointBreaker | null)[]): Promise<void> {
    for (const b of breakers) {
      if (b !== null && this.breakers.delete(b as never)) await (b as { close(): Promise<void> }).close();
    }
  }

  private async pgPool(): Promise<Pool> {
    if (this.pool !== null) return this.pool;
    const { schema, connectionString } = settlePostgresOptions({ connectionString: this.config.postgres! });
    const pg = (await import('pg')).default;
    const pool = new pg.Pool({ connectionString, max: 10, connectionTimeoutMillis: 5_000 });
    pool.on('error', () => {}); // an idle client lost its connection: pg discards it
    this.pool = pool;
    this.schema = schema;
    return pool;
  }

  /** The store-and-forward queue's store and its idempotency records. */
  async writeStore(): Promise<{ store: QueueStore; records: RecordStore }> {
    if (this.config.postgres === undefined) {
      const records = await sqliteRecords(this.config.dataDir); // makes dataDir
      return { store: sqliteStore({ path: join(this.config.dataDir, 'gateway-queue.db') }), records };
    }
    const pool = await this.pgPool();
    const records = await postgresRecords(pool, this.schema);
    return { store: postgresStore({ pool, schema: this.schema }), records };
  }

  /** Closes breakers, the Redis connection and the PostgreSQL pool (after the keeper closed). */
  async close(): Promise<void> {
    await this.release([...this.breakers] as unknown as EndpointBreaker[]);
    this.subscriber?.connection.disconnect();
    this.redis?.disconnect();
    await this.pool?.end().catch(() => {});
  }
}
