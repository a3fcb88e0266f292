/**
 * One proxied request's attempts: picks an endpoint, sends through its transport (the lean
 * HTTP/1.1 pool of `h1-pool.ts` for `http://` endpoints, undici's low-level `dispatch` for the
 * others: no promise or stream object per request either way), and decides at each failure
 * whether to retry on another endpoint:
 *
 * - connect errors (nothing was sent) are retried for every method; resets, per-try timeouts and
 *   the route's statuses (502, 503, 504, 429 by default) only for the route's idempotent methods
 *   or a request with an Idempotency-Key, and only while the request body is replayable;
 * - Retry-After is honoured (the endpoint cools, another takes the retry, or we wait) and capped
 *   (`retryAfterMaxMs`: a longer one is passed to the client);
 * - the upstream group's retry budget must grant each retry; the route's `timeoutMs` bounds all
 *   attempts together;
 * - once a response has started (its headers went to the client), it is never retried: a break
 *   ends it visibly (`sink.broken`).
 * @module
 */

import type { Readable } from 'node:stream';
import type { Dispatcher } from 'undici';
import type { RandomSource } from '../core/clock.js';
import { parseRetryAfter } from '../core/retry-after.js';
import type { CallHandler } from './h1-pool.js';
import { type ErrorKind, errorKind, idempotentMethod } from './http.js';
import type { Outcome } from './outlier.js';
import { AttemptCancelledError, abandoned, budget } from './policies.js';
import type { Route } from './route.js';
import type { Endpoint } from './upstream.js';

type Headers = Record<string, string | string[] | undefined>;

/** Where an exchange's response goes: the client, or a buffer (store-and-forward). */
export interface Sink {
  /** The response starts. Return false to refuse it as a failure (it is then treated as undeliverable). */
  start(status: number, headers: Headers): boolean;
  /**
   * A body chunk; false means "pause until `onDrain`". `last`: the transport knows this is the
   * body's last chunk (`end` still follows; a sink may finish the response here already).
   */
  data(chunk: Buffer, last?: boolean): boolean;
  onDrain(resume: () => void): void;
  end(): void;
  /** The response broke after it started. */
  broken(error: Error): void;
  /** No response could be had: answer `status` (502, 503, 504) with this cause. */
  fail(status: number, title: string, detail: string, retryAfterMs?: number): void;
}

/** What the exchange reports at its end (for the access log). */
export interface ExchangeReport {
  attempts: number;
  endpoint: string | null;
  status: number;
  /** What the policies did, e.g. `retry:connect`, `retry:503`, `retryAfter`, `budgetRefused`. */
  notes: string[];
}

enum Phase {
  Waiting,
  Forwarding,
  Done,
}

/** What an attempt can do to its request, whichever the transport. */
interface Controller {
  abort(reason: Error): void;
  pause(): void;
  resume(): void;
}

class Attempt implements Dispatcher.DispatchHandler, CallHandler {
  controller: Controller | null = null;
  headSeen = false;
  discard = false;
  ended = false;
  dispatched = false;
  resolve: ((status: number) => void) | null = null;
  reject: ((error: unknown) => void) | null = null;
  discarded = 0;

  constructor(
    readonly x: Exchange,
    readonly ep: Endpoint,
    readonly t0: number,
  ) {}

  private release(): void {
    if (this.ended) return;
    this.ended = true;
    this.ep.inFlight--;
  }

  onRequestStart(controller: Controller): void {
    this.controller = controller;
    if (this.x.phase === Phase.Done) controller.abort(abandoned('the client went away'));
  }

  onResponseStart(controller: Controller, status: number, headers: Headers): void {
    if (status < 200) return;
    this.controller = controller;
    this.headSeen = true;
    const now = performance.now();
    const outcome: Outcome =
      status < 500 ? 'success' : status >= 502 && status <= 504 ? 'gatewayError' : 'error5xx';
    this.x.route.upstream.record(this.ep, outcome, now - this.t0, now);
    this.resolve?.(status);
    this.x.onHead(this, status, headers);
  }

  onResponseData(controller: Controller, chunk: Buffer, last?: boolean): void {
    if (this.discard) {
      this.discarded += chunk.length;
      if (this.discarded > 65_536) controller.abort(new Error('discarded body too large'));
      return;
    }
    if (
      !this.x.sink.data(chunk, last === true && this.x.phase === Phase.Forwarding && this.x.isCurrent(this))
    ) {
      controller.pause();
      this.x.sink.onDrain(() => controller.resume());
    }
  }

