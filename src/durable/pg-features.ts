/**
 * The PostgreSQL store's schedules, fleet-wide limits, progress, per-item timeouts and redrive into
 * another queue (`StoreFeatures`).
 *
 * Fleet-wide limits: a claim of a queue that has limits runs in a short transaction that first takes
 * a per-queue advisory lock, then counts the queue's active items (valid leases) and refills its
 * token bucket, and claims at most what the limits allow — so concurrent claims from any number of
 * processes never exceed them. Queues without limits keep the one-statement claim (the set of
 * limited queues is cached and re-read at most once a second, so a limit set elsewhere applies
 * within about a second).
 * @module
 */

import type { Pool, QueryResult, QueryResultRow } from 'pg';
import { type LimitRow, refill, scheduleValues, toSchedule } from './feature-rows.js';
import { inTransaction, withPoolClient } from './pg-client.js';
import { pgFeatureQueries } from './pg-features-sql.js';
import type { Statement } from './pg-sql.js';
import { type ClaimRow, claimedRows, leanClaimed } from './rows.js';
import type { ClaimedItem, EnqueueOutcome, LeaseRef, NewItem } from './store.js';
// Deliberate repetition: the feature types each store implements (an import list).
import type {
  QueueLimits,
  RedriveMove,
  RedriveMoveOutcome,
  ScheduleRecord,
  ScheduleRun,
  StoreFeatures,
} from './store-features.js';

/** A client running statements (a `pg` PoolClient or a caller's transaction client). @internal */
export interface PgClient {
  query(config: { text: string; values: unknown[]; name?: string }): Promise<QueryResult<QueryResultRow>>;
}

/** What the features need of the PostgreSQL store. @internal */
export interface PgFeatureHost {
  readonly schema: string;
  /** Runs one statement on the pool (errors mapped; prepared once per connection when named). */
  q<R extends QueryResultRow>(
    text: string,
    values: readonly unknown[],
    name?: string,
  ): Promise<QueryResult<R>>;
  pool(): Promise<Pool>;
  /** Maps a driver error to a `BulwarkDurableError`. */
  wrap(error: unknown): unknown;
  /** Throws when closed or read-only. */
  checkWrite(): void;
  /** The store's one-statement insert, on `client`. */
  insert(
    queue: string,
    items: readonly NewItem[],
    nows: readonly number[],
    client: PgClient,
  ): Promise<EnqueueOutcome[]>;
  /** The prepared claim statement (`$1` queue, `$2` now, `$3` limit, `$4` lease end). */
  claimStatement(): Statement;
  notifyLater(queue: string): void;
}

/** The PostgreSQL `StoreFeatures`, plus the claim path of limited queues. @internal */
export class PgFeatures implements StoreFeatures {
  private readonly sql: ReturnType<typeof pgFeatureQueries>;
  private limited: Set<string> | null = null;
  private limitsReadAt = Number.NEGATIVE_INFINITY;
  private reading: Promise<void> | null = null;

  constructor(private readonly h: PgFeatureHost) {
    this.sql = pgFeatureQueries(`"${h.schema}"`);
  }

  /** Runs `fn` in a transaction on a pool client (or in the caller's `tx`). */
  async transaction<T>(fn: (c: PgClient) => Promise<T>, tx?: PgClient): Promise<T> {
    if (tx !== undefined) return fn(tx);
    return withPoolClient(await this.h.pool(), this.h.wrap, (client) =>
      inTransaction(client, 'BEGIN', (c) => fn(c as unknown as PgClient)),
    );
  }

  private run<R extends QueryResultRow>(
    c: PgClient,
    text: string,
    values: unknown[],
  ): Promise<QueryResult<R>> {
    return c.query({ text, values }) as Promise<QueryResult<R>>;
  }

  /** Enqueues items of which some carry a per-item timeout: insert and timeouts in one transaction. */
  enqueueWithTimeouts(
    queue: string,
    items: readonly NewItem[],
    now: number,
    tx?: PgClient,
  ): Promise<EnqueueOutcome[]> {
    return this.transaction(async (c) => {
      const out = await this.h.insert(
        queue,
        items,
        items.map(() => now),
        c,
      );
      const timed = items.filter((i) => i.timeoutMs != null);
      await this.run(c, this.sql.timeouts, [queue, timed.map((i) => i.id), timed.map((i) => i.timeoutMs)]);
      return out;
    }, tx);
  }

