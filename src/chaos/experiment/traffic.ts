/**
 * The open-loop load generator: requests leave on a fixed schedule (request i at t0 + i/rate),
 * whether or not earlier ones have answered, and each latency is measured from its scheduled
 * time, so a slow dependency cannot hide its latency by slowing the sender down (coordinated
 * omission). Outcomes are kept per second for the charts and the probes.
 * @module
 */

import { Agent as HttpAgent, request as httpRequest } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import type { Clock, TimerHandle } from '../../core/clock.js';

/** What one request produced. */
export interface SendOutcome {
  readonly ok: boolean;
  readonly status?: number;
  readonly error?: string;
}

/** Sends one request; must settle (the generator does not time it out itself). */
export type Sender = () => Promise<SendOutcome>;

/** One second of a run. */
export interface Bucket {
  /** Start of the second, in ms since the run began. */
  readonly t: number;
  sent: number;
  ok: number;
  errors: number;
  /** Latencies (ms, from the scheduled time) of the requests scheduled in this second. */
  readonly latencies: number[];
}

/** Figures over a span of a run. */
export interface WindowStats {
  readonly requests: number;
  readonly ok: number;
  readonly errors: number;
  /** ok / requests (NaN with no request). */
  readonly successRatio: number;
  /** Sorted latencies in ms. */
  readonly latencies: readonly number[];
}

/** The q-th percentile (0–100) of sorted values, NaN when empty. */
export function percentile(sorted: readonly number[], q: number): number {
  if (sorted.length === 0) return Number.NaN;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((q / 100) * sorted.length) - 1));
  return sorted[i]!;
}

/**
 * Per-second outcomes of one run.
 *
 * @example
 * ```ts
 * import { Recorder } from 'bulwark/chaos';
 * const r = new Recorder();
 * r.record(100, 12, true);
 * r.record(1_200, 30, false);
 * console.log(r.window(0, 2_000).successRatio); // 0.5
 * ```
 */
export class Recorder {
  readonly buckets: Bucket[] = [];
  /** Scheduled times of the requests still waiting for an answer. */
  readonly pending = new Set<number>();
  private bucket(atMs: number): Bucket {
    const i = Math.max(0, Math.floor(atMs / 1_000));
    while (this.buckets.length <= i)
      this.buckets.push({ t: this.buckets.length * 1_000, sent: 0, ok: 0, errors: 0, latencies: [] });
    return this.buckets[i]!;
  }
  /** A request scheduled at `scheduledMs` (since the run began) was sent. */
  sent(scheduledMs: number): void {
    this.bucket(scheduledMs).sent++;
    this.pending.add(scheduledMs);
  }
  /** A request scheduled at `scheduledMs` ended after `latencyMs`, ok or not. */
  record(scheduledMs: number, latencyMs: number, ok: boolean): void {
    this.pending.delete(scheduledMs);
    const b = this.bucket(scheduledMs);
    if (ok) b.ok++;
    else b.errors++;
    b.latencies.push(latencyMs);
  }
  /**
   * Figures of the requests scheduled in [fromMs, toMs). With `nowMs`, a request still waiting
   * counts in the latencies with its age so far (a lower bound: a stalled dependency shows at
   * once, not when the requests time out); it is not counted in the success ratio yet.
   */
  window(fromMs: number, toMs: number, nowMs?: number): WindowStats {
    let ok = 0;
    let errors = 0;
    const latencies: number[] = [];
    for (const b of this.buckets) {
      if (b.t + 1_000 <= fromMs || b.t >= toMs) continue;
      ok += b.ok;
      errors += b.errors;
      for (const l of b.latencies) latencies.push(l);
    }
    if (nowMs !== undefined) {
      for (const s of this.pending) if (s >= fromMs && s < toMs) latencies.push(nowMs - s);
    }
    latencies.sort((a, b) => a - b);
    const requests = ok + errors;
    return { requests, ok, errors, successRatio: requests === 0 ? Number.NaN : ok / requests, latencies };
  }
}

/** Options of the load generator. */
export interface TrafficOptions {
  /** Requests per second. */
  readonly rate: number;
  readonly send: Sender;
  readonly clock: Clock;
  /** Requests outstanding beyond this are not sent but counted as errors (bounded memory). */
  readonly maxInFlight?: number;
  readonly recorder?: Recorder;
}

/**
 * A running open-loop generator: `stop()` ends the schedule and waits for the requests in flight.
 *
 * @example
 * ```ts
 * import { systemClock } from 'bulwark';
 * import { startTraffic } from 'bulwark/chaos';
 * const t = startTraffic({ rate: 200, clock: systemClock, send: async () => ({ ok: true, status: 200 }) });
 * await new Promise((r) => setTimeout(r, 100));
 * await t.stop();
 * console.log(t.recorder.window(0, 1_000).requests > 10); // true
 * ```
 */
