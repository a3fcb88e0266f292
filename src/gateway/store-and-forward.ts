/**
 * Store-and-forward of writes with an Idempotency-Key (draft-ietf-httpapi-idempotency-key-header),
 * the ONLY place the gateway uses the durable queue:
 *
 * - the first request is delivered now if it can be; otherwise (connect errors, 5xx, 429, breaker
 *   open) it is written to the durable queue (SQLite in `dataDir`, or PostgreSQL with `postgres`)
 *   and answered `202 Accepted` with `Location: /_bulwark/ops/<id>`;
 * - the same key while the first is in flight → 409 with Retry-After; the same key with another
 *   payload (SHA-256 of method, path and body) → 422; a repeat while queued → the same 202 with
 *   `Idempotent-Replayed: true`; after completion → the stored response, replayed (24 h);
 * - a worker delivers queued writes in order (one at a time), retries with backoff, and
 *   dead-letters after the limit; `GET /_bulwark/ops/<id>` says pending / delivered / dead with
 *   the upstream's status.
 * @module
 */

import { createHash } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { join } from 'node:path';
import { backoff } from '../core/backoff.js';
import { nonRetryable } from '../core/errors.js';
import type { Registry } from '../core/registry.js';
import { openQueue, type Queue } from '../durable/queue.js';
import { storeFromSpec } from '../durable/store-spec.js';
import type { GatewayConfig } from './config.js';
import { Exchange, type Sink } from './exchange.js';
import type { WriteKeeper } from './handler.js';
import { sendProblem } from './http.js';
import type { Route } from './route.js';
import type { Upstream } from './upstream.js';

const OPS = '/_bulwark/ops/';
const RETENTION_MS = 24 * 3600 * 1000;
const MAX_ATTEMPTS = 25;

interface Payload {
  scope: string;
  route: string;
  upstream: string;
  method: string;
  path: string;
  headers: string[];
  body: string; // base64
}

interface RecordRow {
  scope: string;
  fingerprint: string;
  state: 'pending' | 'delivered' | 'dead';
  op_id: string;
  status: number | null;
  headers: string | null;
  body: Buffer | null;
  expires: number;
}

/** The keeper with its lifecycle. */
export interface WriteKeeperHandle extends WriteKeeper {
  setUpstreams(get: () => ReadonlyMap<string, Upstream>): void;
  close(): Promise<void>;
}

type Db = import('better-sqlite3').Database;

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

