/**
 * Hedging of idempotent reads: the request runs as a normal exchange (with its retries); when it
 * has no response headers after the hedge delay (fixed, or a quantile of the route's recent
 * times to headers), a second exchange starts on another endpoint (no retries of its own, a token
 * of the upstream's retry budget), up to `maxHedges`. The first acceptable response wins and
 * streams to the client; every other attempt is aborted (its upstream request cancelled). A 5xx
 * while another attempt still runs is not accepted: the race waits for the other.
 * @module
 */

import { type RandomSource, systemClock } from '../core/clock.js';
import { type DeadlineNode, type DeadlineQueue, DeadlineQueues } from '../core/deadline-queue.js';
import type { QuantileSketch } from '../limits/quantile.js';
import { Exchange, type ExchangeReport, type ExchangeRequest, type Sink } from './exchange.js';
import { budget } from './policies.js';
import type { Route } from './route.js';
import type { Endpoint, Upstream } from './upstream.js';

type Headers = Record<string, string | string[] | undefined>;

/** A route's hedging settings (its `hedge` block, defaults filled). */
export interface HedgeSettings {
  readonly delayMs?: number | undefined;
  readonly quantile?: number | undefined;
  readonly initialDelayMs: number;
  readonly minDelayMs: number;
  readonly maxDelayMs?: number | undefined;
  readonly minSamples: number;
  readonly maxHedges: number;
}

/**
 * The delay before the next hedge: fixed, or the quantile of `window` clamped to the bounds.
 *
 * @example
 * ```ts
 * import { hedgeDelay } from 'bulwark/gateway';
 * console.log(hedgeDelay({ delayMs: 50, initialDelayMs: 100, minDelayMs: 1, minSamples: 20, maxHedges: 1 }, null, 0)); // 50
 * ```
 */
export function hedgeDelay(h: HedgeSettings, window: QuantileSketch | null, now: number): number {
  if (h.delayMs !== undefined) return h.delayMs;
  const p = window === null ? Number.NaN : window.cachedQuantile(h.quantile ?? 0.95, h.minSamples, now);
  if (Number.isNaN(p)) return h.initialDelayMs;
  return Math.min(h.maxDelayMs ?? Number.POSITIVE_INFINITY, Math.max(h.minDelayMs, p));
}

/** A view of `route` for a hedged attempt: no retries of its own, picks avoiding `avoid`. */
function hedgeRoute(route: Route, avoid: readonly Endpoint[]): Route {
  const up = route.upstream;
  const upstream = new Proxy(up, {
    get(target, prop) {
      if (prop === 'pick')
        return (tried: readonly Endpoint[] | null, now: number) =>
          target.pick(tried === null ? avoid : [...tried, ...avoid], now);
      return Reflect.get(target, prop);
    },
  }) as Upstream;
  return Object.create(route, { upstream: { value: upstream }, retry: { value: null } }) as Route;
}

class Leg implements Sink {
  x!: Exchange;
  finished = false;
  cancelled = false;
  failure: [number, string, string] | null = null;
  readonly startedAt = performance.now();

  constructor(
    private readonly race: HedgeRace,
    readonly index: number,
  ) {}

  start(status: number, headers: Headers): boolean {
    return this.race.onStart(this, status, headers);
  }
  data(chunk: Buffer): boolean {
    return this.race.target.data(chunk);
  }
  onDrain(resume: () => void): void {
    this.race.target.onDrain(resume);
  }
  end(): void {
    this.race.target.end();
  }
  broken(error: Error): void {
    this.race.target.broken(error);
  }
  fail(status: number, title: string, detail: string): void {
    this.failure = [status, title, detail];
  }
}

/**
 * The hedge timers of a route: deadline queues per delay (one timer per queue, not one per
 * request; the core hedge policy's mechanism).
 */
export function hedgeTimers(): DeadlineQueues<HedgeRace> {
  return new DeadlineQueues<HedgeRace>(systemClock, (race) => race.fire());
}

