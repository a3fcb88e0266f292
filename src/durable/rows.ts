/**
 * The row both stores keep per item (snake_case columns; PostgreSQL returns its `bigint` times as
 * strings, SQLite as numbers) and its mapping to a `StoredItem`.
 * @module
 */

import type { ClaimedItem, ItemState, StoredItem } from './store.js';

/** An items row as a driver returns it. @internal */
export interface ItemRow {
  id: string;
  queue: string;
  payload: Uint8Array;
  key_id: string | null;
  key: string | null;
  priority: number;
  run_at: number | string;
  state: ItemState;
  attempts: number;
  max_attempts: number;
  created_at: number | string;
  updated_at: number | string;
  last_error: string | null;
  dead_reason: string | null;
  redrives: number;
  last_redrive_at: number | string | null;
  lease_token: string | null;
  lease_until: number | string | null;
  /** Absent from rows of statements that do not select it. */
  timeout_ms?: number | string | null;
  progress?: string | null;
}

/** A row as a stored item. @internal */
export function toItem(r: ItemRow): StoredItem {
  return {
    id: r.id,
    queue: r.queue,
    payload: r.payload,
    keyId: r.key_id,
    key: r.key,
    priority: r.priority,
    runAt: Number(r.run_at),
    state: r.state,
    attempts: r.attempts,
    maxAttempts: r.max_attempts,
    createdAt: Number(r.created_at),
    updatedAt: Number(r.updated_at),
    lastError: r.last_error,
    deadReason: r.dead_reason,
    redrives: r.redrives,
    lastRedriveAt: r.last_redrive_at === null ? null : Number(r.last_redrive_at),
    timeoutMs: r.timeout_ms === undefined || r.timeout_ms === null ? null : Number(r.timeout_ms),
    progress: r.progress ?? null,
  };
}

/** What a lean claim returns per row (the caller knows the queue, the state and the times). @internal */
export interface ClaimRow {
  id: string;
  payload: Uint8Array;
  key_id: string | null;
  key: string | null;
  priority: number;
  run_at: number | string;
  attempts: number;
  max_attempts: number;
  created_at: number | string;
  last_error: string | null;
  dead_reason: string | null;
  redrives: number;
  last_redrive_at: number | string | null;
  lease_token: string;
  timeout_ms?: number | string | null;
}

/** A lean claim row as a claimed item of `queue`, claimed at `now` until `leaseUntil`. @internal */
export function leanClaimed(r: ClaimRow, queue: string, now: number, leaseUntil: number): ClaimedItem {
  return {
    id: r.id,
    queue,
    payload: r.payload,
    keyId: r.key_id,
    key: r.key,
    priority: r.priority,
    runAt: Number(r.run_at),
    state: 'active',
    attempts: r.attempts,
    maxAttempts: r.max_attempts,
    createdAt: Number(r.created_at),
    updatedAt: now,
    lastError: r.last_error,
    deadReason: r.dead_reason,
    redrives: r.redrives,
    lastRedriveAt: r.last_redrive_at === null ? null : Number(r.last_redrive_at),
    leaseToken: r.lease_token,
    leaseUntil,
    timeoutMs: r.timeout_ms === undefined || r.timeout_ms === null ? null : Number(r.timeout_ms),
  };
}

/** Claim rows as claimed items (by `map`), in claim order. @internal */
export function claimedRows<R>(rows: readonly R[], map: (row: R) => ClaimedItem): ClaimedItem[] {
  const out = new Array<ClaimedItem>(rows.length);
  let sorted = true;
  for (let i = 0; i < rows.length; i++) {
    out[i] = map(rows[i]!);
    if (sorted && i > 0 && claimOrder(out[i - 1]!, out[i]!) > 0) sorted = false;
  }
  if (!sorted) out.sort(claimOrder);
  return out;
}

/** The claim order: priority desc, run time, id. @internal */
export function claimOrder(a: ClaimedItem, b: ClaimedItem): number {
  if (a.priority !== b.priority) return b.priority - a.priority;
  if (a.runAt !== b.runAt) return a.runAt - b.runAt;
  return a.id < b.id ? -1 : a.id > b.id ? 1 : 0;
}
