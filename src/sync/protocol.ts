/**
 * The sync protocol's messages and their validation (one schema per message, through the core's
 * `s`; a request that does not match is refused with `BAD_REQUEST` naming the field).
 * @module
 */

import { ConfigError } from '../core/errors.js';
import { s } from '../core/schema.js';
import { BulwarkSyncError } from './errors.js';
import { isHlc } from './hlc.js';
import type { SyncOperation, SyncRecord } from './record.js';
import type { ChangedRecord } from './server-store.js';

/** Entity type names: 1-100 of `A-Za-z0-9_.-`. */
export const ENTITY = /^[A-Za-z0-9_.-]{1,100}$/;

const hlc = s.custom('a clock stamp', (v, path) => (isHlc(v) ? v : s.fail(path, 'a clock stamp', v)));

/** The schema of one operation on the wire. */
export const operationSchema = s.object({
  opId: s.string({ maxLength: 100 }),
  clientId: s.optional(s.string({ maxLength: 100 })),
  entity: s.string({ pattern: ENTITY, patternRule: 'an entity name of 1-100 characters A-Za-z0-9_.-' }),
  id: s.string({ maxLength: 200 }),
  kind: s.oneOf(['put', 'delete'] as const),
  fields: s.optional(s.record(s.unknown()), {}),
  base: s.optional(s.record(s.unknown()), {}),
  baseVersion: s.optional(s.int({ min: 0 }), 0),
  hlc,
  priority: s.optional(s.oneOf(['critical', 'high', 'normal', 'low'] as const), 'normal'),
  seq: s.int({ min: 1 }),
});

/** The outcome of one pushed operation. */
export interface OpResult {
  readonly opId: string;
  /**
   * `applied` (now), `duplicate` (applied before; `conflict` is null, the first answer had it) or
   * `retry` (not applied, try again later: its clock stamp is too far ahead of the server's clock,
   * or an earlier operation of the same record in the batch was answered `retry`).
   */
  readonly status: 'applied' | 'duplicate' | 'retry';
  /** The record's version after the operation (0 for `retry`). */
  readonly version: number;
  /** Fields that were in conflict (resolved by the server's strategy), or null. */
  readonly conflict: readonly string[] | null;
  /** For `retry`: why. */
  readonly code?: string;
}

/** The body of a push. */
export interface PushRequest {
  readonly ops: readonly SyncOperation[];
}

/** The answer to a push: one result per operation, in order. */
export interface PushResponse {
  readonly results: readonly OpResult[];
}

/** The answer to a pull. */
export interface PullResponse {
  /** Records changed after the request's cursor, in cursor order. */
  readonly changes: readonly ChangedRecord[];
  /** The cursor to pull from next. */
  readonly cursor: number;
  /** True when more changes are waiting (pull again at once). */
  readonly hasMore: boolean;
  /** True when the request's cursor was older than the tombstone retention: drop the replica and pull from 0. */
  readonly reset: boolean;
}

/** Parses with `schema`, turning `ConfigError` into `BAD_REQUEST`. @internal */
export function parseRequest<T>(
  schema: { parse(v: unknown, path: string): T },
  value: unknown,
  path: string,
): T {
  try {
    return schema.parse(value, path);
  } catch (error) {
    if (error instanceof ConfigError) {
      throw new BulwarkSyncError('BAD_REQUEST', `Bad sync request: ${error.message}`, { cause: error });
    }
    throw error;
  }
}

/** Parses a pull's `cursor`/`limit` (numbers or query strings). @internal */
export function parsePullQuery(
  query: { cursor?: unknown; limit?: unknown },
  maxLimit: number,
): { cursor: number; limit: number } {
  const num = (v: unknown): unknown => (typeof v === 'string' && /^\d+$/.test(v) ? Number(v) : v);
  const schema = s.object(
    {
      cursor: s.optional(s.int({ min: 0 }), 0),
      limit: s.optional(s.int({ min: 1, max: maxLimit }), maxLimit),
    },
    { strict: false },
  );
  const o = parseRequest(schema, { ...query, cursor: num(query.cursor), limit: num(query.limit) }, 'pull');
  return { cursor: o.cursor, limit: o.limit };
}

/** A record as sent on the wire (also what clients keep). */
export type WireRecord = SyncRecord & { readonly cursor: number };
