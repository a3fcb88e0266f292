/**
 * The per-route policies beyond retries: a bulkhead (the core `bulkhead`, a component of the
 * gateway's registry: 503 problem+json with Retry-After when full), hedging of idempotent reads
 * (src/gateway/hedge-race.ts), a response cache for GET (src/gateway/response-cache.ts) and
 * coalescing of identical GETs in flight. A route without any of them has `policies === null`:
 * the handler pays one null check.
 *
 * Cache and coalescing share one mechanism, a flight: one upstream exchange whose response is
 * fanned out to every client waiting on it (and to the cache's recorder); the exchange is
 * cancelled only when every client has gone.
 * @module
 */

import type { IncomingHttpHeaders, ServerResponse } from 'node:http';
import { type BulkheadPolicy, bulkhead } from '../core/bulkhead.js';
import type { Clock, RandomSource } from '../core/clock.js';
import type { Component } from '../core/component.js';
import { BulkheadRejectedError } from '../core/errors.js';
import { QuantileSketch } from '../limits/quantile.js';
import { cacheDefaults, coalesceDefaults, type RouteConfig } from './config.js';
import { Exchange, type ExchangeReport, type ExchangeRequest, type Sink } from './exchange.js';
import { HedgeRace, type HedgeSettings, hedgeTimers } from './hedge-race.js';
import { type CacheRecorder, cacheModeOf, ResponseCache } from './response-cache.js';
import type { Route } from './route.js';

type Headers = Record<string, string | string[] | undefined>;

/** One bodyless request handed to the route policies by the handler. */
export interface ForwardJob {
  readonly method: string;
  /** The path (and query) forwarded upstream. */
  readonly path: string;
  readonly host: string;
  /** The headers sent upstream (flat list, as the exchange takes them). */
  readonly headers: string[];
  /** The client's request headers. */
  readonly request: IncomingHttpHeaders;
  readonly res: ServerResponse;
  /** Where this client's response goes. */
  readonly sink: Sink;
  readonly random: RandomSource;
  readonly t0: number;
  readonly keyed: boolean;
  /** The access log's policy notes of this request. */
  readonly notes: string[];
  /** The request is over (status; attempts and endpoint when this request made them). */
  done(status: number, attempts: number, endpoint: string | null): void;
}

/** Something running upstream for a request: an exchange or a hedge race. */
interface Runner {
  abort(): void;
}

interface Subscriber {
  readonly job: ForwardJob;
  readonly leader: boolean;
  pending: boolean;
  gone: boolean;
}

/** One upstream exchange fanned out to every client waiting on it (and the cache). */
class Flight implements Sink {
  private readonly subs: Subscriber[] = [];
  started = false;
  runner: Runner | null = null;
  private pendingCount = 0;
  private resume: (() => void) | null = null;

  constructor(
    private readonly owner: RoutePolicies,
    private readonly coalesceKey: string | null,
    private readonly recorder: CacheRecorder | null,
    private readonly addHeaders: Record<string, string> | null,
  ) {}

  /** Adds a client; it leaves (and counts 499) if it closes before the response ended. */
  join(job: ForwardJob, leader: boolean): void {
    const sub: Subscriber = { job, leader, pending: false, gone: false };
    this.subs.push(sub);
    job.res.once('close', () => {
      if (job.res.writableFinished || sub.gone) return;
      sub.gone = true;
      job.done(499, 0, null);
      this.leave(sub);
    });
  }

  private leave(sub: Subscriber): void {
    const i = this.subs.indexOf(sub);
    if (i >= 0) this.subs.splice(i, 1);
    if (sub.pending) this.drained(sub);
    if (this.subs.length === 0 && this.recorder?.active !== true) {
      this.release();
      this.runner?.abort();
    }
  }

  private release(): void {
    if (this.coalesceKey !== null) this.owner.land(this.coalesceKey, this);
  }

  private drained(sub: Subscriber): void {
    sub.pending = false;
    if (--this.pendingCount === 0 && this.resume !== null) {
      const r = this.resume;
      this.resume = null;
      r();
    }
  }

  start(status: number, headers: Headers): boolean {
    this.started = true;
    this.release(); // from now on, a new identical GET makes its own request
    this.recorder?.start(status, headers);
    // Nobody wants the response any more: refused, so the exchange drops it and ends.
    if (this.subs.length === 0 && this.recorder?.active !== true) return false;
    const h = this.addHeaders === null ? headers : { ...headers, ...this.addHeaders };
    for (const s of this.subs) s.job.sink.start(status, h);
    return true;
  }

  data(chunk: Buffer): boolean {
    this.recorder?.data(chunk);
    let ok = true;
    for (const s of this.subs) {
      if (!s.job.sink.data(chunk) && !s.pending) {
        s.pending = true;
        this.pendingCount++;
        ok = false;
      }
    }
    return ok || this.pendingCount === 0;
  }

