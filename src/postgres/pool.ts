/**
 * A resilient PostgreSQL pool around pg's `Pool`: connection retry with backoff at startup, a
 * circuit breaker on connection errors (so a dead server fails calls fast instead of queueing
 * them), a statement timeout, and the pool's figures (total, idle, waiting clients, acquire time)
 * as a Component snapshot, events and a health check with thresholds.
 * @module
 */

import { backoff } from '../core/backoff.js';
import { type CircuitBreakerPolicy, circuitBreaker } from '../core/breaker/circuit-breaker.js';
import type { Clock } from '../core/clock.js';
import { systemClock } from '../core/clock.js';
import type { ComponentDescriptor, HistogramSnapshot, Snapshot } from '../core/component.js';
import { BrokenCircuitError, ConfigError } from '../core/errors.js';
import { type Disposer, type EventBase, type Listener, PolicyEmitter } from '../core/events.js';
import { handle } from '../core/handle.js';
import { joinRegistry, type Registry } from '../core/registry.js';
import { retry } from '../core/retry.js';
import { s } from '../core/schema.js';
import type { CheckOptions, HealthCheck } from '../health/check.js';
import { customCheck } from '../health/check.js';
import { isConnectionError, PoolUnavailableError } from './errors.js';
import type { PoolClientLike, PoolLike, QueryResultLike } from './types.js';

/** The pg `Pool` members the resilient pool reads. */
export interface PgPoolInstance extends PoolLike {
  readonly totalCount: number;
  readonly idleCount: number;
  readonly waitingCount: number;
  end(): Promise<void>;
  on(event: 'error', listener: (error: Error) => void): unknown;
}

/** Events of a resilient pool (kind `postgresPool`). */
export type PostgresPoolEvent =
  | (EventBase & {
      readonly kind: 'postgresPool';
      readonly event: 'connectRetry';
      readonly delayMs: number;
      readonly error: unknown;
    })
  | (EventBase & { readonly kind: 'postgresPool'; readonly event: 'ready'; readonly durationMs: number })
  | (EventBase & { readonly kind: 'postgresPool'; readonly event: 'acquireFailed'; readonly error: unknown })
  | (EventBase & { readonly kind: 'postgresPool'; readonly event: 'idleError'; readonly error: unknown });

declare module '../core/events.js' {
  interface PolicyEventMap {
    postgresPool: PostgresPoolEvent;
  }
}

/** Options of `createPool()`. */
export interface ResilientPoolOptions {
  /** Name in snapshots, events and the health check. Default `postgres`. */
  name?: string;
  /** Where to connect (pg is loaded with `import('pg')`). Give this or `pool`. */
  connectionString?: string;
  /** An existing pg `Pool` to wrap instead (its own settings apply; `max` etc. are then refused). */
  pool?: PgPoolInstance;
  /** Most connections. Default 10. */
  max?: number;
  /** Longest wait for a connection, ms. Default 10 000. */
  acquireTimeoutMs?: number;
  /** An idle connection is closed after this, ms. Default 30 000. */
  idleTimeoutMs?: number;
  /** `statement_timeout` of every connection, ms (0 = none). Default 0. */
  statementTimeoutMs?: number;
  /** Startup: attempts to reach the server (`SELECT 1`) with exponential backoff. Default 10 attempts, 100 ms to 5 s. */
  startup?: { maxAttempts?: number; initialDelayMs?: number; maxDelayMs?: number };
  /** The breaker on connection errors: opens after `failures` in a row, probes after `halfOpenAfterMs`. Default 5 / 5 000; `false` for none. */
  breaker?: false | { failures?: number; halfOpenAfterMs?: number };
  /** Where the pool registers. */
  registry?: Registry;
  clock?: Clock;
}

/** Options of `pool.healthCheck()`: thresholds on waiting clients and acquire time, plus `SELECT 1`. */
export interface PoolCheckOptions extends CheckOptions {
  /** Warn when more clients wait for a connection. Default 5. */
  warnWaiting?: number;
  /** Fail when more clients wait. Default 50. */
  failWaiting?: number;
  /** Warn when acquiring the check's connection took longer, ms. Default 100. */
  warnAcquireMs?: number;
}