export interface Traffic {
  readonly recorder: Recorder;
  /** When the schedule started, on the clock. */
  readonly startedAt: number;
  inFlight(): number;
  stop(): Promise<void>;
}

/** Starts sending `rate` requests per second on the clock's schedule. */
export function startTraffic(options: TrafficOptions): Traffic {
  const { clock, rate, send } = options;
  const recorder = options.recorder ?? new Recorder();
  const maxInFlight = options.maxInFlight ?? 10_000;
  const interval = 1_000 / rate;
  const tick = Math.max(1, Math.min(10, interval));
  const t0 = clock.now();
  let issued = 0;
  let inFlight = 0;
  let stopped = false;
  let timer: TimerHandle | undefined;
  let drained: (() => void) | undefined;
  const fire = (scheduledMs: number): void => {
    recorder.sent(scheduledMs);
    if (inFlight >= maxInFlight) {
      recorder.record(scheduledMs, 0, false);
      return;
    }
    inFlight++;
    const done = (ok: boolean): void => {
      recorder.record(scheduledMs, clock.now() - (t0 + scheduledMs), ok);
      inFlight--;
      if (inFlight === 0 && drained !== undefined) drained();
    };
    send().then(
      (o) => done(o.ok),
      () => done(false),
    );
  };
  const loop = (): void => {
    if (stopped) return;
    const due = Math.floor((clock.now() - t0) / interval) + 1;
    while (issued < due) fire(issued++ * interval);
    timer = clock.setTimeout(loop, tick);
  };
  loop();
  return {
    recorder,
    startedAt: t0,
    inFlight: () => inFlight,
    stop: () => {
      stopped = true;
      if (timer !== undefined) clock.clearTimeout(timer);
      if (inFlight === 0) return Promise.resolve();
      return new Promise<void>((resolve) => {
        drained = resolve;
      });
    },
  };
}

/** The placeholder of the request's sequence number. */
const SEQ = ['$', '{seq}'].join('');

/** Options of `httpSender`. */
export interface HttpSenderOptions {
  readonly url: string;
  readonly method?: string;
  readonly headers?: Readonly<Record<string, string>>;
  readonly body?: string;
  readonly timeoutMs?: number;
  /** Statuses counted as a success (inclusive). Default 200–399. */
  readonly ok?: { readonly min: number; readonly max: number };
}

/**
 * A sender of one HTTP request per call over keep-alive connections (as many as needed, so a
 * slow answer never holds the next request back). `${seq}` in the URL or body is replaced by a
 * sequence number (unique ids for idempotency keys). `close()` ends the connections.
 *
 * @example
 * ```ts nocheck
 * const { send, close } = httpSender({ url: 'http://127.0.0.1:8080/orders', method: 'POST', body: '{"id":${seq}}' });
 * ```
 */
export function httpSender(options: HttpSenderOptions): { send: Sender; close(): void } {
  const url = new URL(options.url.replaceAll(SEQ, '0'));
  const https = url.protocol === 'https:';
  const agent = https
    ? new HttpsAgent({ keepAlive: true, maxSockets: Number.POSITIVE_INFINITY })
    : new HttpAgent({ keepAlive: true, maxSockets: Number.POSITIVE_INFINITY });
  const okMin = options.ok?.min ?? 200;
  const okMax = options.ok?.max ?? 399;
  const timeoutMs = options.timeoutMs ?? 5_000;
  const seqInUrl = options.url.includes(SEQ);
  const seqInBody = options.body?.includes(SEQ) === true;
  let seq = 0;
  const request = https ? httpsRequest : httpRequest;
  const send: Sender = () =>
    new Promise<SendOutcome>((resolve) => {
      const n = ++seq;
      const target = seqInUrl ? options.url.replaceAll(SEQ, String(n)) : options.url;
      const body = seqInBody ? options.body!.replaceAll(SEQ, String(n)) : options.body;
      let settled = false;
      const finish = (o: SendOutcome): void => {
        if (settled) return;
        settled = true;
        resolve(o);
      };
      const req = request(
        target,
        { method: options.method ?? 'GET', headers: options.headers, agent, timeout: timeoutMs },
        (res) => {
          const status = res.statusCode ?? 0;
          res.on('data', () => {});
          res.on('end', () => finish({ ok: status >= okMin && status <= okMax, status }));
          res.on('error', (e) => finish({ ok: false, status, error: e.message }));
        },
      );
      req.on('timeout', () => req.destroy(new Error(`no answer within ${timeoutMs} ms`)));
      req.on('error', (e) => finish({ ok: false, error: e.message }));
      req.end(body);
    });
  return { send, close: () => agent.destroy() };
}
