/**
 * Upstream groups and their endpoints, as Components (`gatewayUpstream`, `gatewayEndpoint`):
 * an undici keep-alive pool, a breaker, outlier-detection state, latency and counters per
 * endpoint; a strategy, outlier detector and retry budget per group (active health checks:
 * src/gateway/health-checks.ts).
 * @module
 */

import { Pool } from 'undici';
import type { RandomSource } from '../core/clock.js';
import type { Component, ComponentDescriptor, ComponentEvent, Snapshot } from '../core/component.js';
import { type Disposer, Emitter, type Listener } from '../core/events.js';
import type { RetryBudget } from '../core/retry-budget.js';
import { makeStrategy, PeakEwma, type Pickable, type Strategy } from './balancer.js';
import { type EndpointConfig, outlierDefaults, type UpstreamConfig } from './config.js';
import { H1Pool } from './h1-pool.js';
import { type EjectionChange, type Outcome, OutlierDetector, OutlierState } from './outlier.js';
import {
  type EndpointBreaker,
  type EndpointBreakerSettings,
  endpointBreaker,
  upstreamRetryBudget,
} from './policies.js';

const endpointDescriptor: ComponentDescriptor = {
  kind: 'gatewayEndpoint',
  help: 'One endpoint of a gateway upstream group',
  category: 'gateway',
  states: ['healthy', 'ejected', 'breakerOpen', 'unhealthy', 'cooling'],
  gauges: {
    inFlight: 'requests in flight to the endpoint',
    latencyMs: 'peak-EWMA latency to response headers',
  },
  counters: {
    requests: 'attempts sent to the endpoint',
    successes: 'attempts answered below 500',
    failures: 'attempts answered 5xx',
    gatewayErrors: 'connect errors, resets, timeouts and 502-504',
    ejections: 'times outlier detection ejected the endpoint',
  },
};

const upstreamDescriptor: ComponentDescriptor = {
  kind: 'gatewayUpstream',
  help: 'A gateway upstream group (endpoints, strategy, outlier detection)',
  category: 'gateway',
  states: ['healthy', 'degraded', 'panic'],
  gauges: {
    endpoints: 'endpoints in the group',
    available: 'endpoints taking traffic now',
    ejected: 'endpoints ejected',
  },
  counters: { panics: 'picks made in panic mode', retriesRefused: 'retries refused by the retry budget' },
};

const always = (): boolean => true;

/** One endpoint. */
export class Endpoint implements Component, Pickable {
  readonly kind = 'gatewayEndpoint';
  readonly descriptor = endpointDescriptor;
  name: string;
  readonly url: string;
  readonly weight: number;
  readonly priority: number;
  readonly region: string | undefined;
  /** The undici pool (health checks, store-and-forward, `https://` endpoints). */
  readonly pool: Pool;
  /** The lean HTTP/1.1 transport of proxied requests to an `http://` endpoint (null for others). */
  readonly h1: H1Pool | null;
  // Deliberate repetition: per-endpoint counters declared one per line, the shape the breaker
  // descriptor and OutlierState also have; each counts something else.
  readonly outlier = new OutlierState();
  readonly ewma = new PeakEwma(10_000);
  currentWeight = 0;
  inFlight = 0;
  requests = 0;
  successes = 0;
  failures = 0;
  gatewayErrors = 0;
  /** Active health: false after `unhealthyThreshold` failed checks. */
  healthy = true;
  healthStreak = 0;
  /** Not picked before this time (a Retry-After it sent), ms. */
  coolUntil = 0;
  readonly events = new Emitter<ComponentEvent>();

