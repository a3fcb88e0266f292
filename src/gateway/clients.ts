/**
 * Who the client is, for per-client limits: its address (the first X-Forwarded-For hop only
 * behind a trusted proxy), a header, its API key, or a claim of a JWT verified with `jose`
 * (an optional peer) against a JWKS URL or a shared HS256 secret. A missing or invalid token on
 * a JWT-keyed route is a 401.
 * @module
 */

import type { IncomingMessage } from 'node:http';
import { BulwarkError } from '../core/errors.js';
import { rateLimitHeaders } from '../limits/rate-limit-headers.js';
import type { GatewayConfig } from './config.js';
import type { Route } from './route.js';

/** A token that could not be verified. */
export class UnauthorizedError extends BulwarkError {
  constructor(detail: string, cause?: unknown) {
    super(
      'UNAUTHORIZED',
      `${detail}; send a valid bearer token (Authorization: Bearer …)`,
      cause === undefined ? undefined : { cause },
    );
  }
}

type Verify = (token: string) => Promise<Record<string, unknown>>;

/** Builds the JWT verifier of `auth`, or null when none is configured. */
export async function makeVerifier(auth: GatewayConfig['auth']): Promise<Verify | null> {
  if (auth === undefined || (auth.jwksUrl === undefined && auth.secret === undefined)) return null;
  const jose = await import('jose');
  const key =
    auth.jwksUrl !== undefined
      ? jose.createRemoteJWKSet(new URL(auth.jwksUrl))
      : new TextEncoder().encode(auth.secret);
  const opts = {
    ...(auth.issuer !== undefined ? { issuer: auth.issuer } : {}),
    ...(auth.audience !== undefined ? { audience: auth.audience } : {}),
  };
  return async (token) => {
    // jose's overloads differ for a key and a key set; both are accepted at run time.
    const { payload } = await jose.jwtVerify(token, key as Parameters<typeof jose.jwtVerify>[1], opts);
    return payload as Record<string, unknown>;
  };
}

/** The client address: the socket peer, or the first X-Forwarded-For hop when the peer is trusted. */
export function clientAddress(req: IncomingMessage, trusted: boolean): string {
  if (trusted) {
    const xff = req.headers['x-forwarded-for'];
    const first = (Array.isArray(xff) ? xff[0] : xff)?.split(',')[0]?.trim();
    if (first !== undefined && first !== '') return first;
  }
  return req.socket.remoteAddress ?? 'unknown';
}

/** The outcome of the client checks. */
export type ClientVerdict =
  | {
      readonly ok: true;
      readonly headers: Record<string, string> | null;
      readonly claims: Record<string, unknown> | null;
    }
  | {
      readonly ok: false;
      readonly status: 401 | 429;
      readonly detail: string;
      readonly headers: Record<string, string>;
    };

/** What the checks carry from one limit to the next. */
interface CheckState {
  claims: Record<string, unknown> | null;
  headers: Record<string, string> | null;
  tightest: number;
}

type Decision = Parameters<typeof rateLimitHeaders>[0];

/** Folds one limit's decision into `st`; a refusal verdict when it refused. */
function fold(st: CheckState, l: Route['limits'][number], d: Decision): ClientVerdict | null {
  const h = rateLimitHeaders(d, l.name) as unknown as Record<string, string>;
  if (!d.allowed)
    return {
      ok: false,
      status: 429,
      detail: `client limit "${l.name}" reached for this ${l.key}`,
      headers: h,
    };
  if (d.remaining < st.tightest) {
    st.tightest = d.remaining;
    st.headers = h;
  }
  return null;
}

/** The limit's key for this request, or null when it needs the (asynchronous) token claims. */
function keyOf(l: Route['limits'][number], req: IncomingMessage, trusted: boolean, apiKeyHeader: string) {
  if (l.key === 'ip') return clientAddress(req, trusted);
  if (l.key === 'apiKey') return String(req.headers[apiKeyHeader] ?? 'anonymous');
  if (l.key.startsWith('header:')) return String(req.headers[l.key.slice(7).toLowerCase()] ?? 'anonymous');
  return null;
}

/**
 * Checks a route's client limits (all of them; the first refusal wins) and returns the IETF
 * RateLimit headers of the tightest one. Synchronous — no promise — while every limit is keyed
 * without a token and answers at once (the in-memory limiters); a promise from the first limit
 * that needs to wait (a token to verify, a Redis limiter).
 */
export function checkClient(
  route: Route,
  req: IncomingMessage,
  trusted: boolean,
  verify: Verify | null,
  apiKeyHeader: string,
): ClientVerdict | Promise<ClientVerdict> {
  const st: CheckState = { claims: null, headers: null, tightest: Number.POSITIVE_INFINITY };
  const limits = route.limits;
  for (let i = 0; i < limits.length; i++) {
    const l = limits[i]!;
    const key = keyOf(l, req, trusted, apiKeyHeader);
    if (key === null) return checkFrom(i, null, st, route, req, trusted, verify, apiKeyHeader);
    const d = l.limiter.consume(`${l.key}\u0000${key}`);
    if (d instanceof Promise) return checkFrom(i, d, st, route, req, trusted, verify, apiKeyHeader);
    const refused = fold(st, l, d);
    if (refused !== null) return refused;
  }
  return { ok: true, headers: st.headers, claims: null };
}

/** The rest of the checks from limit `from` on (whose decision may be `pending` already). */
async function checkFrom(
  from: number,
  pending: Promise<Decision> | null,
  st: CheckState,
  route: Route,
  req: IncomingMessage,
  trusted: boolean,
  verify: Verify | null,
  apiKeyHeader: string,
): Promise<ClientVerdict> {
  const limits = route.limits;
  for (let i = from; i < limits.length; i++) {
    const l = limits[i]!;
    let d: Decision;
    if (i === from && pending !== null) d = await pending;
    else {
      let key = keyOf(l, req, trusted, apiKeyHeader);
      if (key === null) {
        if (st.claims === null) {
          const auth = req.headers.authorization;
          if (verify === null || auth === undefined || !/^Bearer /i.test(auth)) {
            return {
              ok: false,
              status: 401,
              detail: 'a bearer token is required on this route',
              headers: { 'www-authenticate': 'Bearer' },
            };
          }
          try {
            st.claims = await verify(auth.slice(7).trim());
          } catch (error) {
            return {
              ok: false,
              status: 401,
              detail: `invalid token: ${(error as Error).message}`,
              headers: { 'www-authenticate': 'Bearer error="invalid_token"' },
            };
          }
        }
        const v = st.claims[l.key.slice(4)];
        if (v === undefined)
          return {
            ok: false,
            status: 401,
            detail: `the token has no "${l.key.slice(4)}" claim`,
            headers: {},
          };
        key = String(v);
      }
      const r = l.limiter.consume(`${l.key}\u0000${key}`);
      d = r instanceof Promise ? await r : r;
    }
    const refused = fold(st, l, d);
    if (refused !== null) return refused;
  }
  return { ok: true, headers: st.headers, claims: st.claims };
}