  onDrain(resume: () => void): void {
    if (this.pendingCount === 0) {
      resume();
      return;
    }
    this.resume = resume;
    for (const s of this.subs) if (s.pending) s.job.sink.onDrain(() => s.pending && this.drained(s));
  }

  end(): void {
    this.recorder?.end();
    for (const s of this.subs) s.job.sink.end();
  }

  broken(error: Error): void {
    this.recorder?.abandon();
    for (const s of this.subs) s.job.sink.broken(error);
  }

  fail(status: number, title: string, detail: string): void {
    this.recorder?.abandon();
    this.release();
    for (const s of this.subs) s.job.sink.fail(status, title, detail);
  }

  /** The exchange is over: every client still here is done. */
  finished(report: ExchangeReport): void {
    this.release();
    for (const s of this.subs.splice(0)) {
      if (s.gone) continue;
      s.gone = true;
      if (s.leader) {
        s.job.notes.push(...report.notes);
        s.job.done(report.status, report.attempts, report.endpoint);
      } else s.job.done(report.status, 0, report.endpoint);
    }
  }
}

/**
 * The bulkhead, hedging, cache and coalescing of one route, or null when the route has none.
 *
 * @example
 * ```ts nocheck
 * // Built by the gateway for each route with `bulkhead`, `hedge`, `cache` or `coalesce`.
 * const policies = RoutePolicies.for(route, clock);
 * ```
 */
export class RoutePolicies {
  readonly bulkhead: BulkheadPolicy | null;
  readonly cache: ResponseCache | null;
  private readonly coalesceHeaders: readonly string[] | null;
  private readonly hedge: HedgeSettings | null;
  private readonly hedgeWindow: QuantileSketch | null;
  private readonly hedgeTimers = hedgeTimers();
  private readonly retryAfter: string;
  /** Methods `forward` handles (bodyless requests only). */
  readonly methods: ReadonlySet<string>;
  private readonly hedgeMethods: ReadonlySet<string>;
  private readonly flights = new Map<string, Flight>();
  private readonly refreshing = new Set<string>();
  /** Vary header names learned per URL (so coalescing keys on them too). */
  private readonly varyOf = new Map<string, readonly string[]>();

  private constructor(
    private readonly route: Route,
    config: RouteConfig,
    clock: Clock,
  ) {
    const b = config.bulkhead;
    this.bulkhead =
      b === undefined
        ? null
        : bulkhead({ name: route.name, limit: b.limit, queue: b.queue, queueTimeoutMs: b.queueTimeoutMs });
    this.retryAfter = String(Math.max(1, Math.ceil((b?.retryAfterMs ?? 1000) / 1000)));
    const c = config.cache;
    this.cache =
      c === undefined || c === false ? null : new ResponseCache(c === true ? cacheDefaults : c, clock);
    const co = config.coalesce;
    this.coalesceHeaders =
      co === undefined || co === false
        ? null
        : (co === true ? coalesceDefaults : co).keyHeaders.map((h) => h.toLowerCase());
    this.hedge = config.hedge ?? null;
    this.hedgeWindow = config.hedge?.quantile !== undefined ? new QuantileSketch(5_000, clock) : null;
    this.hedgeMethods = new Set(config.hedge?.methods ?? []);
    const methods = new Set(this.hedgeMethods);
    if (this.cache !== null || this.coalesceHeaders !== null) methods.add('GET');
    this.methods = methods;
  }

  /** The policies of a route, or null when it sets none of bulkhead, hedge, cache, coalesce. */
  static for(route: Route, clock: Clock): RoutePolicies | null {
    const c = route.config;
    if (
      c.bulkhead === undefined &&
      c.hedge === undefined &&
      (c.cache === undefined || c.cache === false) &&
      (c.coalesce === undefined || c.coalesce === false)
    )
      return null;
    return new RoutePolicies(route, c, clock);
  }

  /** The components these policies add to the gateway's registry (the bulkhead). */
  components(): Component[] {
    return this.bulkhead === null ? [] : [this.bulkhead];
  }

  /**
   * Takes a bulkhead slot for a request: `go(release)` once admitted (call `release` when the
   * response is over), `refuse(retryAfterSeconds)` when full or after `queueTimeoutMs` in the
   * queue, `gone()` when the client left while queued.
   */
  admit(
    res: ServerResponse,
    go: (release: () => void) => void,
    refuse: (retryAfter: string) => void,
    gone: () => void,
  ): void {
    let left = false;
    let admitted = false;
    const onClose = () => {
      if (admitted) return;
      left = true;
      gone();
    };
    res.once('close', onClose);
    this.bulkhead!.execute(
      () =>
        new Promise<void>((release) => {
          admitted = true;
          res.off('close', onClose);
          if (left) release();
          else go(() => release());
        }),
    ).then(undefined, (error: unknown) => {
      res.off('close', onClose);
      if (left) return;
      if (error instanceof BulkheadRejectedError) {
        this.route.count('bulkheadRejections');
        refuse(this.retryAfter);
      } else gone();
    });
  }