  constructor(
    readonly upstream: string,
    config: EndpointConfig,
    settings: UpstreamConfig,
    readonly breaker: EndpointBreaker | null,
  ) {
    this.url = config.url.replace(/\/$/, '');
    this.name = `${upstream}/${this.url.replace(/^https?:\/\//, '')}`;
    this.weight = config.weight;
    this.priority = config.priority;
    this.region = config.region;
    const keepAlive = settings.keepAliveTimeoutMs;
    this.pool = new Pool(this.url, {
      connections: settings.connections,
      pipelining: 1,
      keepAliveTimeout: keepAlive > 0 ? keepAlive : 1,
      keepAliveMaxTimeout: Math.max(keepAlive, 1),
      connect: { timeout: settings.connectTimeoutMs },
    });
    const u = new URL(this.url);
    this.h1 =
      u.protocol === 'http:'
        ? new H1Pool({
            host: u.hostname.replace(/^\[|\]$/g, ''),
            port: u.port === '' ? 80 : Number(u.port),
            connections: settings.connections,
            keepAliveTimeoutMs: keepAlive,
            connectTimeoutMs: settings.connectTimeoutMs,
          })
        : null;
    this.breaker?.onStateChange((e) =>
      this.emit({
        kind: this.kind,
        name: this.name,
        event: 'breakerStateChange',
        from: e.from,
        to: e.to,
      } as ComponentEvent),
    );
  }

  get latencyMs(): number {
    return this.ewma.value;
  }

  /** Why the endpoint takes no traffic now, or null when it does. */
  unavailable(now: number): string | null {
    if (this.outlier.ejected(now)) return 'ejected';
    const b = this.breaker?.state;
    if (b === 'forced-open' || b === 'isolated') return 'breakerOpen';
    // An open breaker whose wait is over takes a probe (the breaker half-opens on the call).
    if (b === 'open' && this.breaker!.stats.retryAfterMs > 0) return 'breakerOpen';
    if (!this.healthy) return 'unhealthy';
    if (this.coolUntil > now) return 'cooling';
    return null;
  }

  emit(e: ComponentEvent): void {
    if (this.events.size !== 0) this.events.emit(e);
  }

  onEvent(listener: Listener<ComponentEvent>): Disposer {
    return this.events.on(listener);
  }

  snapshot(now = performance.now()): Snapshot {
    const o = this.outlier;
    return {
      kind: this.kind,
      name: this.name,
      state: this.unavailable(now) ?? 'healthy',
      gauges: { inFlight: this.inFlight, latencyMs: Math.round(this.ewma.value * 100) / 100 },
      counters: {
        requests: this.requests,
        successes: this.successes,
        failures: this.failures,
        gatewayErrors: this.gatewayErrors,
        ejections: o.ejections,
      },
      details: {
        upstream: this.upstream,
        url: this.url,
        weight: this.weight,
        priority: this.priority,
        region: this.region ?? null,
        breaker: this.breaker?.state ?? 'disabled',
        consecutive5xx: o.consecutive5xx,
        consecutiveGatewayErrors: o.consecutiveGatewayErrors,
        ejection: o.ejected(now)
          ? { ...o.lastEjection, returnsInMs: Math.max(0, Math.round(o.ejectedUntil - now)) }
          : null,
        lastEjection: o.lastEjection,
        coolingForMs: this.coolUntil > now ? Math.round(this.coolUntil - now) : 0,
      },
    };
  }
}

/** An upstream group. */
export class Upstream implements Component {
  readonly kind = 'gatewayUpstream';
  readonly descriptor = upstreamDescriptor;
  readonly endpoints: Endpoint[];
  readonly budget: RetryBudget;
  readonly detector: OutlierDetector<Endpoint>;
  private readonly strategy: Strategy<Endpoint>;
  private readonly events = new Emitter<ComponentEvent>();
  private readonly timers: NodeJS.Timeout[] = [];
  panics = 0;
  retriesRefused = 0;
  private lastPanic = false;

