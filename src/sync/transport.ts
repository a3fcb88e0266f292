/**
 * How a sync client reaches its server. `httpTransport` speaks the HTTP protocol of http.ts;
 * `localTransport` calls a `SyncServer` in the same process (tests, examples) and can be switched
 * offline. Failures to reach the server are `TRANSPORT` errors (retried, the operations stay in
 * the outbox); a request the server refuses as malformed is marked non-retryable.
 * @module
 */

import { nonRetryable } from '../core/errors.js';
import { BulwarkSyncError, SyncRateLimitedError } from './errors.js';
import type { PullResponse, PushResponse } from './protocol.js';
import type { SyncOperation } from './record.js';
import type { SyncServer } from './server.js';

/** A connection to a sync server. */
export interface SyncTransport {
  push(ops: readonly SyncOperation[], signal: AbortSignal): Promise<PushResponse>;
  pull(cursor: number, limit: number, signal: AbortSignal): Promise<PullResponse>;
}

/** Options of `httpTransport()`. */
export interface HttpTransportOptions {
  /** The server's sync base URL, e.g. `https://api.example/sync`. */
  url: string;
  /** Sent as `x-sync-client`. */
  clientId: string;
  /** Extra headers (authentication). */
  headers?: Readonly<Record<string, string>>;
  /** The fetch to use. Default `globalThis.fetch`. */
  fetch?: typeof fetch;
}

async function call<T>(f: typeof fetch, url: string, init: RequestInit): Promise<T> {
  let res: Response;
  try {
    res = await f(url, init);
  } catch (error) {
    if ((init.signal as AbortSignal | undefined)?.aborted === true) throw error;
    throw new BulwarkSyncError('TRANSPORT', `Sync server unreachable (${url}): ${(error as Error).message}`, {
      cause: error,
    });
  }
  const text = await res.text().catch(() => '');
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    body = undefined;
  }
  if (res.ok) return body as T;
  const err = (body as { error?: { code?: string; message?: string; retryAfterMs?: number } } | undefined)
    ?.error;
  if (res.status === 429) {
    throw new SyncRateLimitedError(
      'self',
      err?.retryAfterMs ?? Number(res.headers.get('retry-after') ?? 1) * 1000,
    );
  }
  const message = `Sync server answered ${res.status}: ${err?.message ?? text.slice(0, 200)}`;
  if (res.status >= 400 && res.status < 500 && res.status !== 408) {
    throw nonRetryable(new BulwarkSyncError('BAD_REQUEST', message));
  }
  throw new BulwarkSyncError('TRANSPORT', message);
}

/**
 * A transport over HTTP (fetch).
 *
 * @example
 * ```ts
 * import { httpTransport } from 'bulwark/sync';
 * const transport = httpTransport({ url: 'http://127.0.0.1:8080/sync', clientId: 'phone-1' });
 * ```
 */
export function httpTransport(options: HttpTransportOptions): SyncTransport {
  const f = options.fetch ?? globalThis.fetch;
  const base = options.url.replace(/\/+$/, '');
  const headers = {
    'content-type': 'application/json',
    'x-sync-client': options.clientId,
    ...options.headers,
  };
  return {
    push: (ops, signal) =>
      call<PushResponse>(f, `${base}/push`, {
        method: 'POST',
        headers,
        body: JSON.stringify({ ops }),
        signal,
      }),
    pull: (cursor, limit, signal) =>
      call<PullResponse>(f, `${base}/pull?cursor=${cursor}&limit=${limit}`, {
        method: 'GET',
        headers,
        signal,
      }),
  };
}

/** A transport to a server in the same process; `online = false` makes it fail like a lost network. */
export interface LocalTransport extends SyncTransport {
  online: boolean;
}

/**
 * A transport calling `server` directly (JSON round-trip included, so nothing is shared by
 * reference).
 *
 * @example
 * ```ts
 * import { localTransport, memorySyncStore, syncServer } from 'bulwark/sync';
 * const transport = localTransport(syncServer({ store: memorySyncStore() }), 'phone-1');
 * transport.online = false; // the device goes offline
 * ```
 */
export function localTransport(server: SyncServer, clientId: string): LocalTransport {
  const copy = <T>(v: T): T => JSON.parse(JSON.stringify(v)) as T;
  // As over HTTP: a request the server refuses as malformed is not worth retrying.
  const refuse = (error: unknown): never => {
    throw error instanceof BulwarkSyncError && error.code === 'BAD_REQUEST' ? nonRetryable(error) : error;
  };
  const t: LocalTransport = {
    online: true,
    async push(ops) {
      if (!t.online) throw new BulwarkSyncError('TRANSPORT', 'Offline (local transport switched off)');
      return copy(await server.push(clientId, copy({ ops })).catch(refuse));
    },
    async pull(cursor, limit) {
      if (!t.online) throw new BulwarkSyncError('TRANSPORT', 'Offline (local transport switched off)');
      return copy(await server.pull(clientId, { cursor, limit }).catch(refuse));
    },
  };
  return t;
}