  /** Serves a bodyless request whose method is in `methods`: cache, coalescing, hedging. */
  forward(job: ForwardJob): void {
    const r = this.route;
    const get = job.method === 'GET';
    let cacheKey: string | null = null;
    let recorder: CacheRecorder | null = null;
    const cache = this.cache;
    if (cache !== null && get) {
      const mode = cacheModeOf(job.request);
      if (mode !== 'bypass') {
        cacheKey = cache.key(job.host, job.path, job.request);
        if (mode === 'normal') {
          const hit = cache.lookup(cacheKey, job.request);
          if (hit !== null) {
            r.count(hit.fresh ? 'cacheHits' : 'cacheStale');
            job.notes.push(hit.fresh ? 'cache:hit' : 'cache:stale');
            cache.serve(job.sink, hit, false);
            job.done(hit.entry.status, 0, null);
            if (!hit.fresh) this.refresh(cacheKey, job);
            return;
          }
        }
        r.count('cacheMisses');
        job.notes.push('cache:miss');
        recorder = cache.recorder(cacheKey, job.request);
      }
    }
    let flightKey: string | null = null;
    if (this.coalesceHeaders !== null && get) {
      flightKey = this.coalesceKey(job);
      const f = this.flights.get(flightKey);
      if (f !== undefined && !f.started) {
        r.count('coalesced');
        job.notes.push('coalesced');
        f.join(job, false);
        return;
      }
    }
    if (flightKey === null && recorder === null) {
      // Hedging alone: the exchange writes to this client directly.
      const runner = this.run(job, job.sink, (rep) => {
        job.notes.push(...rep.notes);
        if (rep.status !== 499) job.done(rep.status, rep.attempts, rep.endpoint);
      });
      job.res.once('close', () => {
        if (!job.res.writableFinished) {
          runner.abort();
          job.done(499, 0, null);
        }
      });
      return;
    }
    const f = new Flight(
      this,
      flightKey,
      recorder,
      recorder === null ? null : { 'cache-status': 'bulwark; fwd=miss' },
    );
    if (flightKey !== null) this.flights.set(flightKey, f);
    f.join(job, true);
    f.runner = this.run(job, f, (rep) => {
      this.learnVary(job);
      f.finished(rep);
    });
  }

  /** Refreshes a stale cached response in the background (one refresh per key at a time). */
  private refresh(key: string, job: ForwardJob): void {
    if (this.refreshing.has(key) || this.cache === null) return;
    this.refreshing.add(key);
    const f = new Flight(this, null, this.cache.recorder(key, job.request), null);
    const background: ForwardJob = { ...job, headers: job.headers.slice(), notes: [] };
    f.runner = this.run(background, f, () => this.refreshing.delete(key));
  }

  private run(job: ForwardJob, sink: Sink, onDone: (report: ExchangeReport) => void): Runner {
    const request: ExchangeRequest = {
      method: job.method,
      path: job.path,
      headers: job.headers,
      body: null,
      replayable: true,
      hasIdempotencyKey: job.keyed,
    };
    if (this.hedge !== null && this.hedgeMethods.has(job.method)) {
      const race = new HedgeRace(
        this.hedgeTimers,
        this.route,
        this.hedge,
        this.hedgeWindow,
        request,
        sink,
        job.random,
        job.t0,
        onDone,
      );
      race.run();
      return race;
    }
    const x = new Exchange(this.route, request, sink, job.random, (e) => onDone(e.report), job.t0);
    x.run();
    return x;
  }

  private coalesceKey(job: ForwardJob): string {
    const q = job.request;
    let k = `${job.method}\n${job.host}\n${job.path}\n${q.authorization ?? ''}\n${q.cookie ?? ''}`;
    for (const h of this.coalesceHeaders!) k += `\n${String(q[h] ?? '')}`;
    const vary = this.varyOf.get(`${job.host}\n${job.path}`);
    if (vary !== undefined) for (const h of vary) k += `\n${h}:${String(q[h] ?? '')}`;
    return k;
  }

  private learnVary(job: ForwardJob): void {
    const v = job.res.getHeader('vary');
    if (v === undefined || this.coalesceHeaders === null) return;
    if (this.varyOf.size >= 10_000) this.varyOf.clear();
    this.varyOf.set(
      `${job.host}\n${job.path}`,
      String(v)
        .split(',')
        .map((h) => h.trim().toLowerCase())
        .filter((h) => h !== '' && h !== '*'),
    );
  }

  /** A flight no longer takes new clients. @internal */
  land(key: string, f: Flight): void {
    if (this.flights.get(key) === f) this.flights.delete(key);
  }
}