/** One hedged request. */
export class HedgeRace implements DeadlineNode<HedgeRace> {
  _dlPrev: HedgeRace | null = null;
  _dlNext: HedgeRace | null = null;
  _dlDeadline = 0;
  _dlQueued = false;
  private readonly legs: Leg[] = [];
  private won: Leg | null = null;
  private timer: DeadlineQueue<HedgeRace> | null = null;
  private over = false;

  constructor(
    private readonly timers: DeadlineQueues<HedgeRace>,
    private readonly route: Route,
    private readonly settings: HedgeSettings,
    private readonly window: QuantileSketch | null,
    private readonly request: ExchangeRequest,
    readonly target: Sink,
    private readonly random: RandomSource,
    private readonly t0: number,
    private readonly onDone: (report: ExchangeReport) => void,
  ) {}

  /** Starts the first attempt and arms the hedge timer. */
  run(): void {
    this.leg(this.route, this.request);
    this.arm();
  }

  private arm(): void {
    const now = performance.now();
    const q = this.timers.for(Math.round(hedgeDelay(this.settings, this.window, now)));
    q.add(this, now);
    this.timer = q;
  }

  private disarm(): void {
    this.timer?.remove(this);
    this.timer = null;
  }

  private leg(route: Route, request: ExchangeRequest): void {
    const leg = new Leg(this, this.legs.length);
    this.legs.push(leg);
    leg.x = new Exchange(route, request, leg, this.random, (x) => this.legDone(leg, x), this.t0);
    leg.x.run();
  }

  /** The hedge delay passed. @internal */
  fire(): void {
    this.timer = null;
    if (this.over || this.won !== null) return;
    const r = this.route;
    if (!budget.acquire(r.upstream.budget, 'hedge')) {
      r.upstream.retriesRefused++;
      return;
    }
    r.count('hedges');
    const avoid: Endpoint[] = [];
    for (const l of this.legs) {
      const ep = r.upstream.endpoints.find((e) => e.url === l.x.report.endpoint);
      if (ep !== undefined && !l.finished) avoid.push(ep);
    }
    this.leg(hedgeRoute(r, avoid), { ...this.request, headers: this.request.headers.slice() });
    if (this.legs.length <= this.settings.maxHedges) this.arm();
  }

  /** A leg's response starts: the first acceptable one wins, the others are cancelled. */
  onStart(leg: Leg, status: number, headers: Headers): boolean {
    if (this.won !== null || this.over) return false;
    if (status >= 500 && this.legs.some((l) => l !== leg && !l.finished)) return false;
    this.won = leg;
    this.disarm();
    for (const l of this.legs) {
      if (l === leg || l.finished) continue;
      l.cancelled = true;
      l.x.abort();
    }
    const now = performance.now();
    if (status < 500) this.window?.record(now - leg.startedAt, now);
    if (leg.index > 0) this.route.count('hedgeWins');
    return this.target.start(status, headers);
  }

  private legDone(leg: Leg, x: Exchange): void {
    leg.finished = true;
    if (leg.index > 0) budget.attemptEnd(this.route.upstream.budget);
    if (this.over || leg.cancelled) return;
    if (leg === this.won) {
      this.finish(x.report.status, leg);
      return;
    }
    if (this.legs.some((l) => !l.finished)) return; // another attempt may still answer
    const [status, title, detail] = leg.failure ?? [502, 'Bad gateway', 'no attempt answered'];
    this.target.fail(status, title, detail);
    this.finish(status, leg);
  }

  private finish(status: number, last: Leg): void {
    this.over = true;
    this.disarm();
    let attempts = 0;
    for (const l of this.legs) attempts += l.x.report.attempts;
    const notes = last.x.report.notes.filter((n) => n !== 'clientClosed');
    if (this.legs.length > 1) notes.push(last.index > 0 ? 'hedgeWin' : 'hedged');
    this.onDone({ attempts, endpoint: last.x.report.endpoint, status, notes });
  }

  /** The client went away: cancel every attempt. */
  abort(): void {
    if (this.over) return;
    this.over = true;
    this.disarm();
    for (const l of this.legs) l.x.abort();
  }
}