const optionsSchema = s.object({
  name: s.optional(s.string(), 'postgres'),
  connectionString: s.optional(s.string()),
  pool: s.optional(
    s.custom('a pg Pool', (v, p) =>
      typeof v === 'object' && v !== null && typeof (v as PgPoolInstance).connect === 'function'
        ? (v as PgPoolInstance)
        : s.fail(p, 'a pg Pool', v),
    ),
  ),
  max: s.optional(s.int({ min: 1 })),
  acquireTimeoutMs: s.optional(s.duration({ positive: true }), 10_000),
  idleTimeoutMs: s.optional(s.duration(), 30_000),
  statementTimeoutMs: s.optional(s.int({ min: 0 }), 0),
  startup: s.optional(
    s.object({
      maxAttempts: s.optional(s.int({ min: 1 }), 10),
      initialDelayMs: s.optional(s.duration(), 100),
      maxDelayMs: s.optional(s.duration(), 5_000),
    }),
    { maxAttempts: 10, initialDelayMs: 100, maxDelayMs: 5_000 },
  ),
  breaker: s.optional(
    s.union([
      s.oneOf([false] as const),
      s.object({
        failures: s.optional(s.int({ min: 1 }), 5),
        halfOpenAfterMs: s.optional(s.duration({ positive: true }), 5_000),
      }),
    ]),
    { failures: 5, halfOpenAfterMs: 5_000 },
  ),
  registry: s.optional(s.unknown()),
  clock: s.optional(s.unknown()),
});

/** Connections that already carry the no-crash 'error' listener. */
const guarded = new WeakSet<object>();

const BOUNDS = [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5] as const;

// Deliberate repetition: a component descriptor is data (kind, help, category, states, gauges,
// counters); every component writes its own, alike in shape only.
const DESCRIPTOR: ComponentDescriptor = {
  kind: 'postgresPool',
  help: 'A PostgreSQL connection pool with startup retry and a breaker on connection errors',
  category: 'database',
  states: ['ready', 'starting', 'broken', 'closed'],
  gauges: {
    open: 'connections open',
    idle: 'connections open and idle',
    waiting: 'clients waiting for a connection',
    max: 'most connections',
    lastAcquireMs: 'time the last acquire took, ms',
  },
  counters: {
    acquires: 'connections handed out',
    acquireFailures: 'acquires that failed (connection error or timeout)',
    rejections: 'acquires refused at once by the open breaker',
    connectRetries: 'startup connection retries',
    idleErrors: 'errors of idle connections (e.g. the server closed them)',
  },
  histograms: { acquireSeconds: 'time to acquire a connection' },
};

/**
 * A pool with startup retry, a breaker and figures. Make one with `createPool()`.
 */
export class ResilientPool implements PoolLike {
  readonly kind = 'postgresPool';
  readonly descriptor = DESCRIPTOR;
  readonly name: string;
  /** The wrapped pg Pool. */
  readonly pool: PgPoolInstance;
  private readonly emitter = new PolicyEmitter<PostgresPoolEvent>();
  private readonly breaker: CircuitBreakerPolicy | null;
  private readonly clock: Clock;
  private readonly max: number;
  private state: 'ready' | 'starting' | 'closed' = 'starting';
  private readonly counts = {
    acquires: 0,
    acquireFailures: 0,
    rejections: 0,
    connectRetries: 0,
    idleErrors: 0,
  };
  private readonly buckets = new Array<number>(BOUNDS.length + 1).fill(0);
  private sum = 0;
  private lastAcquireMs = 0;

  /** @internal use `createPool()` */
  constructor(
    pool: PgPoolInstance,
    name: string,
    max: number,
    breaker: CircuitBreakerPolicy | null,
    clock: Clock,
  ) {
    this.pool = pool;
    this.name = name;
    this.max = max;
    this.breaker = breaker;
    this.clock = clock;
    pool.on('error', (error) => {
      this.counts.idleErrors++;
      if (this.emitter.wants('idleError')) this.emitter.emit({ ...this.base(), event: 'idleError', error });
    });
  }

  private base(): EventBase & { kind: 'postgresPool' } {
    return { kind: 'postgresPool', name: this.name, priority: 'normal', operation: undefined, attempt: 0 };
  }