/** Opens the queue and the record table, and starts the delivery worker. */
export async function openWriteKeeper(
  config: GatewayConfig,
  initial: () => ReadonlyMap<string, Upstream>,
  _registry: Registry,
): Promise<WriteKeeperHandle> {
  let upstreams = initial;
  mkdirSync(config.dataDir, { recursive: true });
  const Sqlite = (await import('better-sqlite3')).default;
  const db: Db = new Sqlite(join(config.dataDir, 'gateway-idempotency.db'));
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = FULL');
  db.exec(`CREATE TABLE IF NOT EXISTS idempotency (
    scope TEXT PRIMARY KEY, fingerprint TEXT NOT NULL, state TEXT NOT NULL, op_id TEXT NOT NULL,
    status INTEGER, headers TEXT, body BLOB, expires INTEGER NOT NULL);
    CREATE INDEX IF NOT EXISTS idempotency_op ON idempotency(op_id);`);
  const getRow = db.prepare<[string], RecordRow>('SELECT * FROM idempotency WHERE scope = ?');
  const getOp = db.prepare<[string], RecordRow>('SELECT * FROM idempotency WHERE op_id = ?');
  const upsert = db.prepare(
    'INSERT INTO idempotency (scope, fingerprint, state, op_id, status, headers, body, expires) VALUES (@scope, @fingerprint, @state, @op_id, @status, @headers, @body, @expires) ON CONFLICT(scope) DO UPDATE SET state = excluded.state, status = excluded.status, headers = excluded.headers, body = excluded.body, expires = excluded.expires',
  );
  const purge = db.prepare('DELETE FROM idempotency WHERE expires < ?');
  const store = storeFromSpec(config.postgres ?? `sqlite:${join(config.dataDir, 'gateway-queue.db')}`);
  const queue: Queue<Payload> = await openQueue<Payload>({
    name: 'gateway-writes',
    store,
    maxAttempts: MAX_ATTEMPTS,
    backoff: backoff.exponential({ initialMs: 200, maxMs: 5_000, jitter: 'full' }),
  });
  const inflight = new Map<string, string>();

  const save = (
    scope: string,
    fingerprint: string,
    state: RecordRow['state'],
    opId: string,
    status: number | null,
    headers: Record<string, string> | null,
    body: Buffer | null,
  ) =>
    upsert.run({
      scope,
      fingerprint,
      state,
      op_id: opId,
      status,
      headers: headers === null ? null : JSON.stringify(headers),
      body,
      expires: Date.now() + RETENTION_MS,
    });

  const replay = (res: ServerResponse, row: RecordRow) => {
    const headers: Record<string, string> = {
      ...(row.headers === null ? {} : (JSON.parse(row.headers) as Record<string, string>)),
      'idempotent-replayed': 'true',
    };
    if (row.state === 'pending') return accepted(res, row.op_id, true);
    if (row.status === null)
      return sendProblem(
        res,
        502,
        'Delivery failed',
        `operation ${row.op_id} is dead`,
        { id: row.op_id },
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

  const worker = queue.work(
    async (job, { signal }) => {
      const p = job.payload;
      const up = upstreams().get(p.upstream);
      if (up === undefined) throw nonRetryable(new Error(`upstream ${p.upstream} no longer exists`));
      const ep = up.pick(null, performance.now());
      p.headers[1] = ep.url.slice(ep.url.indexOf('//') + 2);
      let status = 0;
      let lastError = '';
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
        if (status < 500 && status !== 429) {
          const headers: Record<string, string> = {};
          for (const [k, v] of Object.entries(r.headers))
            if (KEEP_HEADERS.has(k) && typeof v === 'string') headers[k] = v;
          const row = getRow.get(p.scope);
          save(p.scope, row?.fingerprint ?? '', 'delivered', job.id, status, headers, body);
          return;
        }
        lastError = `the upstream answered ${status}`;
      } catch (error) {
        lastError = (error as Error).message;
      }
      if (job.attempt >= job.maxAttempts) {
        const row = getRow.get(p.scope);
        save(p.scope, row?.fingerprint ?? '', 'dead', job.id, status === 0 ? null : status, null, null);
      }
      throw new Error(lastError);
    },
    { concurrency: 1, pollMs: 250, leaseMs: 5_000 },
  );
  const sweep = setInterval(() => purge.run(Date.now()), 600_000);
  sweep.unref();

  return {
    setUpstreams(get) {
      upstreams = get;
    },
    status(path, res) {
      if (!path.startsWith(OPS)) return false;
      const id = path.slice(OPS.length);
      const row = getOp.get(id);
      if (row === undefined) {
        sendProblem(res, 404, 'Unknown operation', `no operation ${id} (kept 24 h)`);
        return true;
      }
      const body = JSON.stringify({ id, state: row.state, status: row.status });
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(body);
      return true;
    },
    handle(route: Route, req, res, body, request, requestId, done) {
      const key = keyOf(req);
      if (key.length === 0 || key.length > 255) {
        sendProblem(res, 400, 'Bad Idempotency-Key', 'the Idempotency-Key must be 1-255 characters');
        return done(400, ['idempotency:badKey']);
      }
      const scope = `${route.name}\u0000${key}`;
      const fingerprint = createHash('sha256')
        .update(`${request.method}\n${request.path}\n`)
        .update(body)
        .digest('hex');
      const busy = inflight.get(scope);
      const row = busy === undefined ? getRow.get(scope) : undefined;
      const known = busy ?? row?.fingerprint;
      if (known !== undefined && known !== '' && known !== fingerprint) {
        sendProblem(
          res,
          422,
          'Idempotency-Key reused',
          'this Idempotency-Key was used with another payload; use a new key',
        );
        return done(422, ['idempotency:mismatch']);
      }
      if (busy !== undefined) {
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
      if (row !== undefined && row.expires > Date.now()) {
        replay(res, row);
        return done(row.state === 'pending' ? 202 : (row.status ?? 502), ['idempotency:replayed']);
      }
      inflight.set(scope, fingerprint);
      const sink = new BufferSink((s) => {
        if (s.outcome === 'delivered') {
          const out = Buffer.concat(s.chunks);
          save(scope, fingerprint, 'delivered', `${requestId}`, s.status, s.headers, out);
          inflight.delete(scope);
          res.writeHead(s.status, { ...s.headers, 'x-request-id': requestId });
          res.end(out);
          return done(s.status, []);
        }
        if (s.outcome === 'broken') {
          inflight.delete(scope);
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
          route: route.name,
          upstream: route.upstream.name,
          method: request.method,
          path: request.path,
          headers: request.headers,
          body: body.toString('base64'),
        };
        queue.enqueue(payload, { key: scope }).then(
          ({ id }) => {
            save(scope, fingerprint, 'pending', id, null, null, null);
            inflight.delete(scope);
            route.count('queued', { id });
            accepted(res, id, false);
            done(202, ['queued']);
          },
          (error: unknown) => {
            inflight.delete(scope);
            sendProblem(
              res,
              503,
              'Cannot keep the write',
              `the write queue refused it: ${(error as Error).message}`,
            );
            done(503, ['queueFailed']);
          },
        );
      });
      const x = new Exchange(
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
      );
      x.run();
    },
    async close() {
      clearInterval(sweep);
      await worker.stop({ graceMs: 2_000 });
      await queue.close();
      db.close();
    },
  };
}
