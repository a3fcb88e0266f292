/**
 * HTTP hygiene shared by the proxy: hop-by-hop headers, X-Forwarded-* with trusted proxies,
 * request ids, and RFC 9457 problem+json answers.
 * @module
 */

import { randomBytes } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { headerKey } from './header-name.js';

/** Hop-by-hop headers (RFC 9110 §7.6.1), never forwarded either way. */
const HOP = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'proxy-authenticate',
  'proxy-authorization',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
]);

/** True for a hop-by-hop header name (lower case), never forwarded either way. */
export function isHopByHop(name: string): boolean {
  return HOP.has(name);
}

/** Headers the gateway sets itself on the way up. */
const OWN = new Set([
  'host',
  'x-forwarded-for',
  'x-forwarded-proto',
  'x-forwarded-host',
  'forwarded',
  'x-request-id',
]);

let seq = 0;
const prefix = randomBytes(6).toString('hex');

/** A request id: the client's `x-request-id` when sane, else a new one. */
export function requestIdOf(req: IncomingMessage): string {
  const given = req.headers['x-request-id'];
  if (typeof given === 'string' && given.length > 0 && given.length <= 128 && /^[\w.:@/+=-]+$/.test(given))
    return given;
  seq = (seq + 1) % 0x7fffffff;
  return `${prefix}${seq.toString(16).padStart(8, '0')}`;
}

/** Options of `upstreamHeaders`. */
export interface ForwardOptions {
  readonly requestId: string;
  readonly upstreamHost: string;
  readonly trusted: boolean;
  readonly remove: ReadonlySet<string> | null;
  readonly add: readonly (readonly [string, string])[] | null;
}

/**
 * The headers sent upstream, as a flat [name, value, …] list: the client's minus hop-by-hop ones
 * (and those its Connection header names), `Host` set to the upstream's, X-Forwarded-For /
 * -Proto / -Host (a client's own values are kept only when it is a trusted proxy), the request
 * id, and the route's additions and removals.
 */
export function upstreamHeaders(req: IncomingMessage, o: ForwardOptions): string[] {
  const raw = req.rawHeaders;
  const out: string[] = ['host', o.upstreamHost];
  const conn = req.headers.connection;
  const named =
    conn !== undefined && conn !== 'keep-alive' && conn !== 'close'
      ? new Set(conn.toLowerCase().split(/\s*,\s*/))
      : null;
  let xff: string | undefined;
  let proto: string | undefined;
  let fhost: string | undefined;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!;
    const lower = headerKey(name) ?? name.toLowerCase();
    if (HOP.has(lower) || OWN.has(lower)) {
      if (o.trusted) {
        if (lower === 'x-forwarded-for') xff = xff === undefined ? raw[i + 1] : `${xff}, ${raw[i + 1]}`;
        else if (lower === 'x-forwarded-proto') proto = raw[i + 1];
        else if (lower === 'x-forwarded-host') fhost = raw[i + 1];
      }
      if (lower === 'te' && raw[i + 1]?.toLowerCase() === 'trailers') out.push('te', 'trailers');
      continue;
    }
    if (named?.has(lower) === true || o.remove?.has(lower) === true) continue;
    out.push(name, raw[i + 1]!);
  }
  const peer = req.socket.remoteAddress ?? 'unknown';
  out.push('x-forwarded-for', xff === undefined ? peer : `${xff}, ${peer}`);
  out.push(
    'x-forwarded-proto',
    proto ?? ((req.socket as { encrypted?: boolean }).encrypted === true ? 'https' : 'http'),
  );
  const host = fhost ?? req.headers.host;
  if (host !== undefined) out.push('x-forwarded-host', host);
  out.push('x-request-id', o.requestId);
  if (o.add !== null) for (const [k, v] of o.add) out.push(k, v);
  return out;
}

/** The response headers passed to the client: the upstream's minus hop-by-hop ones. */
export function downstreamHeaders(
  headers: Record<string, string | string[] | undefined>,
  requestId: string,
  remove: ReadonlySet<string> | null,
  add: readonly (readonly [string, string])[] | null,
): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  for (const k in headers) {
    const v = headers[k];
    if (v === undefined || HOP.has(k) || remove?.has(k) === true) continue;
    out[k] = v;
  }
  if (out['x-request-id'] === undefined) out['x-request-id'] = requestId;
  if (add !== null) for (const [k, v] of add) out[k] = v;
  return out;
}

/** What kind of failure an upstream error is. */
export type ErrorKind = 'connect' | 'reset' | 'timeout' | 'idle' | 'protocol' | 'other';

/** Classifies a transport (h1-pool, undici) or Node socket error. */
export function errorKind(error: unknown): ErrorKind {
  const code = (error as { code?: string } | null)?.code ?? '';
  switch (code) {
    case 'ECONNREFUSED':
    case 'ENOTFOUND':
    case 'EHOSTUNREACH':
    case 'ENETUNREACH':
    case 'EAI_AGAIN':
    case 'UND_ERR_CONNECT_TIMEOUT':
    case 'UPSTREAM_CONNECT_TIMEOUT':
      return 'connect';
    case 'ECONNRESET':
    case 'EPIPE':
    case 'UND_ERR_SOCKET':
    case 'UND_ERR_CLOSED':
    case 'UPSTREAM_CLOSED':
    case 'UPSTREAM_POOL_CLOSED':
      return 'reset';
    case 'UND_ERR_HEADERS_TIMEOUT':
    case 'UPSTREAM_HEADERS_TIMEOUT':
      return 'timeout';
    case 'UND_ERR_BODY_TIMEOUT':
    case 'UPSTREAM_BODY_TIMEOUT':
      return 'idle';
    case 'HPE_INVALID_CONSTANT':
    case 'HPE_INVALID_HEADER_TOKEN':
    case 'HPE_INVALID_STATUS':
    case 'HPE_INVALID_CHUNK_SIZE':
    case 'HPE_UNEXPECTED_CONTENT_LENGTH':
    case 'UND_ERR_RES_CONTENT_LENGTH_MISMATCH':
    case 'UND_ERR_INFO':
    case 'UPSTREAM_PROTOCOL':
      return 'protocol';
    default:
      return code.startsWith('HPE_') ? 'protocol' : 'other';
  }
}

/**
 * Answers with an RFC 9457 problem document (`application/problem+json`). A response whose
 * headers were already sent is destroyed instead (the client sees a broken response, never a
 * clean one).
 */
export function sendProblem(
  res: ServerResponse,
  status: number,
  title: string,
  detail: string,
  extra: Record<string, unknown> = {},
  headers: Record<string, string> = {},
): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  const body = JSON.stringify({ type: 'about:blank', title, status, detail, ...extra });
  res.writeHead(status, {
    'content-type': 'application/problem+json',
    'content-length': Buffer.byteLength(body),
    ...headers,
  });
  res.end(body);
}

/** True for methods that RFC 9110 defines as idempotent. */
export function idempotentMethod(method: string): boolean {
  return (
    method === 'GET' ||
    method === 'HEAD' ||
    method === 'OPTIONS' ||
    method === 'PUT' ||
    method === 'DELETE' ||
    method === 'TRACE'
  );
}
