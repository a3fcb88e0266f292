/**
 * Bearer-token authentication with roles. Tokens are kept only as SHA-256 digests and compared
 * in constant time against every configured digest (no early exit); failed attempts are
 * rate-limited per client address with Bulwark's own limiter.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { OperationRole } from '../core/component.js';
import { ConfigError } from '../core/errors.js';
import { type RateLimiter, rateLimiter } from '../limits/rate-limiter.js';

/** A role: viewers read; operators act; admins also change rules, limits and tokens. */
export type Role = OperationRole;

const RANK: Readonly<Record<Role, number>> = { viewer: 0, operator: 1, admin: 2 };

/** True when `role` may do what `needed` may. */
export function allows(role: Role, needed: Role): boolean {
  return RANK[role] >= RANK[needed];
}

/** One configured token: its plain value (hashed at once, never kept) or its SHA-256 digest. */
export interface TokenSpec {
  /** Shown as the actor in the audit log. Default `<role>-<n>`. */
  readonly name?: string;
  readonly role: Role;
  /** The token itself (kept only as its digest). */
  readonly token?: string;
  /** The token's SHA-256 digest in hex (so the plain token need not be in the config). */
  readonly sha256?: string;
}

/** Who made a request. */
export interface Principal {
  readonly name: string;
  readonly role: Role;
}

const ROLES: readonly Role[] = ['viewer', 'operator', 'admin'];

/** SHA-256 of a token, hex. */
export function digestToken(token: string): string {
  return createHash('sha256').update(token, 'utf8').digest('hex');
}

/**
 * Reads tokens from an environment variable: comma-separated `role:token` or
 * `role:sha256=HEX` entries, optionally named `name@role:token`.
 *
 * @example
 * ```ts
 * import { tokensFromEnv } from 'bulwark/server';
 * const tokens = tokensFromEnv('alice@admin:s3cret-admin-token,viewer:sha256=' + 'ab'.repeat(32));
 * console.log(tokens.map((t) => t.role)); // ['admin', 'viewer']
 * ```
 */
export function tokensFromEnv(value: string | undefined = process.env.BULWARK_ADMIN_TOKENS): TokenSpec[] {
  if (value === undefined || value.trim() === '') return [];
  return value
    .split(',')
    .map((raw) => raw.trim())
    .filter((raw) => raw !== '')
    .map((raw, i) => {
      const colon = raw.indexOf(':');
      if (colon < 0)
        throw new ConfigError(`BULWARK_ADMIN_TOKENS[${i}]`, 'role:token or role:sha256=HEX', '(hidden)');
      const head = raw.slice(0, colon);
      const secret = raw.slice(colon + 1);
      const at = head.indexOf('@');
      const name = at < 0 ? undefined : head.slice(0, at);
      const role = (at < 0 ? head : head.slice(at + 1)) as Role;
      if (!ROLES.includes(role))
        throw new ConfigError(
          `BULWARK_ADMIN_TOKENS[${i}].role`,
          "one of 'viewer', 'operator', 'admin'",
          role,
        );
      const base = name === undefined ? { role } : { name, role };
      return secret.startsWith('sha256=') ? { ...base, sha256: secret.slice(7) } : { ...base, token: secret };
    });
}

/** Options of the failed-authentication limiter. */
export interface AuthLimitOptions {
  /** Failed attempts allowed per client address per window. Default 10. */
  readonly failures?: number;
  /** The window. Default 60 000 ms. */
  readonly windowMs?: number;
}

/** Checks bearer tokens. */
export class TokenAuth {
  private readonly digests: { readonly name: string; readonly role: Role; readonly digest: Buffer }[];
  private readonly failures: RateLimiter;

  constructor(tokens: readonly TokenSpec[], limit: AuthLimitOptions = {}) {
    const count: Record<string, number> = {};
    this.digests = tokens.map((t, i) => {
      if (!ROLES.includes(t.role))
        throw new ConfigError(`tokens[${i}].role`, "one of 'viewer', 'operator', 'admin'", t.role);
      const hex = t.sha256 ?? (t.token !== undefined ? digestToken(t.token) : undefined);
      if (hex === undefined || !/^[0-9a-f]{64}$/i.test(hex)) {
        throw new ConfigError(
          `tokens[${i}]`,
          'a token (at least 16 characters) or its sha256 in hex',
          '(hidden)',
        );
      }
      if (t.token !== undefined && t.token.length < 16) {
        throw new ConfigError(`tokens[${i}].token`, 'at least 16 characters', '(hidden)');
      }
      count[t.role] = (count[t.role] ?? 0) + 1;
      return {
        name: t.name ?? `${t.role}-${count[t.role]}`,
        role: t.role,
        digest: Buffer.from(hex.toLowerCase(), 'hex'),
      };
    });
    this.failures = rateLimiter({
      limits: [
        { algorithm: 'fixed-window', limit: limit.failures ?? 10, windowMs: limit.windowMs ?? 60_000 },
      ],
    });
  }

  /** Number of configured tokens. */
  get size(): number {
    return this.digests.length;
  }

  /** Ms the client at `address` must wait before trying again, or 0 when it may try now. */
  blockedFor(address: string): number {
    const d = this.failures.peek(address);
    return d.allowed ? 0 : Math.max(1, d.retryAfterMs);
  }

  /** The principal of an `Authorization` header, or null (and the failure counted for `address`). */
  authenticate(header: string | undefined, address: string): Principal | null {
    const match = header === undefined ? null : /^Bearer\s+(\S+)\s*$/i.exec(header);
    if (match !== null) {
      const candidate = createHash('sha256').update(match[1]!, 'utf8').digest();
      let found: Principal | null = null;
      for (const d of this.digests) {
        // Compare against every digest, so timing says nothing about which (or whether one) matched.
        if (timingSafeEqual(candidate, d.digest) && found === null) found = { name: d.name, role: d.role };
      }
      if (found !== null) return found;
    }
    this.failures.consume(address);
    return null;
  }
}
