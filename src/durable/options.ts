/**
 * The options of `openQueue`, `queue.work`, `queue.enqueue` and `deadLetters.redrive`, and their
 * schemas: every invalid option throws the one `ConfigError` (dotted path, value, rule, "did you
 * mean" for a misspelled key) through `src/core/schema.ts`.
 * @module
 */

import type { Backoff } from '../core/backoff.js';
import { isBackoff } from '../core/backoff.js';
import type { Clock, RandomSource } from '../core/clock.js';
import { ConfigError } from '../core/errors.js';
import type { Registry } from '../core/registry.js';
import { type Schema, s } from '../core/schema.js';
import type { PayloadCodec } from './codec.js';
import type { Keyring } from './encryption.js';
import type { SubjectKeyProvider } from './payloads.js';
import type { QueueStore } from './store.js';

const DAY = 24 * 3600 * 1000;

/** Retention of terminal items. Pending and active items never expire. */
export interface RetentionOptions {
  /** Keep completed items this long after completion, in ms. Default 1 day. */
  completedMs?: number;
  /** Keep dead items this long after they died, in ms. Default 30 days; must be >= `completedMs`. */
  deadMs?: number;
  /**
   * An idempotency key stays reserved this long after its item completed, in ms (`duplicate: true`
   * for a repeated key). Default: `completedMs`; cannot exceed it.
   */
  keyTtlMs?: number;
}

/** Options of `openQueue`. */
export interface QueueOptions<T = unknown> {
  /** The queue's name: 1-200 characters. Items of different queues never mix. */
  name: string;
  /** Where items are kept: `sqliteStore(...)` or `postgresStore(...)`. */
  store: QueueStore;
  /** Payload codec. Default: JSON, with `Uint8Array`/`Buffer` passed through as bytes. */
  codec?: PayloadCodec<T>;
  /** Encrypts payloads at rest with this keyring (opt-in). */
  keyring?: Keyring;
  /**
   * Per-subject data keys (`subjectKeys(...)` of `bulwark/keyring`): items enqueued with a
   * `subject` are sealed with that subject's key, and become unreadable once it is erased.
   */
  subjectKeys?: SubjectKeyProvider;
  /** Attempts per item before it is dead-lettered (per-item override at enqueue). Default 10. */
  maxAttempts?: number;
  /** Delay before each retry, by attempt. Default `backoff.exponential({ initialMs: 1_000, maxMs: 300_000, jitter: 'full' })`. */
  backoff?: Backoff;
  /**
   * How long one attempt's handler may run, in ms: past it the handler's `signal` aborts with a
   * `HANDLER_TIMEOUT` error, the attempt counts as failed (retried or dead-lettered by the usual
   * rules) and its slot is freed; a late result is discarded. Default 15 minutes; `Infinity` turns
   * it off.
   */
  timeoutMs?: number;
  /** Retention of completed and dead items. */
  retention?: RetentionOptions;
  /**
   * Opens the store read-only: nothing is created (no file, schema or table; a missing store
   * fails with `STORE_NOT_FOUND`) and every change is refused with `READ_ONLY`. Default false.
   */
  readOnly?: boolean;
  /**
   * How often the queue refreshes the store counts its `snapshot()` shows (`pending`, `dead`, …),
   * in ms; 0 turns it off. Default 30 000.
   */
  statsIntervalMs?: number;
  /** Registers the queue (and its workers) in this registry. */
  registry?: Registry;
  /** Clock (its `date()` is the time written to the store). Default the system clock. */
  clock?: Clock;
  /** Random source for backoff jitter. Default `Math.random`. */
  random?: RandomSource;
}

/** Options of one `enqueue`. */
export interface EnqueueOptions {
  /** Idempotency key: a second enqueue with the same key returns the first item's id with `duplicate: true`. */
  key?: string;
  /** Higher runs first. Default 0. */
  priority?: number;
  /** Do not run before this many ms from now. Default 0. */
  delayMs?: number;
  /** Attempts before dead-lettering. Default: the queue's `maxAttempts`. */
  maxAttempts?: number;
  /**
   * This item's per-attempt handler timeout, in ms (stored with the item; same rules as the queue's
   * `timeoutMs`, which it replaces for this item). Default: the queue's.
   */
  timeoutMs?: number;
  /** A store transaction handle (a `pg` client inside BEGIN) to enqueue in your transaction (PostgreSQL only). */
  tx?: unknown;
  /** The data subject the payload is about: sealed with the subject's key (needs the queue's `subjectKeys`). */
  subject?: string;
}