  /** @internal Startup: `SELECT 1` with retry. */
  async _start(startup: { maxAttempts: number; initialDelayMs: number; maxDelayMs: number }): Promise<void> {
    const began = this.clock.now();
    const policy = retry({
      name: `${this.name}.startup`,
      maxAttempts: startup.maxAttempts,
      backoff: backoff.exponential({
        initialMs: startup.initialDelayMs,
        maxMs: startup.maxDelayMs,
        jitter: 'full',
      }),
      handle: handle.errors(isConnectionError),
      clock: this.clock,
    });
    policy.onRetry((e) => {
      this.counts.connectRetries++;
      if (this.emitter.wants('connectRetry'))
        this.emitter.emit({ ...this.base(), event: 'connectRetry', delayMs: e.delayMs, error: e.error });
    });
    try {
      await policy.execute(async () => {
        const client = await this.pool.connect();
        try {
          await client.query('SELECT 1');
        } finally {
          client.release();
        }
      });
    } catch (error) {
      await this.pool.end().catch(() => {});
      this.state = 'closed';
      throw new PoolUnavailableError(
        this.name,
        `could not connect after ${startup.maxAttempts} attempts`,
        error,
      );
    }
    this.state = 'ready';
    if (this.emitter.wants('ready'))
      this.emitter.emit({ ...this.base(), event: 'ready', durationMs: this.clock.now() - began });
  }

  /** Checks a connection out (through the breaker). Release it with `client.release()`. */
  async connect(): Promise<PoolClientLike> {
    const began = this.clock.now();
    try {
      const client =
        this.breaker === null
          ? await this.pool.connect()
          : await this.breaker.execute(() => this.pool.connect());
      this.observe(this.clock.now() - began);
      this.counts.acquires++;
      // A checked-out connection that breaks emits 'error' on the client; the running query
      // reports it, so the event must not crash the process.
      if (!guarded.has(client)) {
        guarded.add(client);
        (client as { on?: (e: 'error', l: () => void) => void }).on?.('error', () => {});
      }
      return client;
    } catch (error) {
      if (error instanceof BrokenCircuitError) {
        this.counts.rejections++;
        throw new PoolUnavailableError(
          this.name,
          'the breaker is open after repeated connection errors',
          error,
        );
      }
      this.counts.acquireFailures++;
      if (this.emitter.wants('acquireFailed'))
        this.emitter.emit({ ...this.base(), event: 'acquireFailed', error });
      throw error;
    }
  }

  /** Runs one statement on a pooled connection. */
  // biome-ignore lint/suspicious/noExplicitAny: rows are whatever the caller's query returns
  async query<R = any>(text: string, values?: readonly unknown[]): Promise<QueryResultLike<R>> {
    const client = await this.connect();
    let broken: Error | undefined;
    try {
      return values === undefined ? await client.query<R>(text) : await client.query<R>(text, values);
    } catch (error) {
      if (isConnectionError(error)) broken = error as Error;
      throw error;
    } finally {
      client.release(broken);
    }
  }

  private observe(ms: number): void {
    this.lastAcquireMs = ms;
    const sec = ms / 1000;
    this.sum += sec;
    let i = 0;
    while (i < BOUNDS.length && sec > BOUNDS[i]!) i++;
    this.buckets[i]!++;
  }

  /** The pool's state and figures (no I/O). */
  snapshot(): Snapshot {
    const histogram: HistogramSnapshot = {
      bounds: BOUNDS,
      counts: [...this.buckets],
      sum: this.sum,
      count: this.counts.acquires,
    };
    const open = this.breaker !== null && this.breaker.state !== 'closed';
    return {
      kind: this.kind,
      name: this.name,
      state: this.state === 'ready' && open ? 'broken' : this.state,
      gauges: {
        open: this.pool.totalCount,
        idle: this.pool.idleCount,
        waiting: this.pool.waitingCount,
        max: this.max,
        lastAcquireMs: this.lastAcquireMs,
      },
      counters: { ...this.counts },
      histograms: { acquireSeconds: histogram },
      details: { breaker: this.breaker?.state ?? 'none' },
    };
  }

  /** Subscribes to the pool's events. */
  onEvent(listener: Listener<PostgresPoolEvent>): Disposer {
    return this.emitter.on(listener);
  }

