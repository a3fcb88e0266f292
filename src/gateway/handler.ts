/**
 * The gateway's request handler: route match (404 problem+json), body limits (413), client
 * checks (401/429 with RateLimit headers), priority shedding, chaos, store-and-forward for keyed
 * writes, then the exchange with the response streamed to the client chunk by chunk.
 * @module
 */

import type { IncomingMessage, ServerResponse } from 'node:http';
import { Transform } from 'node:stream';
import type { RandomSource } from '../core/clock.js';
import { type ClientVerdict, checkClient } from './clients.js';
import { Exchange, type Sink } from './exchange.js';
import { FastResponse } from './h1-server.js';
import { downstreamHeaders, requestIdOf, sendProblem, upstreamHeaders } from './http.js';
import type { Route } from './route.js';
import { resetRequest } from './route-chaos.js';

/** What one request leaves in the access log. */
export interface AccessEntry {
  requestId: string;
  method: string;
  path: string;
  route: string | null;
  upstream: string | null;
  endpoint: string | null;
  status: number;
  durationMs: number;
  attempts: number;
  policies: string[];
}

/** The store-and-forward hook (src/gateway/store-and-forward.ts). */
// Deliberate repetition: the hook's signature, which store-and-forward.ts implements with the
// same parameter list.
export interface WriteKeeper {
  /** Handles a keyed write on a store-and-forward route (the body is buffered). */
  handle(
    route: Route,
    req: IncomingMessage,
    res: ServerResponse,
    body: Buffer,
    request: { method: string; path: string; headers: string[] },
    requestId: string,
    done: (status: number, notes: string[]) => void,
  ): void;
  /** Serves GET <opsPrefix>/<id>; false when `path` is not a status URL. */
  status(path: string, res: ServerResponse): boolean;
}

/** The state a handler serves from; swapped whole on reload. */
export interface HandlerState {
  readonly routes: readonly Route[];
  readonly trusted: (address: string) => boolean;
  readonly maxBodyBytes: number;
  readonly verify: ((token: string) => Promise<Record<string, unknown>>) | null;
  readonly apiKeyHeader: string;
  readonly keeper: WriteKeeper | null;
  readonly log: ((entry: AccessEntry) => void) | null;
  readonly random: RandomSource;
}

const WRITE = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);
const PRIORITIES = { critical: 0, high: 1.5, normal: 1, low: 0.5 } as const;

class ClientSink implements Sink {
  sse = false;
  private ended = false;
  constructor(
    private readonly res: ServerResponse,
    private readonly route: Route,
    private readonly requestId: string,
    private readonly extra: Record<string, string> | null,
  ) {}
  start(status: number, headers: Record<string, string | string[] | undefined>): boolean {
    const res = this.res;
    // The lean front end's response (listener.ts passes it for node:http's; see h1-server.ts).
    const fast: unknown = res;
    if (fast instanceof FastResponse) {
      // The lean front end writes the upstream's headers as they are (no copy); ours after them.
      const own: Record<string, string> = {};
      // As downstreamHeaders does: ours unless the upstream's is passed on (not removed by the route).
      if (headers['x-request-id'] === undefined || this.route.responseRemove?.has('x-request-id') === true)
        own['x-request-id'] = this.requestId;
      const add = this.route.responseAdd;
      if (add !== null) for (const [k, v] of add) own[k] = v;
      if (this.extra !== null) Object.assign(own, this.extra);
      const ct = own['content-type'] ?? headers['content-type'];
      this.sse = typeof ct === 'string' && ct.startsWith('text/event-stream');
      fast.writeProxiedHead(status, headers, this.route.responseRemove, own);
    } else {
      const h = downstreamHeaders(headers, this.requestId, this.route.responseRemove, this.route.responseAdd);
      if (this.extra !== null) Object.assign(h, this.extra);
      const ct = h['content-type'];
      this.sse = typeof ct === 'string' && ct.startsWith('text/event-stream');
      res.writeHead(status, h);
    }
    // A stream's head goes out at once; with its first event when that came in the same read.
    if (this.sse)
      queueMicrotask(() => {
        if (!res.headersSent && !res.destroyed) res.flushHeaders();
      });
    return true;
  }
  data(chunk: Buffer, last?: boolean): boolean {
    if (last === true) {
      this.ended = true;
      this.res.end(chunk); // head and body in one write
      return true;
    }
    return this.res.write(chunk);
  }
  onDrain(resume: () => void): void {
    this.res.once('drain', resume);
  }
  end(): void {
    if (!this.ended) this.res.end();
  }
  broken(error: Error): void {
    const res = this.res;
    if (this.sse && !res.destroyed) {
      const data = JSON.stringify({
        error: { type: 'upstream_stream_broken', message: error.message, requestId: this.requestId },
      });
      // The error event, then the connection is cut: never a clean end of a broken stream.
      res.write(`event: error\ndata: ${data}\n\n`, () => res.destroy());
      return;
    }
    res.destroy();
  }
  fail(status: number, title: string, detail: string): void {
    sendProblem(
      this.res,
      status,
      title,
      detail,
      { requestId: this.requestId },
      { 'x-request-id': this.requestId },
    );
  }
}