/** Options of `queue.work`. */
export interface WorkOptions {
  /** The worker's name (unique among the queue's workers in a registry). Default `<queue>/<n>`. */
  name?: string;
  /** Handlers running at once in this worker. Default 1. */
  concurrency?: number;
  /** Lease per claimed item, in ms: if the worker neither acks nor heartbeats within it, the item runs again. Default 30 000. */
  leaseMs?: number;
  /**
   * Heartbeat period (extends the lease), in ms: at most `leaseMs / 2`; 0 turns heartbeats off.
   * Default `leaseMs / 3`.
   */
  heartbeatMs?: number;
  /** How often to look for work when idle (other processes' enqueues are not notified on SQLite), in ms. Default 1 000. */
  pollMs?: number;
  /** Start at most `perSec` items per second (token bucket with `burst`, default `perSec`), in this worker. */
  rateLimit?: { perSec: number; burst?: number };
  /** How often this worker applies retention, in ms; 0 turns it off. Default 60 000. */
  sweepIntervalMs?: number;
  /**
   * Items claimed ahead of free handler slots and kept in a local buffer (their leases are kept
   * alive by the heartbeats), so that claims and acks go to the store in bigger batches. Higher
   * throughput for short handlers; but buffered items wait for this worker even when another one is
   * idle, and a crash costs each buffered item an attempt (`stop()` returns them uncounted).
   * Default 0.
   */
  prefetch?: number;
  /** Registers the worker in this registry. Default: the queue's `registry`. */
  registry?: Registry;
}

/** Options of `deadLetters.redrive`. */
export interface RedriveOptions {
  /** Only these ids (those still dead). */
  ids?: readonly string[];
  /** At most this many. Default 100. */
  limit?: number;
  /**
   * Redrive into this queue of the same store instead of back to this one: each item moves there
   * (same id, attempts reset, redrive recorded, payload re-encrypted for that queue when encrypted)
   * with its idempotency key; an item whose key is already taken there stays dead here
   * (`skipped`, reason `key-conflict`).
   */
  to?: string;
  /** Pace: at most this many per second. Default: as fast as the store goes. */
  ratePerSec?: number;
  /** Stops the redrive between batches. */
  signal?: AbortSignal;
  /** Called after each batch with the ids redriven so far (for progress lines). */
  onProgress?: (redriven: readonly string[]) => void;
}

const object = (rule: string, ok: (v: object) => boolean): Schema<never> =>
  s.custom(rule, (v, path) =>
    typeof v === 'object' && v !== null && ok(v) ? (v as never) : s.fail(path, rule, v),
  );

const hasFns =
  (...names: string[]) =>
  (v: object): boolean =>
    names.every((n) => typeof (v as Record<string, unknown>)[n] === 'function');

/** A registry (duck-typed: `register` and `unregister`). @internal */
export const registrySchema = object('a Registry (createRegistry())', hasFns('register', 'unregister'));

const retentionSchema = s.object({
  completedMs: s.optional(s.int({ min: 1 })),
  deadMs: s.optional(s.int({ min: 1 })),
  keyTtlMs: s.optional(s.int({ min: 0 })),
});

/** The schema of `openQueue`'s options. @internal */
export const queueSchema = s.object({
  name: s.string({ maxLength: 200 }),
  store: object('a QueueStore (sqliteStore(...) or postgresStore(...))', hasFns('claim', 'enqueue')),
  codec: s.optional(object('a codec with encode and decode functions', hasFns('encode', 'decode'))),
  keyring: s.optional(object('a Keyring (keyring(...) or keyringFromEnv(...))', hasFns('_wrap'))),
  subjectKeys: s.optional(object('subject keys (subjectKeys(...) of bulwark/keyring)', hasFns('ringFor'))),
  maxAttempts: s.optional(s.int({ min: 1 })),
  backoff: s.optional(
    s.custom('a backoff, e.g. backoff.exponential()', (v, path) =>
      isBackoff(v) ? v : s.fail(path, 'a backoff, e.g. backoff.exponential()', v),
    ),
  ),
  timeoutMs: s.optional(s.duration({ positive: true, infinity: true })),
  retention: s.optional(retentionSchema),
  readOnly: s.optional(s.boolean()),
  statsIntervalMs: s.optional(s.int({ min: 0 })),
  registry: s.optional(registrySchema),
  clock: s.optional(object('a Clock', hasFns('now', 'date', 'setTimeout', 'clearTimeout'))),
  random: s.optional(s.fn<RandomSource>()),
});

