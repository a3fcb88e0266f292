/**
 * A configured route at run time, as a Component (`gatewayRoute`): its matcher, upstream,
 * resolved retry settings, client limiters, counters and a duration histogram.
 * @module
 */

import type { Component, ComponentDescriptor, ComponentEvent, Snapshot } from '../core/component.js';
import { ConfigError } from '../core/errors.js';
import { type Disposer, Emitter, type Listener } from '../core/events.js';
import { type RetryConfig, type RouteConfig, retryDefaults } from './config.js';
import type { ClientLimiter } from './fleet.js';
import { clientLimiter } from './policies.js';
import type { RouteChaos } from './route-chaos.js';
import type { RoutePolicies } from './route-policies.js';
import { compileRoute, type RouteMatcher } from './router.js';
import type { Upstream } from './upstream.js';

// Deliberate repetition: component descriptors share one literal shape (kind, help, states,
// gauges, counters); what each says differs.
const descriptor: ComponentDescriptor = {
  kind: 'gatewayRoute',
  help: 'A gateway route',
  category: 'gateway',
  states: ['active', 'chaos'],
  gauges: { inFlight: 'requests in flight on the route' },
  counters: {
    requests: 'requests matched',
    responses2xx: 'answers 1xx-3xx',
    responses4xx: 'answers 4xx',
    responses5xx: 'answers 5xx',
    retries: 'extra attempts made',
    timeouts: 'requests that ran out of time',
    rateLimited: 'requests refused by a client limit (429)',
    shed: 'requests shed by priority (503)',
    queued: 'writes kept for later delivery (202)',
    brokenStreams: 'responses cut after their headers were sent',
    criticalBypass: 'critical requests admitted past shedding',
    bulkheadRejections: 'requests refused by the route bulkhead (503)',
    hedges: 'extra (hedged) attempts started',
    hedgeWins: 'requests answered by a hedged attempt',
    cacheHits: 'GETs answered from the response cache (fresh)',
    cacheStale: 'GETs answered stale while the cache revalidates',
    cacheMisses: 'cacheable GETs forwarded',
    coalesced: 'GETs that shared an identical request in flight',
  },
  histograms: { durationSeconds: 'time to the end of the response' },
};

const BOUNDS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

/** A client limit with its limiter (kept across reloads when unchanged). */
export interface ClientLimit {
  readonly name: string;
  readonly key: string;
  /** Requests allowed per window and client, and the window. */
  readonly limit: number;
  readonly windowMs: number;
  readonly limiter: ClientLimiter;
}

type Counter =
  | 'requests'
  | 'responses2xx'
  | 'responses4xx'
  | 'responses5xx'
  | 'retries'
  | 'timeouts'
  | 'rateLimited'
  | 'shed'
  | 'queued'
  | 'brokenStreams'
  | 'criticalBypass'
  | 'bulkheadRejections'
  | 'hedges'
  | 'hedgeWins'
  | 'cacheHits'
  | 'cacheStale'
  | 'cacheMisses'
  | 'coalesced';

/** One route. */
export class Route implements Component {
  readonly kind = 'gatewayRoute';
  readonly descriptor = descriptor;
  readonly name: string;
  readonly matcher: RouteMatcher;
  readonly retry: RetryConfig | null;
  readonly retryMethods: ReadonlySet<string>;
  readonly retryOn: ReadonlySet<number>;
  readonly limits: readonly ClientLimit[];
  readonly requestAdd: readonly (readonly [string, string])[] | null;
  readonly requestRemove: ReadonlySet<string> | null;
  readonly responseAdd: readonly (readonly [string, string])[] | null;
  readonly responseRemove: ReadonlySet<string> | null;
  /** The JSON of the config this route was built from (reload diffing). */
  readonly fingerprint: string;
  inFlight = 0;
  readonly counts: { [K in Counter]: number } = {
    requests: 0,
    responses2xx: 0,
    responses4xx: 0,
    responses5xx: 0,
    retries: 0,
    timeouts: 0,
    rateLimited: 0,
    shed: 0,
    queued: 0,
    brokenStreams: 0,
    criticalBypass: 0,
    bulkheadRejections: 0,
    hedges: 0,
    hedgeWins: 0,
    cacheHits: 0,
    cacheStale: 0,
    cacheMisses: 0,
    coalesced: 0,
  };
  /** The route's chaos (a component of its own), or null without a `chaos` block. */
  chaos: RouteChaos | null = null;
  /** Bulkhead, hedging, cache and coalescing (src/gateway/route-policies.ts), or null when none is set. */
  policies: RoutePolicies | null = null;
  private readonly buckets = new Array<number>(BOUNDS.length + 1).fill(0);
  private sum = 0;
  private observed = 0;
  private readonly events = new Emitter<ComponentEvent>();

