/**
 * Ready-made checks: HTTP, TCP, PostgreSQL, Redis, a circuit breaker's state, a durable queue's
 * backlog, the event loop's delay. Drivers are never imported up front: pass your own client
 * (a pg Pool, an ioredis client) or a connection string (pg is then loaded with `import()`).
 */

import { connect } from 'node:net';
import { type IntervalHistogram, monitorEventLoopDelay } from 'node:perf_hooks';
import { ConfigError } from '../core/errors.js';
import { s } from '../core/schema.js';
import { type CheckOptions, type CheckOutcome, type HealthCheck, makeCheck } from './check.js';
import { duck, fn, parse } from './options.js';

const loose = { strict: false } as const;

// ---------------------------------------------------------------------------------------------
// HTTP

/** Options of `httpCheck()`. */
export interface HttpCheckOptions extends CheckOptions {
  /** The URL to request. */
  url: string | URL;
  /** Default `GET`. */
  method?: string;
  headers?: Record<string, string>;
  /** Which statuses pass. Default 200–399. */
  expectStatus?: readonly number[] | ((status: number) => boolean);
}

/**
 * Requests a URL (with `fetch`, redirects not followed) and passes on an expected status.
 * Default name `http` — it holds no host, since names are shown even when details are hidden;
 * give each check its own `name` when there are several.
 *
 * @example
 * ```ts
 * import { httpCheck } from 'bulwark/health';
 * const api = httpCheck({ name: 'payments', url: 'http://127.0.0.1:8080/healthz', timeoutMs: 1000 });
 * console.log(api.component, api.measurement); // payments responseTime
 * ```
 */
