/**
 * The leases of one worker's claimed items: ONE timer per worker (not per item) that every
 * `heartbeatMs` extends the leases of items not extended in the last period (with heartbeats
 * off, it checks for local expiry), and fenced manual extensions.
 * @module
 */

import type { Clock, TimerHandle } from '../core/clock.js';
import type { Attempt } from './attempt.js';
import { BulwarkDurableError } from './errors.js';
import type { QueueStore } from './store.js';

/** Why a lease was lost. */
export type LostDuring = 'complete' | 'fail' | 'extend' | 'expired';

/** What the leases need of their worker. @internal */
export interface LeaseHost {
  readonly queue: string;
  readonly store: QueueStore;
  readonly clock: Clock;
  /** The worker's attempts: running, then prefetched ones waiting for a slot. */
  attempts(): Iterable<Attempt>;
  /** True while the worker still holds `attempt` (running or waiting). */
  holds(attempt: Attempt): boolean;
  lost(attempt: Attempt, during: LostDuring): void;
  track<P>(p: Promise<P>): Promise<P>;
  reportError(operation: string, error: unknown): void;
}

/** A worker's lease keeping. @internal */
export class Leases {
  readonly heartbeatMs: number;
  /** Period of the ticker: half the heartbeat period, or (heartbeats off) a tenth of the lease. */
  private readonly tickMs: number;
  private timer: TimerHandle | null = null;

  constructor(
    private readonly host: LeaseHost,
    readonly leaseMs: number,
    heartbeatMs: number | undefined,
  ) {
    this.heartbeatMs = heartbeatMs ?? Math.max(1, Math.floor(leaseMs / 3));
    // Ticks at half the heartbeat period, so each lease is extended between 1 and 1.5 periods after
    // its last extension.
    this.tickMs = Math.max(1, Math.floor(this.heartbeatMs > 0 ? this.heartbeatMs / 2 : leaseMs / 10));
  }

  /** Starts the ticker if it is not running. */
  arm(): void {
    if (this.timer !== null) return;
    this.timer = this.host.clock.setTimeout(() => {
      this.timer = null;
      const now = this.host.clock.date();
      let any = false;
      for (const attempt of this.host.attempts()) {
        any = true;
        this.tick(attempt, now);
      }
      if (any) this.arm();
    }, this.tickMs);
  }

  /** Stops the ticker. */
  disarm(): void {
    if (this.timer !== null) this.host.clock.clearTimeout(this.timer);
    this.timer = null;
  }

  private tick(attempt: Attempt, now: number): void {
    if (attempt.settled || attempt.lostCounted) return;
    if (now >= attempt.leaseUntil) {
      if (!attempt.extending) this.host.lost(attempt, 'expired');
    } else if (
      this.heartbeatMs > 0 &&
      !attempt.extending &&
      attempt.leaseUntil - now <= this.leaseMs - this.heartbeatMs
    ) {
      void this.extend(attempt, 'heartbeat').catch(() => {});
    }
  }

  /** The `LEASE_LOST` error for `attempt`. */
  lostError(attempt: Attempt): BulwarkDurableError {
    return new BulwarkDurableError(
      'LEASE_LOST',
      `The lease on item ${attempt.item.id} of queue "${this.host.queue}" was lost (expired or taken by another worker); the item runs again elsewhere, so make the handler idempotent`,
    );
  }

  /** Extends `attempt`'s lease (fenced); a manual call rejects with `LEASE_LOST` when it was lost. */
  async extend(attempt: Attempt, why: 'heartbeat' | 'manual'): Promise<void> {
    if (attempt.lostCounted) throw this.lostError(attempt);
    const { clock, store, queue } = this.host;
    const now = clock.date();
    let ok: boolean;
    attempt.extending = true;
    try {
      ok = await this.host.track(store.extend(queue, attempt.ref, this.leaseMs, now));
    } catch (error) {
      this.host.reportError('extend', error);
      if (clock.date() >= attempt.leaseUntil) this.host.lost(attempt, 'expired');
      if (why === 'manual') throw error;
      return;
    } finally {
      attempt.extending = false;
    }
    if (ok) {
      attempt.leaseUntil = Math.max(attempt.leaseUntil, now + this.leaseMs);
      return;
    }
    if (this.host.holds(attempt)) this.host.lost(attempt, 'extend');
    throw this.lostError(attempt);
  }
}
