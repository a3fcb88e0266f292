/**
 * The demo's load generator: a steady mix of inventory reads (low and normal priority, five
 * clients), payment writes with Idempotency-Keys (critical) and streamed LLM completions, with
 * per-second figures.
 * @module
 */

import { randomUUID } from 'node:crypto';

/** Figures of one second (or of the whole run). */
export interface Window {
  requests: number;
  ok: number;
  failed: number;
  queued: number;
  latencies: number[];
  failures: string[];
}

const empty = (): Window => ({ requests: 0, ok: 0, failed: 0, queued: 0, latencies: [], failures: [] });

/** The 99th percentile of `xs` (0 when empty). */
export function p99(xs: readonly number[]): number {
  if (xs.length === 0) return 0;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(s.length * 0.99))]!;
}

/** A running load generator. */
export class LoadGenerator {
  window = empty();
  readonly total = empty();
  readonly byRoute = new Map<string, { ok: number; failed: number }>();
  /** Status URLs of writes answered 202. */
  readonly queuedOps: string[] = [];
  private timer: NodeJS.Timeout | null = null;
  private inFlight = 0;
  private n = 0;

  constructor(
    private readonly base: string,
    private readonly ratePerSec: number,
  ) {}

  /** Takes the current second's figures and starts a new window. */
  take(): Window {
    const w = this.window;
    this.window = empty();
    return w;
  }

  private record(route: string, ok: boolean, status: number, ms: number, note: string): void {
    for (const w of [this.window, this.total]) {
      w.requests++;
      if (ok) w.ok++;
      else {
        w.failed++;
        w.failures.push(`${route} ${status} ${note}`);
      }
      if (status === 202) w.queued++;
      w.latencies.push(ms);
    }
    const r = this.byRoute.get(route) ?? { ok: 0, failed: 0 };
    if (ok) r.ok++;
    else r.failed++;
    this.byRoute.set(route, r);
  }

  private async one(): Promise<void> {
    const i = this.n++;
    const pick = i % 10;
    const t0 = performance.now();
    let route = 'inventory';
    let status = 0;
    let note = '';
    try {
      if (pick < 4) {
        const r = await fetch(`${this.base}/inventory/items`, {
          headers: { 'x-priority': pick === 0 ? 'low' : 'normal', 'x-client': `client-${i % 5}` },
          signal: AbortSignal.timeout(5_000),
        });
        status = r.status;
        await r.arrayBuffer();
      } else if (pick < 6) {
        route = 'payments';
        const r = await fetch(`${this.base}/pay/charges`, {
          method: 'POST',
          headers: {
            'content-type': 'application/json',
            'idempotency-key': randomUUID(),
            'x-priority': 'critical',
          },
          body: JSON.stringify({ amount: 100 + (i % 50), currency: 'EUR' }),
          signal: AbortSignal.timeout(5_000),
        });
        status = r.status;
        await r.arrayBuffer();
        if (status === 202) this.queuedOps.push(r.headers.get('location') ?? '');
      } else if (pick < 7) {
        const r = await fetch(`${this.base}/inventory/items?page=2`, {
          headers: { 'x-client': `client-${i % 5}` },
          signal: AbortSignal.timeout(5_000),
        });
        status = r.status;
        await r.arrayBuffer();
      } else {
        route = 'llm';
        const r = await fetch(`${this.base}/v1/chat/completions`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ model: 'demo', stream: true, messages: [{ role: 'user', content: 'hi' }] }),
          signal: AbortSignal.timeout(10_000),
        });
        status = r.status;
        const text = await r.text();
        if (status === 200 && !text.includes('[DONE]')) {
          status = 599;
          note = 'stream broken';
        }
      }
    } catch (error) {
      note = (error as Error).message;
    }
    this.record(route, status > 0 && status < 400, status, performance.now() - t0, note);
  }

  /** Starts sending `ratePerSec` requests per second. */
  start(): void {
    const every = 1000 / this.ratePerSec;
    this.timer = setInterval(() => {
      if (this.inFlight > 500) return;
      this.inFlight++;
      void this.one().finally(() => this.inFlight--);
    }, every);
  }

  /** Stops sending and waits for requests in flight (at most `maxMs`). */
  async stop(maxMs = 10_000): Promise<void> {
    if (this.timer !== null) clearInterval(this.timer);
    const deadline = Date.now() + maxMs;
    while (this.inFlight > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  }
}
