/**
 * The demo's scripted upstreams: a payments API in two regions, an LLM-style streaming API from
 * two providers, an inventory GET API on two hosts. Each can be switched between behaviours
 * (ok, a latency spike, 503 with Retry-After, down = killed, and back on the same port).
 * @module
 */

import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

/** What a demo upstream does now. */
export type Mode = 'ok' | 'slow' | 'unavailable' | 'down';

/** One scripted upstream. */
export class DemoUpstream {
  mode: Mode = 'ok';
  port = 0;
  requests = 0;
  /** Idempotency keys committed (payments): key → times. */
  readonly committed = new Map<string, number>();
  private server: Server | null = null;

  constructor(
    readonly name: string,
    readonly kind: 'payments' | 'llm' | 'inventory',
  ) {}

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  private handle(req: IncomingMessage, res: ServerResponse): void {
    this.requests++;
    let body = '';
    req.on('data', (c: Buffer) => (body += c));
    req.on('end', () => {
      if (this.mode === 'unavailable') {
        res.writeHead(503, { 'retry-after': '1', 'content-type': 'application/json' });
        res.end(JSON.stringify({ error: 'overloaded', upstream: this.name }));
        return;
      }
      const delay = this.mode === 'slow' ? 600 + Math.random() * 400 : 2 + Math.random() * 6;
      setTimeout(() => this.answer(req, res, body), delay);
    });
  }

  private answer(req: IncomingMessage, res: ServerResponse, body: string): void {
    if (res.destroyed) return;
    if (this.kind === 'payments') {
      const key = String(req.headers['idempotency-key'] ?? '');
      if (req.method === 'POST' && key !== '') this.committed.set(key, (this.committed.get(key) ?? 0) + 1);
      res.writeHead(req.method === 'POST' ? 201 : 200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ ok: true, region: this.name, key, bytes: body.length }));
      return;
    }
    if (this.kind === 'inventory') {
      res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'max-age=1' });
      res.end(
        JSON.stringify({
          items: [
            { sku: 'A-1', stock: 12 },
            { sku: 'B-7', stock: 0 },
          ],
          host: this.name,
        }),
      );
      return;
    }
    res.writeHead(200, { 'content-type': 'text/event-stream' });
    const words = ['Resilience', ' is', ' a', ' feature', '.'];
    let i = 0;
    const t = setInterval(() => {
      if (res.destroyed) return clearInterval(t);
      if (i < words.length) {
        res.write(
          `data: ${JSON.stringify({ choices: [{ index: 0, delta: { content: words[i++] } }], provider: this.name })}\n\n`,
        );
        return;
      }
      clearInterval(t);
      res.end('data: [DONE]\n\n');
    }, 15);
  }

  /** Starts (or restarts on the same port). */
  async start(): Promise<void> {
    const server = createServer((req, res) => this.handle(req, res));
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.port, '127.0.0.1', () => resolve());
    });
    this.port = (server.address() as AddressInfo).port;
    this.server = server;
    this.mode = 'ok';
  }

  /** A hard kill: every connection cut, the port closed. */
  async kill(): Promise<void> {
    const s = this.server;
    this.server = null;
    this.mode = 'down';
    if (s === null) return;
    s.closeAllConnections();
    await new Promise<void>((r) => s.close(() => r()));
  }

  /** Sets a behaviour; `down` kills, anything else (re)starts when down. */
  async set(mode: Mode): Promise<void> {
    if (mode === 'down') return this.kill();
    if (this.server === null) await this.start();
    this.mode = mode;
  }
}

/** The demo's upstreams, by name. */
export function demoUpstreams(): DemoUpstream[] {
  return [
    new DemoUpstream('payments-eu', 'payments'),
    new DemoUpstream('payments-us', 'payments'),
    new DemoUpstream('llm-a', 'llm'),
    new DemoUpstream('llm-b', 'llm'),
    new DemoUpstream('inventory-1', 'inventory'),
    new DemoUpstream('inventory-2', 'inventory'),
  ];
}
