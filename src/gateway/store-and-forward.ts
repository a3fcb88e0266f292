/**
 * Store-and-forward of writes with an Idempotency-Key (draft-ietf-httpapi-idempotency-key-header),
 * the ONLY place the gateway uses the durable queue:
 *
 * - the first request is delivered now if it can be; otherwise (connect errors, 5xx, 429, breaker
 *   open) it is written to the durable queue (SQLite in `dataDir`, or PostgreSQL with `postgres`,
 *   shared by a fleet: src/gateway/fleet.ts) and answered `202 Accepted` with
 *   `Location: /_bulwark/ops/<id>`;
 * - the same key while the first is in flight → 409 with Retry-After; the same key with another
 *   payload (SHA-256 of method, path and body) → 422; a repeat while queued → the same 202 with
 *   `Idempotent-Replayed: true`; after completion → the stored response, replayed (24 h);
 * - a worker delivers queued writes in order (one at a time), retries with backoff, and
 *   dead-letters after the limit; `GET /_bulwark/ops/<id>` says pending / delivered / dead with
 *   the upstream's status.
 * @module
 */

import { createHash } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { backoff } from '../core/backoff.js';
import { nonRetryable } from '../core/errors.js';
import type { Registry } from '../core/registry.js';
import { openQueue, type Queue } from '../durable/queue.js';
import type { GatewayConfig } from './config.js';
import { Exchange, type Sink } from './exchange.js';
import { Fleet } from './fleet.js';
import type { WriteKeeper } from './handler.js';
import { sendProblem } from './http.js';
import type { IdempotencyRecord } from './idempotency-records.js';
import type { Route } from './route.js';
import type { Endpoint, Upstream } from './upstream.js';

const OPS = '/_bulwark/ops/';
const RETENTION_MS = 24 * 3600 * 1000;
const MAX_ATTEMPTS = 25;
/** An in-flight claim outlives the route's timeout by this much (a crashed instance's claim expires). */
const INFLIGHT_GRACE_MS = 30_000;

interface Payload {
  scope: string;
  /** Absent in writes queued by older versions. */
  fingerprint?: string;
  route: string;
  upstream: string;
  method: string;
  path: string;
  headers: string[];
  body: string; // base64
}

/** The keeper with its lifecycle. */
export interface WriteKeeperHandle extends WriteKeeper {
  setUpstreams(get: () => ReadonlyMap<string, Upstream>): void;
  close(): Promise<void>;
}

const KEEP_HEADERS = new Set(['content-type', 'location', 'etag', 'cache-control']);

class BufferSink implements Sink {
  status = 0;
  headers: Record<string, string> = {};
  chunks: Buffer[] = [];
  outcome: 'pending' | 'delivered' | 'undeliverable' | 'broken' = 'pending';
  constructor(private readonly settle: (s: BufferSink) => void) {}
  start(status: number, headers: Record<string, string | string[] | undefined>): boolean {
    if (status >= 500 || status === 429) return false;
    this.status = status;
    for (const [k, v] of Object.entries(headers))
      if (KEEP_HEADERS.has(k) && typeof v === 'string') this.headers[k] = v;
    return true;
  }
  data(chunk: Buffer): boolean {
    this.chunks.push(chunk);
    return true;
  }
  onDrain(): void {}
  end(): void {
    this.outcome = 'delivered';
    this.settle(this);
  }
  broken(): void {
    this.outcome = 'broken';
    this.settle(this);
  }
  fail(): void {
    this.outcome = 'undeliverable';
    this.settle(this);
  }
}

function keyOf(req: IncomingMessage): string {
  const raw = String(req.headers['idempotency-key'] ?? '');
  return raw.startsWith('"') && raw.endsWith('"') && raw.length >= 2 ? raw.slice(1, -1) : raw;
}

/**
 * Opens the queue and the idempotency records (the fleet's: PostgreSQL when `postgres` is set,
 * else SQLite in `dataDir`), and starts the delivery worker.
 */
