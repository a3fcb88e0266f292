/**
 * Rows of the features' tables as both stores return them (PostgreSQL gives `bigint` as strings),
 * and the token bucket of fleet-wide rate limits.
 * @module
 */

import type { ScheduleRecord } from './store-features.js';

/** @internal */
export interface ScheduleRow {
  queue: string;
  name: string;
  cron: string | null;
  tz: string;
  every_ms: number | null;
  catch_up: ScheduleRecord['catchUp'];
  payload: Uint8Array;
  key_id: string | null;
  priority: number;
  max_attempts: number | null;
  timeout_ms: number | null;
  next_run_at: number | string;
  last_run_at: number | string | null;
  created_at: number | string;
  updated_at: number | string;
}

/** A schedules row as a record (both stores). @internal */
export function toSchedule(r: ScheduleRow): ScheduleRecord {
  return {
    queue: r.queue,
    name: r.name,
    cron: r.cron,
    tz: r.tz,
    everyMs: r.every_ms === null ? null : Number(r.every_ms),
    catchUp: r.catch_up,
    payload: r.payload,
    keyId: r.key_id,
    priority: r.priority,
    maxAttempts: r.max_attempts,
    timeoutMs: r.timeout_ms === null ? null : Number(r.timeout_ms),
    nextRunAt: Number(r.next_run_at),
    lastRunAt: r.last_run_at === null ? null : Number(r.last_run_at),
    createdAt: Number(r.created_at),
    updatedAt: Number(r.updated_at),
  };
}

/** The values of a schedule row, in column order (both stores). @internal */
export function scheduleValues(s: ScheduleRecord): unknown[] {
  return [
    s.queue,
    s.name,
    s.cron,
    s.tz,
    s.everyMs,
    s.catchUp,
    s.payload,
    s.keyId,
    s.priority,
    s.maxAttempts,
    s.timeoutMs,
    s.nextRunAt,
    s.lastRunAt,
    s.createdAt,
    s.updatedAt,
  ];
}

/** The schedule columns, in `scheduleValues` order. @internal */
export const SCHEDULE_COLUMNS =
  'queue, name, cron, tz, every_ms, catch_up, payload, key_id, priority, max_attempts, timeout_ms, next_run_at, last_run_at, created_at, updated_at';

/** @internal */
export interface LimitRow {
  concurrency: number | null;
  rate_per_sec: number | null;
  burst: number | null;
  tokens: number | null;
  refilled_at: number | string | null;
  queue?: string;
}

/** Tokens of a bucket refilled to `now` (both stores). @internal */
export function refill(l: LimitRow, now: number): number {
  const rate = l.rate_per_sec ?? 0;
  const burst = l.burst ?? Math.max(1, rate);
  if (l.tokens === null || l.refilled_at === null) return burst;
  return Math.min(burst, Number(l.tokens) + ((now - Number(l.refilled_at)) * rate) / 1000);
}