  async setProgress(queue: string, ref: LeaseRef, progress: string, now: number): Promise<boolean> {
    this.h.checkWrite();
    const r = await this.h.q(this.sql.progress, [queue, ref.id, ref.leaseToken, progress, now]);
    return r.rows.length === 1;
  }

  // Deliberate repetition: the signature of StoreFeatures.redriveTo, restated by each store.
  async redriveTo(
    from: string,
    to: string,
    moves: readonly RedriveMove[],
    now: number,
  ): Promise<RedriveMoveOutcome[]> {
    this.h.checkWrite();
    const out = await this.transaction(async (c) => {
      const results: RedriveMoveOutcome[] = [];
      for (const m of moves) {
        const r = await this.run<{ state: string; key: string | null; key_id: string | null }>(
          c,
          this.sql.lockItem,
          [from, m.id],
        );
        const row = r.rows[0];
        if (row === undefined) results.push('not-found');
        else if (row.state !== 'dead' || row.key_id !== m.expectedKeyId) results.push('not-dead');
        else if (
          row.key !== null &&
          (await this.run(c, this.sql.takeKey, [to, row.key, m.id])).rows.length === 0
        )
          results.push('key-conflict');
        else {
          if (row.key !== null) await this.run(c, this.sql.dropKey, [from, row.key, m.id]);
          await this.run(c, this.sql.move, [from, m.id, to, now, Buffer.from(m.payload), m.keyId]);
          results.push('moved');
        }
      }
      return results;
    });
    if (out.includes('moved')) this.h.notifyLater(to);
    return out;
  }

  async putSchedule(schedule: ScheduleRecord): Promise<void> {
    this.h.checkWrite();
    const values = scheduleValues(schedule);
    values[6] = Buffer.from(schedule.payload);
    await this.h.q(this.sql.putSchedule, values);
  }

  async removeSchedule(queue: string, name: string): Promise<boolean> {
    this.h.checkWrite();
    return ((await this.h.q(this.sql.removeSchedule, [queue, name])).rowCount ?? 0) === 1;
  }

  async listSchedules(queue: string | null): Promise<ScheduleRecord[]> {
    const r = await this.h.q<Parameters<typeof toSchedule>[0] & QueryResultRow>(this.sql.schedules, [queue]);
    return r.rows.map(toSchedule);
  }

  // Deliberate repetition: the signature of StoreFeatures.fireSchedule, restated by each store.
  async fireSchedule(
    queue: string,
    name: string,
    expectedNext: number,
    runs: readonly ScheduleRun[],
    next: number,
    now: number,
  ): Promise<string[] | null> {
    this.h.checkWrite();
    const lastTick = runs.length === 0 ? null : runs[runs.length - 1]!.tick;
    return this.transaction(async (c) => {
      const moved = await this.run(c, this.sql.advance, [queue, name, expectedNext, next, lastTick, now]);
      if (moved.rows.length === 0) return null;
      const items: NewItem[] = [];
      for (const { tick, item } of runs) {
        if ((await this.run(c, this.sql.run, [queue, name, tick, item.id])).rows.length === 1)
          items.push(item);
      }
      if (items.length > 0) {
        await this.h.insert(
          queue,
          items,
          items.map(() => now),
          c,
        );
        const timed = items.filter((i) => i.timeoutMs != null);
        if (timed.length > 0)
          await this.run(c, this.sql.timeouts, [
            queue,
            timed.map((i) => i.id),
            timed.map((i) => i.timeoutMs),
          ]);
      }
      return items.map((i) => i.id);
    });
  }

  async sweepRuns(queue: string, before: number): Promise<number> {
    this.h.checkWrite();
    return (await this.h.q(this.sql.sweepRuns, [queue, before])).rowCount ?? 0;
  }

  async setLimits(queue: string, limits: QueueLimits | null, now: number): Promise<void> {
    this.h.checkWrite();
    if (limits === null) await this.h.q(this.sql.clearLimits, [queue]);
    else
      await this.h.q(this.sql.setLimits, [queue, limits.concurrency, limits.ratePerSec, limits.burst, now]);
    this.limitsReadAt = Number.NEGATIVE_INFINITY;
    this.limited = null;
    this.h.notifyLater(queue);
  }

