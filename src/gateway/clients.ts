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

/**
 * Checks a route's client limits (all of them; the first refusal wins) and returns the IETF
 * RateLimit headers of the tightest one.
 */
export async function checkClient(
  route: Route,
  req: IncomingMessage,
  trusted: boolean,
  verify: Verify | null,
  apiKeyHeader: string,
): Promise<ClientVerdict> {
  let claims: Record<string, unknown> | null = null;
  let headers: Record<string, string> | null = null;
  let tightest = Number.POSITIVE_INFINITY;
  for (const l of route.limits) {
    let key: string;
    if (l.key === 'ip') key = clientAddress(req, trusted);
    else if (l.key === 'apiKey') key = String(req.headers[apiKeyHeader] ?? 'anonymous');
    else if (l.key.startsWith('header:'))
      key = String(req.headers[l.key.slice(7).toLowerCase()] ?? 'anonymous');
    else {
      if (claims === null) {
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
          claims = await verify(auth.slice(7).trim());
        } catch (error) {
          return {
            ok: false,
            status: 401,
            detail: `invalid token: ${(error as Error).message}`,
            headers: { 'www-authenticate': 'Bearer error="invalid_token"' },
          };
        }
      }
      const v = claims[l.key.slice(4)];
      if (v === undefined)
        return { ok: false, status: 401, detail: `the token has no "${l.key.slice(4)}" claim`, headers: {} };
      key = String(v);
    }
    const pending = l.limiter.consume(`${l.key}\u0000${key}`);
    const d = pending instanceof Promise ? await pending : pending;
    const h = rateLimitHeaders(d, l.name) as unknown as Record<string, string>;
    if (!d.allowed)
      return {
        ok: false,
        status: 429,
        detail: `client limit "${l.name}" reached for this ${l.key}`,
        headers: h,
      };
    if (d.remaining < tightest) {
      tightest = d.remaining;
      headers = h;
    }
  }
  return { ok: true, headers, claims };
}