/** The schema of `work`'s options. @internal */
export const workSchema = s.object({
  name: s.optional(s.string({ maxLength: 200 })),
  concurrency: s.optional(s.int({ min: 1 })),
  leaseMs: s.optional(s.int({ min: 1 })),
  heartbeatMs: s.optional(s.int({ min: 0 })),
  pollMs: s.optional(s.int({ min: 1 })),
  rateLimit: s.optional(
    s.object({ perSec: s.number({ above: 0 }), burst: s.optional(s.number({ above: 0 })) }),
  ),
  sweepIntervalMs: s.optional(s.int({ min: 0 })),
  prefetch: s.optional(s.int({ min: 0 })),
  registry: s.optional(registrySchema),
});

/** The schema of one enqueue's options. @internal */
export const enqueueSchema = s.object({
  key: s.optional(s.string({ maxLength: 500 })),
  priority: s.optional(s.int()),
  delayMs: s.optional(s.duration()),
  maxAttempts: s.optional(s.int({ min: 1 })),
  timeoutMs: s.optional(s.int({ min: 1 })),
  tx: s.optional(s.unknown()),
  subject: s.optional(s.string({ maxLength: 200 })),
});

/** The schema of `redrive`'s options. @internal */
export const redriveSchema = s.object({
  ids: s.optional(s.array(s.string())),
  limit: s.optional(s.int({ min: 1 })),
  to: s.optional(s.string({ minLength: 1, maxLength: 200 })),
  ratePerSec: s.optional(s.number({ above: 0 })),
  signal: s.optional(object('an AbortSignal', (v) => 'aborted' in v)),
  onProgress: s.optional(s.fn<(ids: readonly string[]) => void>()),
});

/** Settled retention: the cross-field rules hold. @internal */
export function settleRetention(r: RetentionOptions | undefined): Required<RetentionOptions> {
  const completedMs = r?.completedMs ?? DAY;
  const deadMs = r?.deadMs ?? Math.max(30 * DAY, completedMs);
  const keyTtlMs = r?.keyTtlMs ?? completedMs;
  if (deadMs < completedMs) {
    throw new ConfigError(
      'openQueue.retention.deadMs',
      `>= openQueue.retention.completedMs (${completedMs}): dead letters must outlive completed items`,
      deadMs,
    );
  }
  if (keyTtlMs > completedMs) {
    throw new ConfigError(
      'openQueue.retention.keyTtlMs',
      `<= openQueue.retention.completedMs (${completedMs}): the key lives on the completed item`,
      keyTtlMs,
    );
  }
  return { completedMs, deadMs, keyTtlMs };
}

/** Parses `work`'s options and checks the heartbeat against the lease. @internal */
export function parseWorkOptions(options: unknown): WorkOptions {
  const o = workSchema.parse(options ?? {}, 'work') as unknown as WorkOptions;
  // A heartbeat must fire (the ticker runs at half its period) well before the lease runs out.
  const leaseMs = o.leaseMs ?? 30_000;
  if (o.heartbeatMs !== undefined && o.heartbeatMs > 0 && o.heartbeatMs > leaseMs / 2) {
    throw new ConfigError(
      'work.heartbeatMs',
      `0 (off) or at most half of work.leaseMs (${leaseMs}), so the lease is extended before it expires`,
      o.heartbeatMs,
    );
  }
  return o;
}

/**
 * Applies retention to `queue` until nothing is left to change (batches of 1 000, at most 1 000
 * batches); returns the rows changed. @internal
 */
export async function sweepAll(
  store: Pick<QueueStore, 'sweep'>,
  queue: string,
  retention: Required<RetentionOptions>,
  clock: Clock,
): Promise<number> {
  const limit = 1000;
  let total = 0;
  for (let i = 0; i < 1000; i++) {
    const n = await store.sweep(queue, { ...retention, limit }, clock.date());
    total += n;
    if (n < limit) break;
  }
  return total;
}