  async getLimits(queue: string): Promise<QueueLimits | null> {
    const r = await this.h.q<LimitRow>(this.sql.limits, [queue]);
    const l = r.rows[0];
    return l === undefined
      ? null
      : { concurrency: l.concurrency, ratePerSec: l.rate_per_sec, burst: l.burst };
  }

  private refresh(now: number): Promise<void> {
    this.reading ??= this.h
      .q<LimitRow>(this.sql.limits, [null])
      .then((r) => {
        this.limited = new Set(r.rows.map((l) => l.queue!));
        this.limitsReadAt = now;
      })
      .finally(() => {
        this.reading = null;
      });
    return this.reading;
  }

  /**
   * True when a claim of `queue` must go through `claimLimited` (the queue has limits, or they were
   * never read). Re-reads the set of limited queues in the background once it is a second old.
   */
  mayBeLimited(queue: string, now: number): boolean {
    if (this.limited === null) return true;
    if (now - this.limitsReadAt >= 1000 || now < this.limitsReadAt) void this.refresh(now).catch(() => {});
    return this.limited.has(queue);
  }

  /**
   * Claims of a queue that may have limits; undefined when it has none (the caller claims as usual).
   * One prepared statement: the store's own claim statement whose limit is `claim_allowance(…)`
   * (a per-queue advisory lock, then the active count and token bucket read with a fresh snapshot;
   * see the migration). If the claim statement cannot be rewritten, a 4-statement transaction does
   * the same.
   */
  async claimLimited(
    queue: string,
    limit: number,
    leaseMs: number,
    now: number,
  ): Promise<ClaimedItem[] | undefined> {
    if (this.limited === null) await this.refresh(now);
    if (!this.limited!.has(queue)) return undefined;
    const claim = this.h.claimStatement();
    if (this.limitedClaim === undefined || this.limitedClaim.from !== claim.text) {
      const text = limitedClaimText(claim.text, `"${this.h.schema}"`);
      this.limitedClaim = { from: claim.text, sql: text === null ? null : { name: `${claim.name}_l`, text } };
    }
    const sql = this.limitedClaim.sql;
    if (sql === null) return this.claimLimitedInSteps(queue, limit, leaseMs, now);
    const r = await this.h.q<ClaimRow>(sql.text, [queue, now, limit, now + leaseMs], sql.name);
    return claimedRows(r.rows, (row) => leanClaimed(row, queue, now, now + leaseMs));
  }

  private limitedClaim: { from: string; sql: Statement | null } | undefined;

  private claimLimitedInSteps(
    queue: string,
    limit: number,
    leaseMs: number,
    now: number,
  ): Promise<ClaimedItem[]> {
    const claim = this.h.claimStatement();
    return this.transaction(async (c) => {
      await this.run(c, this.sql.lock, [`bulwark.limits.${this.h.schema}.${queue}`]);
      const l = (await this.run<LimitRow & { active: number }>(c, this.sql.allowance, [queue, now])).rows[0];
      let n = limit;
      if (l !== undefined) {
        if (l.concurrency !== null) n = Math.min(n, l.concurrency - l.active);
        if (l.rate_per_sec !== null) n = Math.min(n, Math.floor(refill(l, now)));
      }
      if (n <= 0) return [];
      const r = await c.query({ name: claim.name, text: claim.text, values: [queue, now, n, now + leaseMs] });
      if (l !== undefined && l.rate_per_sec !== null)
        await this.run(c, this.sql.spend, [queue, refill(l, now) - r.rows.length, now]);
      return claimedRows(r.rows as ClaimRow[], (row) => leanClaimed(row, queue, now, now + leaseMs));
    });
  }
}

/**
 * The limited claim statement built from the store's claim statement (`WITH … UPDATE … RETURNING …`,
 * parameters `$1` queue, `$2` now, `$3` limit, `$4` lease end): the same statement whose limit is
 * what `claim_allowance` grants; null when the statement does not have that shape. @internal
 */
export function limitedClaimText(claim: string, s: string): string | null {
  if (!claim.startsWith('WITH ') || !claim.includes('RETURNING') || /\$(?![1-4]\b)\d/.test(claim))
    return null;
  return `WITH n AS MATERIALIZED (SELECT ${s}.claim_allowance($1, $2, $3) AS n), ${claim
    .slice(5)
    .replace(/\$3\b/g, '(SELECT n FROM n)')}`;
}