export function httpCheck(options: HttpCheckOptions): HealthCheck {
  const o = parse(
    'httpCheck',
    s.object(
      {
        url: s.custom<string | URL>('an http(s) URL (a string or a URL)', (v, path) =>
          v instanceof URL || (typeof v === 'string' && /^https?:\/\//i.test(v) && URL.canParse(v))
            ? v
            : s.fail(path, 'an http(s) URL (a string or a URL)', v),
        ),
        method: s.optional(s.string()),
        headers: s.optional(s.record(s.string({ minLength: 0 }))),
        expectStatus: s.optional(
          s.union([s.array(s.int({ min: 100, max: 599 })), fn<(status: number) => boolean>()]),
        ),
      },
      loose,
    ),
    options,
  );
  const url = new URL(String(o.url));
  const expect = o.expectStatus;
  const ok =
    expect === undefined
      ? (s: number) => s >= 200 && s < 400
      : typeof expect === 'function'
        ? expect
        : (s: number) => expect.includes(s);
  const { url: _u, method, headers, expectStatus: _e, ...common } = options;
  return makeCheck(
    'httpCheck',
    {
      // Host-free: the name is the componentId, shown even with details hidden (and an IPv6 host's
      // brackets and colons would not be a valid name).
      name: 'http',
      ...common,
      run: async (signal) => {
        const res = await fetch(url, {
          method: method ?? 'GET',
          ...(headers === undefined ? {} : { headers }),
          redirect: 'manual',
          signal,
        });
        // Free the connection: the body is not needed.
        await res.body?.cancel().catch(() => {});
        return ok(res.status)
          ? { status: 'pass' }
          : { status: 'fail', output: `HTTP ${res.status} from ${url.origin}${url.pathname}` };
      },
    },
    { componentType: 'component', dependency: true },
  );
}

// ---------------------------------------------------------------------------------------------
// TCP

/** Options of `tcpCheck()`. */
export interface TcpCheckOptions extends CheckOptions {
  /** Default `127.0.0.1`. */
  host?: string;
  port: number;
}

/**
 * Passes when a TCP connection to `host:port` opens (Kubernetes' tcpSocket probe), then closes
 * it. Default name `tcp` (host-free, like `httpCheck`'s; give each its own `name` when there are several).
 *
 * @example
 * ```ts
 * import { tcpCheck } from 'bulwark/health';
 * const smtp = tcpCheck({ name: 'smtp', host: '127.0.0.1', port: 25, critical: false });
 * console.log(smtp.critical); // false
 * ```
 */
export function tcpCheck(options: TcpCheckOptions): HealthCheck {
  const o = parse(
    'tcpCheck',
    s.object({ host: s.optional(s.string()), port: s.int({ min: 1, max: 65_535 }) }, loose),
    options,
  );
  const host = o.host ?? '127.0.0.1';
  const { host: _h, port: _p, ...common } = options;
  return makeCheck(
    'tcpCheck',
    {
      name: 'tcp', // host-free, like httpCheck's
      ...common,
      run: (signal) =>
        new Promise<CheckOutcome>((resolve, reject) => {
          const socket = connect({ host, port: o.port });
          const onAbort = () => {
            socket.destroy();
            reject(signal.reason);
          };
          signal.addEventListener('abort', onAbort, { once: true });
          socket.once('connect', () => {
            signal.removeEventListener('abort', onAbort);
            socket.destroy();
            resolve({ status: 'pass' });
          });
          socket.once('error', (error) => {
            signal.removeEventListener('abort', onAbort);
            socket.destroy();
            reject(error);
          });
        }),
    },
    { componentType: 'component', dependency: true },
  );
}

// ---------------------------------------------------------------------------------------------
// PostgreSQL

/** A pg `Pool` or `Client` (or anything with `query(sql)`). */
export interface PgQueryable {
  query(sql: string): Promise<unknown>;
}

/** Options of `postgresCheck()`. */
export interface PostgresCheckOptions extends CheckOptions {
  /**
   * A pg Pool/Client (preferred: it reuses connections), or a connection string: each run then
   * opens a connection with `pg` (loaded by `import('pg')`), queries, and closes it.
   */
  client: PgQueryable | string;
  /** Default `SELECT 1`. */
  query?: string;
}

/** The part of pg's Client that a connection-string check uses. */
interface PgClientLike {
  connect(): Promise<unknown>;
  query(sql: string): Promise<unknown>;
  end(): Promise<void>;
  on(event: 'error', listener: (error: Error) => void): unknown;
  connection?: { stream?: { destroy(): void } };
}
type PgModule = {
  Client: new (config: { connectionString: string; connectionTimeoutMillis?: number }) => PgClientLike;
};

/**
 * Runs `SELECT 1` on PostgreSQL. Default name `postgres`, componentType `datastore`.
 *
 * @example
 * ```ts
 * import { postgresCheck } from 'bulwark/health';
 * const db = postgresCheck({ client: 'postgres://postgres@127.0.0.1:5432/test', timeoutMs: 1000 });
 * console.log(db.componentType); // datastore
 * ```
 */
export function postgresCheck(options: PostgresCheckOptions): HealthCheck {
  const o = parse(
    'postgresCheck',
    s.object(
      {
        client: s.union(
          [s.string(), duck<PgQueryable>('a pg Pool/Client (with query(sql))', ['query'])],
          'a pg Pool/Client (with query(sql)) or a connection string',
        ),
        query: s.optional(s.string()),
      },
      loose,
    ),
    options,
  );
  const sql = o.query ?? 'SELECT 1';
  const { client: _c, query: _q, ...common } = options;
  const timeoutMs = common.timeoutMs ?? 2_000;
  let pg: Promise<PgModule> | undefined;
  const run =
    typeof o.client === 'string'
      ? async (signal: AbortSignal): Promise<CheckOutcome> => {
          pg ??= import('pg').then(
            (m) => ((m as { default?: PgModule }).default ?? m) as PgModule,
            (error: unknown) => {
              pg = undefined;
              throw Object.assign(
                new ConfigError(
                  'postgresCheck.client',
                  '',
                  'a connection string',
                  'postgresCheck({ client: <connection string> }) needs the "pg" package: npm install pg (or pass your own pg Pool)',
                ),
                { cause: error },
              );
            },
          );
          const { Client } = await pg;
          // The import may outlast the timeout (first load): do not open a connection nobody awaits.
          signal.throwIfAborted();
          const client = new Client({
            connectionString: o.client as string,
            connectionTimeoutMillis: timeoutMs,
          });
          client.on('error', () => {}); // reported by the failing query
          const onAbort = () => {
            client.connection?.stream?.destroy();
            client.end().catch(() => {});
          };
          signal.addEventListener('abort', onAbort, { once: true });
          try {
            await client.connect();
            await client.query(sql);
            return { status: 'pass' };
          } finally {
            signal.removeEventListener('abort', onAbort);
            client.end().catch(() => {});
          }
        }
      : async (): Promise<CheckOutcome> => {
          await (o.client as PgQueryable).query(sql);
          return { status: 'pass' };
        };
  return makeCheck(
    'postgresCheck',
    { name: 'postgres', ...common, run },
    { componentType: 'datastore', dependency: true },
  );
}

// ---------------------------------------------------------------------------------------------
// Redis

/** An ioredis (or node-redis) client: anything with `ping()`. */
export interface RedisPingable {
  ping(): Promise<string>;
}

/** Options of `redisCheck()`. */
export interface RedisCheckOptions extends CheckOptions {
  client: RedisPingable;
}

/**
 * Sends PING to Redis; passes on `PONG`. Default name `redis`, componentType `datastore`.
 * (With ioredis' offline queue a PING waits while disconnected: the check's timeout reports it.)
 *
 * @example
 * ```ts
 * import { redisCheck } from 'bulwark/health';
 * const fakeRedis = { ping: async () => 'PONG' };
 * const cache = redisCheck({ client: fakeRedis, critical: false });
 * console.log(cache.name); // redis
 * ```
 */
export function redisCheck(options: RedisCheckOptions): HealthCheck {
  const o = parse(
    'redisCheck',
    s.object({ client: duck<RedisPingable>('an ioredis-like client with ping()', ['ping']) }, loose),
    options,
  );
  const { client: _c, ...common } = options;
  return makeCheck(
    'redisCheck',
    {
      name: 'redis',
      ...common,
      run: async () => {
        const reply = await o.client.ping();
        return reply === 'PONG'
          ? { status: 'pass' }
          : { status: 'warn', output: `PING answered ${String(reply)}` };
      },
    },
    { componentType: 'datastore', dependency: true },
  );
}

// ---------------------------------------------------------------------------------------------
// Circuit breaker

/** A circuit breaker as `breakerCheck` reads it (the core `circuitBreaker` fits). */
export interface BreakerLike {
  readonly name?: string;
  readonly state: string;
  readonly stats?: { readonly retryAfterMs?: number };
}

/**
 * Reports a circuit breaker's state: closed (or disabled) passes, half-open warns, open, isolated
 * and forced-open fail. observedValue is the state. Default name `breaker-<breaker name>`, not
 * critical (an open breaker is already protecting the service), checked every second.
 *
 * @example
 * ```ts
 * import { circuitBreaker } from 'bulwark';
 * import { breakerCheck } from 'bulwark/health';
 * const breaker = circuitBreaker({ name: 'payments' });
 * const check = breakerCheck(breaker);
 * console.log(check.name, await check.run(new AbortController().signal)); // breaker-payments { status: 'pass', … }
 * ```
 */
export function breakerCheck(breaker: BreakerLike, options: CheckOptions = {}): HealthCheck {
  if (typeof breaker !== 'object' || breaker === null || typeof breaker.state !== 'string') {
    s.fail('breakerCheck.breaker', 'a circuit breaker (an object with a string state)', breaker);
  }
  return makeCheck(
    'breakerCheck',
    {
      name: `breaker-${breaker.name ?? 'circuitBreaker'}`.replace(/[^A-Za-z0-9_.\-/]/g, '_'),
      ...options,
      run: () => {
        const state = breaker.state;
        switch (state) {
          case 'closed':
          case 'disabled':
            return { status: 'pass', observedValue: state };
          case 'half-open':
            return { status: 'warn', observedValue: state, output: 'half-open: probing the dependency' };
          case 'open': {
            const left = breaker.stats?.retryAfterMs;
            return left === 0
              ? { status: 'warn', observedValue: state, output: 'open; the next call will probe' }
              : {
                  status: 'fail',
                  observedValue: state,
                  output: `open${left === undefined ? '' : `: probing in ${Math.ceil(left)} ms`}`,
                };
          }
          default:
            return { status: 'fail', observedValue: state, output: `${state}: calls are refused` };
        }
      },
    },
    {
      componentType: 'component',
      measurement: 'state',
      critical: false,
      intervalMs: 1_000,
      dependency: false,
    },
  );
}

// ---------------------------------------------------------------------------------------------
// Queue

/** A queue as `queueCheck` reads it (bulwark/durable's queues fit). */
export interface QueueStatsSource {
  stats(): Promise<{ pending: number; dead: number; oldestPendingAgeMs: number }>;
}

/** Options of `queueCheck()`. */
export interface QueueCheckOptions extends CheckOptions {
  /** Warn when the oldest pending job is older. Default 60 000 ms. */
  warnAgeMs?: number;
  /** Fail when the oldest pending job is older. Default 300 000 ms. */
  failAgeMs?: number;
  /** What a growing dead-letter count (since the previous run) does: default `warn`. */
  onDeadGrowth?: 'warn' | 'fail' | 'ignore';
}

/**
 * Watches a queue's backlog: the age of its oldest pending job (observedValue, ms) against
 * `warnAgeMs`/`failAgeMs`, and growth of its dead-letter count between runs. Default name
 * `queue`, measurement `backlogAge`.
 *
 * @example
 * ```ts
 * import { queueCheck } from 'bulwark/health';
 * const queue = { stats: async () => ({ pending: 3, dead: 0, oldestPendingAgeMs: 90_000 }) };
 * const check = queueCheck(queue, { name: 'emails' });
 * console.log((await check.run(new AbortController().signal)) as object); // { status: 'warn', … }
 * ```
 */
export function queueCheck(queue: QueueStatsSource, options: QueueCheckOptions = {}): HealthCheck {
  parse(
    'queueCheck',
    s.object({
      queue: duck<QueueStatsSource>('a queue with stats(): Promise<{ pending, dead, oldestPendingAgeMs }>', [
        'stats',
      ]),
      warnAgeMs: s.optional(s.duration()),
      failAgeMs: s.optional(s.duration()),
      onDeadGrowth: s.optional(s.oneOf(['warn', 'fail', 'ignore'] as const)),
    }),
    { queue, warnAgeMs: options.warnAgeMs, failAgeMs: options.failAgeMs, onDeadGrowth: options.onDeadGrowth },
  );
  const { warnAgeMs = 60_000, failAgeMs = 300_000, onDeadGrowth = 'warn', ...common } = options;
  let lastDead: number | undefined;
  return makeCheck(
    'queueCheck',
    {
      name: 'queue',
      ...common,
      run: async () => {
        const s = await queue.stats();
        const grew = lastDead !== undefined && s.dead > lastDead ? s.dead - lastDead : 0;
        lastDead = s.dead;
        const age = s.oldestPendingAgeMs;
        let status: 'pass' | 'warn' | 'fail' = age > failAgeMs ? 'fail' : age > warnAgeMs ? 'warn' : 'pass';
        if (grew > 0 && onDeadGrowth !== 'ignore' && (onDeadGrowth === 'fail' || status === 'pass')) {
          status = onDeadGrowth;
        }
        return {
          status,
          observedValue: age,
          observedUnit: 'ms',
          output: `pending ${s.pending}, oldest ${Math.round(age)} ms, dead ${s.dead}${grew > 0 ? ` (+${grew})` : ''}`,
        };
      },
    },
    { componentType: 'component', measurement: 'backlogAge', dependency: true },
  );
}

// ---------------------------------------------------------------------------------------------
// Event loop

/** Options of `eventLoopCheck()`. */
export interface EventLoopCheckOptions extends CheckOptions {
  /** Warn when the p99 event-loop delay since the previous run exceeds this. Default 200 ms. */
  warnMs?: number;
  /** Fail when it exceeds this. Default 2 000 ms. */
  failMs?: number;
}

/**
 * The event loop's delay (p99 since the previous run, from `perf_hooks.monitorEventLoopDelay`):
 * a local check that counts for liveness by default. Default name `eventLoop`, componentType
 * `system`, measurement `delay`, not critical.
 *
 * @example
 * ```ts
 * import { eventLoopCheck } from 'bulwark/health';
 * const loop = eventLoopCheck({ failMs: 5_000 });
 * console.log(loop.liveness, loop.critical); // true false
 * await loop.close?.();
 * ```
 */
export function eventLoopCheck(options: EventLoopCheckOptions = {}): HealthCheck {
  const { warnMs = 200, failMs = 2_000, ...common } = options;
  parse(
    'eventLoopCheck',
    s.object({ warnMs: s.duration({ positive: true }), failMs: s.duration({ positive: true }) }),
    {
      warnMs,
      failMs,
    },
  );
  let histogram: IntervalHistogram | undefined;
  return makeCheck(
    'eventLoopCheck',
    {
      name: 'eventLoop',
      liveness: true,
      critical: false,
      ...common,
      run: () => {
        if (histogram === undefined) {
          histogram = monitorEventLoopDelay({ resolution: 20 });
          histogram.enable();
        }
        const p99 = histogram.count === 0 ? 0 : histogram.percentile(99) / 1e6;
        histogram.reset();
        return {
          status: p99 > failMs ? 'fail' : p99 > warnMs ? 'warn' : 'pass',
          observedValue: Math.round(p99 * 100) / 100,
          observedUnit: 'ms',
        };
      },
      close: () => {
        histogram?.disable();
      },
    },
    { componentType: 'system', measurement: 'delay', dependency: false },
  );
}