  onResponseEnd(): void {
    this.release();
    if (this.discard) return;
    this.x.onEnd(this);
  }

  onResponseError(_controller: Controller, error: Error): void {
    this.release();
    if (this.discard) return;
    if (this.x.phase === Phase.Done && !this.headSeen) {
      this.reject?.(new AttemptCancelledError()); // cancelled by us: not the endpoint's failure
      return;
    }
    if (!this.headSeen) {
      const kind = errorKind(error);
      const now = performance.now();
      // Given up by the gateway (the client went away): not the endpoint's failure.
      if (this.dispatched && this.x.phase !== Phase.Done)
        this.x.route.upstream.record(
          this.ep,
          kind === 'other' ? 'error5xx' : 'gatewayError',
          now - this.t0,
          now,
        );
      this.reject?.(error);
    }
    this.x.onAttemptError(this, error);
  }
}

/** The request as the exchange needs it. */
export interface ExchangeRequest {
  readonly method: string;
  readonly path: string;
  /** Flat header list; index 1 is the Host value, set per endpoint. */
  readonly headers: string[];
  readonly body: Buffer | Readable | null;
  /** False when the body is a stream (cannot be sent twice). */
  readonly replayable: boolean;
  readonly hasIdempotencyKey: boolean;
}

/** One request's attempts. */
export class Exchange {
  phase = Phase.Waiting;
  readonly report: ExchangeReport = { attempts: 0, endpoint: null, status: 0, notes: [] };
  private current: Attempt | null = null;
  private readonly tried: Endpoint[] = [];
  private readonly deadline: number;
  private timer: NodeJS.Timeout | null = null;
  private budgetOpen = false;

  constructor(
    readonly route: Route,
    readonly request: ExchangeRequest,
    readonly sink: Sink,
    private readonly random: RandomSource,
    private readonly onDone: (x: Exchange) => void,
    t0: number,
  ) {
    this.deadline = t0 + route.config.timeoutMs;
  }

  /** True when `a` is the attempt whose response is forwarded. */
  isCurrent(a: Attempt): boolean {
    return this.current === a;
  }

  /** Starts the first attempt. */
  run(): void {
    if (this.route.retry !== null) {
      budget.begin(this.route.upstream.budget);
      this.budgetOpen = true;
    }
    this.attempt();
  }

  /** The client went away: abort what runs. */
  abort(): void {
    if (this.phase === Phase.Done) return;
    this.report.notes.push('clientClosed');
    this.finish(499);
    this.current?.controller?.abort(abandoned('the client went away'));
  }

  private attempt(): void {
    this.timer = null;
    if (this.phase === Phase.Done) return;
    const now = performance.now();
    const ep = this.route.upstream.pick(this.tried, now);
    this.tried.push(ep);
    const a = new Attempt(this, ep, now);
    this.current = a;
    this.report.attempts++;
    this.report.endpoint = ep.url;
    ep.inFlight++;
    ep.requests++;
    const req = this.request;
    req.headers[1] = ep.url.slice(ep.url.indexOf('//') + 2);
    const cfg = this.route.config;
    const left = Math.max(1, Math.floor(this.deadline - now));
    const headersTimeout = cfg.perTryTimeoutMs === undefined ? left : Math.min(left, cfg.perTryTimeoutMs);
    const breaker = ep.breaker;
    if (breaker === null) {
      this.send(a, headersTimeout);
      return;
    }
    breaker
      .execute(
        () =>
          new Promise<number>((resolve, reject) => {
            a.resolve = resolve;
            a.reject = reject;
            this.send(a, headersTimeout);
          }),
      )
      .then(undefined, (error: unknown) => {
        if (a.dispatched) return; // the attempt's own failure, handled by its handler
        a.ended = true;
        ep.inFlight--;
        this.report.notes.push('breakerOpen');
        this.onAttemptError(a, error as Error);
      });
  }

  /** Sends the attempt's request through its endpoint's transport. */
  private send(a: Attempt, headersTimeout: number): void {
    const req = this.request;
    const ep = a.ep;
    a.dispatched = true;
    if (ep.h1 !== null) {
      a.controller = ep.h1.request(
        req.method,
        req.path,
        req.headers,
        req.body,
        headersTimeout,
        this.route.config.idleTimeoutMs,
        req.replayable && (req.hasIdempotencyKey || idempotentMethod(req.method)),
        a,
      );
      return;
    }
    ep.pool.dispatch(
      {
        path: req.path,
        method: req.method as Dispatcher.HttpMethod,
        headers: req.headers,
        body: req.body,
        headersTimeout,
        bodyTimeout: this.route.config.idleTimeoutMs,
        idempotent: req.replayable,
      },
      a,
    );
  }