  /**
   * A health check: `SELECT 1` on a pooled connection, `warn` when more than `warnWaiting`
   * clients wait or the acquire took longer than `warnAcquireMs`, `fail` when more than
   * `failWaiting` wait. observedValue is the number of waiting clients.
   */
  healthCheck(options: PoolCheckOptions = {}): HealthCheck {
    const { warnWaiting = 5, failWaiting = 50, warnAcquireMs = 100, ...common } = options;
    s.object({
      warnWaiting: s.int({ min: 0 }),
      failWaiting: s.int({ min: 0 }),
      warnAcquireMs: s.duration(),
    }).parse({ warnWaiting, failWaiting, warnAcquireMs }, 'healthCheck');
    return customCheck({
      name: this.name,
      componentType: 'datastore',
      measurement: 'waiting',
      ...common,
      run: async () => {
        const began = this.clock.now();
        await this.query('SELECT 1');
        const acquired = this.clock.now() - began;
        const waiting = this.pool.waitingCount;
        const status =
          waiting > failWaiting
            ? 'fail'
            : waiting > warnWaiting || acquired > warnAcquireMs
              ? 'warn'
              : 'pass';
        return {
          status,
          observedValue: waiting,
          observedUnit: 'clients',
          output: `total ${this.pool.totalCount}/${this.max}, idle ${this.pool.idleCount}, waiting ${waiting}, SELECT 1 in ${Math.round(acquired)} ms`,
        };
      },
    });
  }

  /** Closes every connection. */
  async end(): Promise<void> {
    if (this.state === 'closed') return;
    this.state = 'closed';
    await this.pool.end();
  }
}

type PgModule = { Pool: new (config: Record<string, unknown>) => PgPoolInstance };

/** Loads `pg` (an optional peer). @internal */
export async function loadPg(): Promise<PgModule> {
  try {
    const m = (await import('pg')) as unknown as { default?: PgModule } & PgModule;
    return m.default ?? m;
  } catch (error) {
    throw Object.assign(
      new ConfigError(
        'pg',
        'the installed "pg" package',
        undefined,
        'bulwark/postgres needs the "pg" package to connect by connection string: npm install pg',
      ),
      { cause: error },
    );
  }
}

/**
 * Makes a resilient pool and waits until PostgreSQL answers `SELECT 1` (retrying with backoff:
 * a service that starts before its database waits for it instead of crashing). Throws
 * `PoolUnavailableError` when the server stays unreachable.
 *
 * @example
 * ```ts nocheck
 * import { createRegistry } from 'bulwark';
 * import { createPool, withTransaction } from 'bulwark/postgres';
 * const registry = createRegistry();
 * const pool = await createPool({ connectionString: process.env.DATABASE_URL, max: 20, statementTimeoutMs: 10_000, registry });
 * await withTransaction(pool, (tx) => tx.query('UPDATE accounts SET balance = balance - 1 WHERE id = $1', [7]));
 * console.log(pool.snapshot().gauges); // { total, idle, waiting, max, lastAcquireMs }
 * await pool.end();
 * ```
 */
export async function createPool(options: ResilientPoolOptions): Promise<ResilientPool> {
  const o = optionsSchema.parse(options, 'createPool');
  if ((o.connectionString === undefined) === (o.pool === undefined)) {
    throw new ConfigError(
      'createPool.connectionString',
      'given, or `pool` given (exactly one of them)',
      o.connectionString,
    );
  }
  const clock = (o.clock as Clock | undefined) ?? systemClock;
  let inner: PgPoolInstance;
  let max = o.max ?? 10;
  if (o.pool !== undefined) {
    inner = o.pool;
    max = (inner as { options?: { max?: number } }).options?.max ?? max;
  } else {
    const { Pool } = await loadPg();
    inner = new Pool({
      connectionString: o.connectionString,
      max,
      connectionTimeoutMillis: o.acquireTimeoutMs,
      idleTimeoutMillis: o.idleTimeoutMs,
      ...(o.statementTimeoutMs > 0 ? { statement_timeout: o.statementTimeoutMs } : {}),
    });
  }
  const breaker =
    o.breaker === false
      ? null
      : circuitBreaker({
          name: `${o.name}.connections`,
          breaker: { kind: 'consecutive', threshold: o.breaker.failures },
          halfOpenAfterMs: o.breaker.halfOpenAfterMs,
          handle: handle.errors(isConnectionError),
          clock,
        });
  const pool = new ResilientPool(inner, o.name, max, breaker, clock);
  await pool._start(o.startup);
  return joinRegistry(o.registry as Registry | undefined, pool);
}