  constructor(
    readonly config: RouteConfig,
    index: number,
    public upstream: Upstream,
    /** Makes client limiters (the fleet's: on Redis when configured). */
    makeLimiter: (
      route: string,
      index: number,
      name: string,
      limit: number,
      windowMs: number,
    ) => ClientLimiter = (_r, _i, _n, limit, windowMs) => clientLimiter(limit, windowMs),
  ) {
    this.name = config.name ?? `route-${index}`;
    this.fingerprint = JSON.stringify(config);
    if (config.rewrite !== undefined && /[\s\0]/.test(config.rewrite))
      throw new ConfigError(
        `routes[${index}].rewrite`,
        'a path without spaces, CR, LF or NUL',
        config.rewrite,
      );
    this.matcher = compileRoute(config);
    this.retry =
      config.retry === false
        ? null
        : config.retry === true || config.retry === undefined
          ? retryDefaults
          : config.retry;
    this.retryMethods = new Set(this.retry?.methods ?? []);
    this.retryOn = new Set(this.retry?.on ?? []);
    this.limits = (config.limits ?? []).map((l, i) => {
      const name = l.name ?? `${this.name}-${i}`;
      return {
        name,
        key: l.key,
        limit: l.limit,
        windowMs: l.windowMs,
        limiter: makeLimiter(this.name, i, name, l.limit, l.windowMs),
      };
    });
    const pairs = (r: Record<string, string> | undefined, where: string) => {
      if (r === undefined) return null;
      // Written as they are into request/response heads: a name must be a token, a value free of CR/LF/NUL.
      for (const [k, v] of Object.entries(r)) {
        if (!/^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/.test(k))
          throw new ConfigError(`routes[${index}].${where}`, 'header names that are HTTP tokens', k);
        if (/[\r\n\0]/.test(v))
          throw new ConfigError(`routes[${index}].${where}.${k}`, 'a header value without CR, LF or NUL', v);
      }
      return Object.entries(r).map(([k, v]) => [k.toLowerCase(), v] as const);
    };
    const set = (a: string[] | undefined) =>
      a === undefined ? null : new Set(a.map((x) => x.toLowerCase()));
    this.requestAdd = pairs(config.requestHeaders?.add, 'requestHeaders.add');
    this.requestRemove = set(config.requestHeaders?.remove);
    this.responseAdd = pairs(config.responseHeaders?.add, 'responseHeaders.add');
    this.responseRemove = set(config.responseHeaders?.remove);
  }

  /** Counts one event of the route. */
  count(what: Counter, event?: Record<string, unknown>): void {
    this.counts[what]++;
    if (event !== undefined && this.events.size !== 0) {
      this.events.emit({ kind: this.kind, name: this.name, event: what, ...event } as ComponentEvent);
    }
  }

  /** Records a finished request. */
  observe(status: number, seconds: number): void {
    const c = this.counts;
    if (status >= 500) c.responses5xx++;
    else if (status >= 400) c.responses4xx++;
    else c.responses2xx++;
    let i = 0;
    while (i < BOUNDS.length && seconds > BOUNDS[i]!) i++;
    this.buckets[i]!++;
    this.sum += seconds;
    this.observed++;
  }

  onEvent(listener: Listener<ComponentEvent>): Disposer {
    return this.events.on(listener);
  }

  snapshot(): Snapshot {
    return {
      kind: this.kind,
      name: this.name,
      state: this.chaos?.enabled === true ? 'chaos' : 'active',
      gauges: { inFlight: this.inFlight },
      counters: { ...this.counts },
      histograms: {
        durationSeconds: { bounds: BOUNDS, counts: [...this.buckets], sum: this.sum, count: this.observed },
      },
      details: {
        upstream: this.upstream.name,
        match: this.config.match,
        timeoutMs: this.config.timeoutMs,
        storeAndForward: this.config.storeAndForward,
      },
    };
  }
}