  private canRetry(kind: ErrorKind | 'status' | 'breaker', waitMs: number): boolean {
    const r = this.route.retry;
    const req = this.request;
    if (r === null || this.report.attempts >= r.maxAttempts || !req.replayable) return false;
    const nothingSent = kind === 'connect' || kind === 'breaker';
    if (!nothingSent && !this.route.retryMethods.has(req.method) && !req.hasIdempotencyKey) return false;
    if (performance.now() + waitMs >= this.deadline) return false;
    if (!budget.acquire(this.route.upstream.budget, kind)) {
      this.route.upstream.retriesRefused++;
      this.report.notes.push('budgetRefused');
      return false;
    }
    return true;
  }

  private backoff(): number {
    const r = this.route.retry!;
    const cap = Math.min(r.maxMs, r.initialMs * 2 ** (this.report.attempts - 1));
    return Math.floor(this.random() * cap);
  }

  private retryLater(delayMs: number, note: string): void {
    this.report.notes.push(note);
    this.route.count('retries');
    budget.attemptEnd(this.route.upstream.budget);
    this.timer = setTimeout(() => this.attempt(), delayMs);
  }

  /** A response's head arrived. */
  onHead(a: Attempt, status: number, headers: Headers): void {
    if (this.phase === Phase.Done || a !== this.current) {
      a.controller?.abort(abandoned('no longer wanted'));
      return;
    }
    if (this.route.retryOn.has(status)) {
      const now = performance.now();
      const ra = headers['retry-after'] ?? headers['retry-after-ms'];
      let wait = this.backoff();
      let refuse = false;
      if (ra !== undefined && this.route.retry !== null) {
        const ms = parseRetryAfter(Array.isArray(ra) ? ra[0] : ra, Date.now());
        if (ms !== undefined) {
          if (ms > this.route.retry.retryAfterMaxMs) refuse = true;
          else {
            a.ep.coolUntil = now + ms;
            const other = this.route.upstream.endpoints.some(
              (e) => e !== a.ep && e.unavailable(now) === null,
            );
            if (!other) wait = Math.max(wait, ms);
            this.report.notes.push('retryAfter');
          }
        }
      }
      if (!refuse && this.canRetry('status', wait)) {
        a.discard = true;
        this.retryLater(wait, `retry:${status}`);
        return;
      }
    }
    if (!this.sink.start(status, headers)) {
      a.discard = true;
      this.giveUp(status, 'Upstream unavailable', `the upstream answered ${status}`);
      return;
    }
    this.phase = Phase.Forwarding;
    this.report.status = status;
  }

  /** The forwarded response ended. */
  onEnd(a: Attempt): void {
    if (a !== this.current || this.phase !== Phase.Forwarding) return;
    this.sink.end();
    this.finish(this.report.status);
  }

  /** An attempt failed (before or after its head). */
  onAttemptError(a: Attempt, error: Error): void {
    if (a !== this.current || this.phase === Phase.Done) return;
    if (this.phase === Phase.Forwarding) {
      this.route.count('brokenStreams', {
        requestId: this.request.headers[this.request.headers.indexOf('x-request-id') + 1],
      });
      this.report.notes.push(`broken:${errorKind(error)}`);
      this.sink.broken(error);
      this.finish(this.report.status);
      return;
    }
    const kind: ErrorKind | 'breaker' = a.dispatched ? errorKind(error) : 'breaker';
    if (this.canRetry(kind, 0)) {
      this.retryLater(kind === 'breaker' ? 0 : this.backoff(), `retry:${kind}`);
      return;
    }
    const timedOut = kind === 'timeout' || performance.now() >= this.deadline;
    if (timedOut) this.route.count('timeouts');
    const status = timedOut ? 504 : kind === 'breaker' ? 503 : 502;
    this.giveUp(
      status,
      timedOut ? 'Upstream timeout' : 'Bad gateway',
      `${a.ep.name}: ${error.message}${(error as { code?: string }).code !== undefined ? ` (${(error as { code?: string }).code})` : ''}`,
    );
  }

  private giveUp(status: number, title: string, detail: string): void {
    this.sink.fail(status, title, detail);
    this.finish(status);
  }

  private finish(status: number): void {
    if (this.phase === Phase.Done) return;
    this.phase = Phase.Done;
    if (this.timer !== null) clearTimeout(this.timer);
    this.report.status = status;
    if (this.budgetOpen) budget.end(this.route.upstream.budget, status < 500);
    this.onDone(this);
  }
}