  constructor(
    readonly name: string,
    readonly config: UpstreamConfig,
    random: RandomSource,
    budgetRatio: number,
    /** Makes endpoint breakers (the fleet's: shared through Redis when configured). */
    makeBreaker: (name: string, settings: EndpointBreakerSettings) => EndpointBreaker = endpointBreaker,
  ) {
    const b = config.breaker ?? { enabled: true, threshold: 5, halfOpenAfterMs: 10_000 };
    this.endpoints = config.endpoints.map(
      (e, i) => new Endpoint(name, e, config, b.enabled ? makeBreaker(`${name}/${e.url}#${i}`, b) : null),
    );
    const seen = new Set<string>();
    this.endpoints.forEach((e, i) => {
      if (seen.has(e.name)) e.name = `${e.name}#${i}`;
      seen.add(e.name);
    });
    this.strategy = makeStrategy<Endpoint>(config.strategy, random, config.overprovisioningFactor);
    this.budget = upstreamRetryBudget(budgetRatio > 0 ? budgetRatio : 1);
    const od = { ...outlierDefaults, ...config.outlierDetection };
    this.detector = new OutlierDetector<Endpoint>(od, this.endpoints, (c) => this.onEjection(c));
    const sweep = setInterval(() => this.detector.sweep(performance.now()), Math.min(od.intervalMs, 1000));
    sweep.unref();
    this.timers.push(sweep);
  }

  private onEjection(c: EjectionChange<Endpoint>): void {
    const e = c.endpoint;
    e.emit({
      kind: e.kind,
      name: e.name,
      event: c.type,
      reason: c.reason,
      durationMs: c.durationMs,
      counters: e.outlier.lastEjection,
    } as ComponentEvent);
  }

  /** Picks an endpoint for an attempt, avoiding `tried` when another is available. */
  pick(tried: readonly Endpoint[] | null, now: number): Endpoint {
    const all = this.endpoints;
    // The common case, without allocating: every endpoint takes traffic, none tried yet.
    if (tried === null || tried.length === 0) {
      let n = 0;
      for (const e of all) if (e.unavailable(now) === null) n++;
      if (n === all.length) {
        if (this.lastPanic) {
          this.lastPanic = false;
          this.emit({ kind: this.kind, name: this.name, event: 'panicEnded' });
        }
        return all.length === 1 ? all[0]! : this.strategy.pick(all, all, always);
      }
    }
    let available: Endpoint[] = [];
    for (const e of all) if (e.unavailable(now) === null) available.push(e);
    const panic = available.length / all.length < this.config.panicThresholdRatio || available.length === 0;
    if (panic) {
      this.panics++;
      if (!this.lastPanic) this.emit({ kind: this.kind, name: this.name, event: 'panic' });
      available = [...all];
    } else if (this.lastPanic) {
      this.emit({ kind: this.kind, name: this.name, event: 'panicEnded' });
    }
    this.lastPanic = panic;
    if (tried !== null && available.length > 1) {
      const fresh = available.filter((e) => !tried.includes(e));
      if (fresh.length > 0) available = fresh;
    }
    return this.strategy.pick(available, all, (e) => e.unavailable(now) === null);
  }

  /** Counts an attempt's outcome (latency in ms for successes). */
  record(e: Endpoint, outcome: Outcome, latencyMs: number, now: number): void {
    if (outcome === 'success') {
      e.successes++;
      e.ewma.observe(latencyMs, now);
    } else {
      e.failures++;
      if (outcome === 'gatewayError') e.gatewayErrors++;
      e.ewma.observe(Math.max(latencyMs, e.ewma.value * 2), now);
    }
    this.detector.record(e, outcome, now);
  }

  private emit(e: ComponentEvent): void {
    if (this.events.size !== 0) this.events.emit(e);
  }

  onEvent(listener: Listener<ComponentEvent>): Disposer {
    return this.events.on(listener);
  }

  snapshot(): Snapshot {
    const now = performance.now();
    const available = this.endpoints.filter((e) => e.unavailable(now) === null).length;
    const ejected = this.endpoints.filter((e) => e.outlier.ejected(now)).length;
    return {
      kind: this.kind,
      name: this.name,
      state: this.lastPanic ? 'panic' : available < this.endpoints.length ? 'degraded' : 'healthy',
      gauges: { endpoints: this.endpoints.length, available, ejected },
      counters: { panics: this.panics, retriesRefused: this.retriesRefused },
      details: { strategy: this.config.strategy, endpoints: this.endpoints.map((e) => e.name) },
    };
  }

  /** Stops timers and closes the pools (in-flight requests finish first). */
  async close(): Promise<void> {
    for (const t of this.timers) clearInterval(t);
    await Promise.allSettled(this.endpoints.flatMap((e) => [e.pool.close(), e.h1?.close()]));
  }
}