export async function openWriteKeeper(
  config: GatewayConfig,
  initial: () => ReadonlyMap<string, Upstream>,
  registry: Registry,
  fleet?: Fleet,
): Promise<WriteKeeperHandle> {
  let upstreams = initial;
  const ownFleet = fleet === undefined ? await Fleet.open(config) : null;
  const { store, records } = await (fleet ?? ownFleet!).writeStore();
  const queue: Queue<Payload> = await openQueue<Payload>({
    name: 'gateway-writes',
    store,
    // On the admin API, the dashboard and /metrics as a `durableQueue`: pending, dead, oldest age.
    registry,
    statsIntervalMs: 5_000,
    maxAttempts: MAX_ATTEMPTS,
    backoff: backoff.exponential({ initialMs: 200, maxMs: 5_000, jitter: 'full' }),
  });
  const settle = (
    scope: string,
    fingerprint: string,
    state: IdempotencyRecord['state'] & ('pending' | 'delivered' | 'dead'),
    opId: string,
    status: number | null,
    headers: Record<string, string> | null,
    body: Buffer | null,
    overInflightOnly = false,
  ) =>
    records.settle({
      scope,
      fingerprint,
      state,
      opId,
      status,
      headers,
      body,
      expires: Date.now() + RETENTION_MS,
      overInflightOnly,
    });

  const replay = (res: ServerResponse, row: IdempotencyRecord) => {
    const headers: Record<string, string> = { ...(row.headers ?? {}), 'idempotent-replayed': 'true' };
    if (row.state === 'pending') return accepted(res, row.opId, true);
    if (row.status === null)
      return sendProblem(
        res,
        502,
        'Delivery failed',
        `operation ${row.opId} is dead`,
        { id: row.opId },
        headers,
      );
    res.writeHead(row.status, headers);
    res.end(row.body ?? undefined);
  };
  const accepted = (res: ServerResponse, id: string, replayed: boolean) => {
    const body = JSON.stringify({ id, state: 'pending', statusUrl: `${OPS}${id}` });
    res.writeHead(202, {
      'content-type': 'application/json',
      location: `${OPS}${id}`,
      ...(replayed ? { 'idempotent-replayed': 'true' } : {}),
    });
    res.end(body);
  };
  const unavailable = (
    res: ServerResponse,
    error: unknown,
    done: (status: number, notes: string[]) => void,
  ) => {
    sendProblem(
      res,
      503,
      'Idempotency records unavailable',
      `the write was not sent: ${(error as Error).message}; retry with the same Idempotency-Key`,
      {},
      { 'retry-after': '1' },
    );
    done(503, ['recordsFailed']);
  };

  const worker = queue.work(
    async (job, { signal }) => {
      const p = job.payload;
      const fp = p.fingerprint ?? '';
      const up = upstreams().get(p.upstream);
      if (up === undefined) throw nonRetryable(new Error(`upstream ${p.upstream} no longer exists`));
      // One attempt tries each endpoint of the group once (the next only after a connect error,
      // a 5xx or a 429), and tells the group how each went (outlier detection learns from it).
      const tried: Endpoint[] = [];
      let status = 0;
      let lastError = '';
      while (tried.length < up.endpoints.length && !signal.aborted) {
        const t0 = performance.now();
        const ep = up.pick(tried, t0);
        if (tried.includes(ep)) break;
        tried.push(ep);
        p.headers[1] = ep.url.slice(ep.url.indexOf('//') + 2);
        status = 0;
        try {
          const r = await ep.pool.request({
            method: p.method as 'POST',
            path: p.path,
            headers: p.headers,
            body: Buffer.from(p.body, 'base64'),
            signal,
            headersTimeout: 10_000,
            bodyTimeout: 10_000,
          });
          const body = Buffer.from(await r.body.arrayBuffer());
          status = r.statusCode;
          const now = performance.now();
          if (status < 500 && status !== 429) {
            up.record(ep, 'success', now - t0, now);
            const headers: Record<string, string> = {};
            for (const [k, v] of Object.entries(r.headers))
              if (KEEP_HEADERS.has(k) && typeof v === 'string') headers[k] = v;
            await settle(p.scope, fp, 'delivered', job.id, status, headers, body);
            return;
          }
          if (status >= 500)
            up.record(ep, status >= 502 && status <= 504 ? 'gatewayError' : 'error5xx', now - t0, now);
          lastError = `${ep.name} answered ${status}`;
        } catch (error) {
          const now = performance.now();
          up.record(ep, 'gatewayError', now - t0, now);
          lastError = `${ep.name}: ${(error as Error).message}`;
        }
      }
      if (job.attempt >= job.maxAttempts)
        await settle(p.scope, fp, 'dead', job.id, status === 0 ? null : status, null, null);
      throw new Error(lastError);
    },
    { concurrency: 1, pollMs: 250, leaseMs: 5_000 },
  );
  const sweep = setInterval(() => void records.purge(Date.now()).catch(() => {}), 600_000);
  sweep.unref();

  return {
    setUpstreams(get) {
      upstreams = get;
    },
    status(path, res) {
      if (!path.startsWith(OPS)) return false;
      const id = path.slice(OPS.length);
      records.byOp(id).then(
        (row) => {
          if (row === undefined || row.state === 'inflight') {
            sendProblem(res, 404, 'Unknown operation', `no operation ${id} (kept 24 h)`);
            return;
          }
          res.writeHead(200, { 'content-type': 'application/json' });
          res.end(JSON.stringify({ id, state: row.state, status: row.status }));
        },
        (error: unknown) =>
          sendProblem(res, 503, 'Status unavailable', (error as Error).message, {}, { 'retry-after': '1' }),
      );
      return true;
    },
    handle(route: Route, req, res, body, request, requestId, done) {
      const key = keyOf(req);
      if (key.length === 0 || key.length > 255) {
        sendProblem(res, 400, 'Bad Idempotency-Key', 'the Idempotency-Key must be 1-255 characters');
        return done(400, ['idempotency:badKey']);
      }
      // A unit separator (PostgreSQL text holds no NUL).
      const scope = `${route.name}\u001f${key}`;
      const fingerprint = createHash('sha256')
        .update(`${request.method}\n${request.path}\n`)
        .update(body)
        .digest('hex');
      const now = Date.now();
      records
        .claim(scope, fingerprint, requestId, now + route.config.timeoutMs + INFLIGHT_GRACE_MS, now)
        .then(
          (row) => {
            if (row === null) return send(route, res, body, request, requestId, done, scope, fingerprint);
            if (row.fingerprint !== '' && row.fingerprint !== fingerprint) {
              sendProblem(
                res,
                422,
                'Idempotency-Key reused',
                'this Idempotency-Key was used with another payload; use a new key',
              );
              return done(422, ['idempotency:mismatch']);
            }
            if (row.state === 'inflight') {
              sendProblem(
                res,
                409,
                'Request in flight',
                'a request with this Idempotency-Key is being processed; retry later',
                {},
                { 'retry-after': '1' },
              );
              return done(409, ['idempotency:inFlight']);
            }
            replay(res, row);
            done(row.state === 'pending' ? 202 : (row.status ?? 502), ['idempotency:replayed']);
          },
          (error: unknown) => unavailable(res, error, done),
        );
    },
    async close() {
      clearInterval(sweep);
      await worker.stop({ graceMs: 2_000 });
      await queue.close();
      await records.close();
      await ownFleet?.close();
    },
  };

  /** The first request of a key: delivered now, or queued and answered 202. */
  function send(
    route: Route,
    res: ServerResponse,
    body: Buffer,
    request: { method: string; path: string; headers: string[] },
    requestId: string,
    done: (status: number, notes: string[]) => void,
    scope: string,
    fingerprint: string,
  ): void {
    const sink = new BufferSink((s) => {
      if (s.outcome === 'delivered') {
        const out = Buffer.concat(s.chunks);
        const answer = () => {
          res.writeHead(s.status, { ...s.headers, 'x-request-id': requestId });
          res.end(out);
          done(s.status, []);
        };
        // Answered even if the record cannot be written: the upstream has the write.
        settle(scope, fingerprint, 'delivered', requestId, s.status, s.headers, out).then(answer, answer);
        return;
      }
      if (s.outcome === 'broken') {
        void records.release(scope).catch(() => {});
        sendProblem(
          res,
          502,
          'Bad gateway',
          'the upstream response broke; retry with the same Idempotency-Key',
        );
        return done(502, ['broken']);
      }
      const payload: Payload = {
        scope,
        fingerprint,
        route: route.name,
        upstream: route.upstream.name,
        method: request.method,
        path: request.path,
        headers: request.headers,
        body: body.toString('base64'),
      };
      queue
        .enqueue(payload, { key: scope })
        .then(async ({ id }) => {
          // Only over the in-flight claim: a worker (here or elsewhere) may have delivered it already.
          await settle(scope, fingerprint, 'pending', id, null, null, null, true).catch(() => {});
          route.count('queued', { id });
          accepted(res, id, false);
          done(202, ['queued']);
        })
        .catch((error: unknown) => {
          void records.release(scope).catch(() => {});
          sendProblem(
            res,
            503,
            'Cannot keep the write',
            `the write queue refused it: ${(error as Error).message}`,
          );
          done(503, ['queueFailed']);
        });
    });
    new Exchange(
      route,
      {
        method: request.method,
        path: request.path,
        headers: request.headers,
        body,
        replayable: true,
        hasIdempotencyKey: true,
      },
      sink,
      Math.random,
      () => {},
      performance.now(),
    ).run();
  }
}