function limitBody(max: number, onTooLarge: () => void): Transform {
  let n = 0;
  return new Transform({
    transform(chunk: Buffer, _enc, cb) {
      n += chunk.length;
      if (n > max) {
        onTooLarge();
        cb(new Error('request body too large'));
        return;
      }
      cb(null, chunk);
    },
  });
}

function readBody(req: IncomingMessage, max: number): Promise<Buffer | null> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let n = 0;
    req.on('data', (c: Buffer) => {
      n += c.length;
      if (n > max) {
        req.removeAllListeners('data');
        req.resume();
        resolve(null);
        return;
      }
      chunks.push(c);
    });
    req.on('end', () => resolve(Buffer.concat(chunks, n)));
    req.on('error', reject);
  });
}

/**
 * Makes the `request` listener of the gateway's server. `state()` is read once per request, so a
 * reload swaps it atomically and requests in flight finish on the state they started with.
 */
export function createHandler(
  state: () => HandlerState,
): (req: IncomingMessage, res: ServerResponse) => void {
  return (req, res) => {
    const t0 = performance.now();
    const s = state();
    const method = req.method ?? 'GET';
    const url = req.url ?? '/';
    const q = url.indexOf('?');
    const path = q < 0 ? url : url.slice(0, q);
    const query = q < 0 ? '' : url.slice(q);
    const requestId = requestIdOf(req);
    let route: Route | null = null;
    let forwardPath: string | null = null;
    for (const r of s.routes) {
      forwardPath = r.matcher.match(method, req.headers.host ?? '', path, query, req.headers);
      if (forwardPath !== null) {
        route = r;
        break;
      }
    }
    const entry: AccessEntry = {
      requestId,
      method,
      path,
      route: route?.name ?? null,
      upstream: route?.upstream.name ?? null,
      endpoint: null,
      status: 0,
      durationMs: 0,
      attempts: 0,
      policies: [],
    };
    let release: (() => void) | null = null; // a bulkhead slot held by this request
    const done = (status: number) => {
      if (entry.status !== 0) return;
      if (release !== null) {
        release();
        release = null;
      }
      entry.status = status;
      entry.durationMs = Math.round((performance.now() - t0) * 1000) / 1000;
      if (route !== null) {
        route.inFlight--;
        route.observe(status, entry.durationMs / 1000);
      }
      s.log?.(entry);
    };
    if (route === null || forwardPath === null) {
      if (method === 'GET' && s.keeper?.status(path, res) === true) return;
      sendProblem(
        res,
        404,
        'No route',
        `no route matches ${method} ${path}`,
        { requestId },
        { 'x-request-id': requestId },
      );
      s.log?.({ ...entry, status: 404, durationMs: performance.now() - t0 });
      return;
    }
    const r = route;
    r.inFlight++;
    r.count('requests');
    const fail = (status: number, title: string, detail: string, headers: Record<string, string> = {}) => {
      sendProblem(res, status, title, detail, { requestId }, { 'x-request-id': requestId, ...headers });
      done(status);
    };
    const length = Number(req.headers['content-length'] ?? 0);
    if (length > s.maxBodyBytes) {
      req.resume();
      fail(
        413,
        'Request body too large',
        `the body has ${length} bytes; this gateway takes at most ${s.maxBodyBytes}`,
        { connection: 'close' },
      );
      return;
    }
    // Priority classes and shedding.
    const pr = r.config.priority;
    if (pr?.shedAt !== undefined) {
      const given = req.headers[pr.header];
      const cls = (
        typeof given === 'string' && given in PRIORITIES ? given : pr.default
      ) as keyof typeof PRIORITIES;
      if (r.inFlight > pr.shedAt * (cls === 'critical' ? Number.POSITIVE_INFINITY : PRIORITIES[cls])) {
        r.count('shed', { priority: cls });
        entry.policies.push(`shed:${cls}`);
        req.resume();
        fail(503, 'Shed', `the gateway is overloaded and shed this ${cls}-priority request; retry later`, {
          'retry-after': '1',
        });
        return;
      }
      if (cls === 'critical' && r.inFlight > pr.shedAt) r.count('criticalBypass');
    }
    const proceed = (extra: Record<string, string> | null, admitted?: boolean) => {
      const policies = r.policies;
      if (admitted !== true && policies !== null && policies.bulkhead !== null) {
        policies.admit(
          res,
          (slot) => {
            release = slot;
            proceed(extra, true);
          },
          (retryAfter) => {
            entry.policies.push('bulkheadFull');
            req.resume();
            fail(503, 'Bulkhead full', `route ${r.name} is at its concurrency limit; retry later`, {
              'retry-after': retryAfter,
            });
          },
          () => done(499),
        );
        return;
      }
      const chaos = r.chaos;
      if (chaos === null) return forward(extra, undefined);
      const a = chaos.decide(s.random);
      if (a.type === 'none') return forward(extra, undefined);
      entry.policies.push('chaos');
      if (a.type === 'reset') {
        resetRequest(req, res);
        done(0);
        return;
      }
      if (a.latencyMs > 0) setTimeout(() => forward(extra, a.status), a.latencyMs);
      else forward(extra, a.status);
    };
    const forward = (extra: Record<string, string> | null, chaosStatus: number | undefined) => {
      if (chaosStatus !== undefined) {
        req.resume();
        fail(chaosStatus, 'Chaos', `route ${r.name} injects ${chaosStatus}`);
        return;
      }
      const headers = upstreamHeaders(req, {
        requestId,
        upstreamHost: '',
        trusted: s.trusted(req.socket.remoteAddress ?? ''),
        remove: r.requestRemove,
        add: r.requestAdd,
      });
      const hasBody = length > 0 || req.headers['transfer-encoding'] !== undefined;
      const key = req.headers['idempotency-key'];
      const keyed = typeof key === 'string' && key.length > 0;
      if (keyed && r.config.storeAndForward && WRITE.has(method) && s.keeper !== null) {
        const keeper = s.keeper;
        readBody(req, s.maxBodyBytes).then(
          (body) => {
            if (body === null)
              return fail(
                413,
                'Request body too large',
                `this gateway takes at most ${s.maxBodyBytes} bytes`,
              );
            keeper.handle(
              r,
              req,
              res,
              body,
              { method, path: forwardPath!, headers },
              requestId,
              (status, notes) => {
                entry.policies.push(...notes);
                done(status);
              },
            );
          },
          () => done(0),
        );
        return;
      }
      const retryable = r.retry !== null && r.retry.maxAttempts > 1;
      const buffer = hasBody && retryable && length <= (r.retry?.bufferBytes ?? 0);
      const start = (body: Buffer | IncomingMessage | Transform | null, replayable: boolean) => {
        const sink = new ClientSink(res, r, requestId, extra);
        const p = r.policies;
        if (p !== null && body === null && p.methods.has(method)) {
          p.forward({
            method,
            path: forwardPath!,
            host: req.headers.host ?? '',
            headers,
            request: req.headers,
            res,
            sink,
            random: s.random,
            t0,
            keyed,
            notes: entry.policies,
            done: (status, attempts, endpoint) => {
              entry.attempts = attempts;
              entry.endpoint = endpoint;
              done(status);
            },
          });
          return;
        }
        const x = new Exchange(
          r,
          { method, path: forwardPath!, headers, body, replayable, hasIdempotencyKey: keyed },
          sink,
          s.random,
          (ex) => {
            entry.attempts = ex.report.attempts;
            entry.endpoint = ex.report.endpoint;
            entry.policies.push(...ex.report.notes);
            if (ex.report.status !== 499) done(ex.report.status);
          },
          t0,
        );
        res.on('close', () => {
          if (!res.writableFinished) {
            x.abort();
            done(499);
          }
        });
        x.run();
      };
      if (!hasBody) start(null, true);
      else if (buffer && length > 0) {
        readBody(req, s.maxBodyBytes).then(
          (body) =>
            body === null
              ? fail(413, 'Request body too large', `at most ${s.maxBodyBytes} bytes`)
              : start(body, true),
          () => done(0),
        );
      } else if (length > 0) start(req, false);
      else
        start(
          req.pipe(
            limitBody(s.maxBodyBytes, () =>
              fail(413, 'Request body too large', `at most ${s.maxBodyBytes} bytes`),
            ),
          ),
          false,
        );
    };
    if (r.limits.length === 0) {
      proceed(null);
      return;
    }
    const onVerdict = (v: ClientVerdict) => {
      if (v.ok) return proceed(v.headers);
      if (v.status === 429) {
        r.count('rateLimited');
        entry.policies.push('rateLimited');
      }
      req.resume();
      fail(v.status, v.status === 429 ? 'Too many requests' : 'Unauthorized', v.detail, v.headers);
    };
    const verdict = checkClient(r, req, s.trusted(req.socket.remoteAddress ?? ''), s.verify, s.apiKeyHeader);
    if (verdict instanceof Promise)
      verdict.then(onVerdict, (error: unknown) => fail(500, 'Client check failed', (error as Error).message));
    else onVerdict(verdict);
  };
}
