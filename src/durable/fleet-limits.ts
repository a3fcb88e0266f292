/**
 * Fleet-wide limits of a queue (`queue.limits`): at most `concurrency` items active at once and at
 * most `ratePerSec` claims per second, across every process and node sharing the store. Stored
 * with the queue and enforced in the store's claim (PostgreSQL: a short per-queue transaction under
 * an advisory lock, for limited queues only; SQLite: inside the claim's write transaction). A
 * change applies everywhere within about a second. Per-worker `concurrency` and `rateLimit` still
 * apply on top.
 * @module
 */

import type { Clock } from '../core/clock.js';
import { ConfigError } from '../core/errors.js';
import { s } from '../core/schema.js';
import type { QueueStore } from './store.js';
import { type QueueLimits, requireFeatures } from './store-features.js';

/** Options of `queue.limits.set`. */
export interface LimitsOptions {
  /** At most this many items of the queue running (claimed with a valid lease) at once, fleet-wide. */
  concurrency?: number;
  /** At most this many claims per second, fleet-wide. */
  ratePerSec?: number;
  /** Token-bucket burst of `ratePerSec`. Default: one second's worth (at least 1). */
  burst?: number;
}

const limitsSchema = s.object({
  concurrency: s.optional(s.int({ min: 1 })),
  ratePerSec: s.optional(s.number({ above: 0 })),
  burst: s.optional(s.number({ min: 1 })),
});

/** What the limits need of their queue. @internal */
export interface LimitsHost {
  readonly name: string;
  readonly store: QueueStore;
  readonly clock: Clock;
  check(write: boolean): void;
}

/** The fleet-wide limits of a queue (`queue.limits`). */
export class FleetLimits {
  /** @internal */
  constructor(private readonly q: LimitsHost) {}

  /**
   * Sets the queue's fleet-wide limits (replacing the previous ones).
   *
   * @example
   * ```ts
   * import { openQueue, sqliteStore } from 'bulwark/durable';
   * const q = await openQueue({ name: 'api-calls', store: sqliteStore({ path: ':memory:' }) });
   * await q.limits.set({ concurrency: 5, ratePerSec: 20 });
   * console.log(await q.limits.get()); // { concurrency: 5, ratePerSec: 20, burst: null }
   * await q.close();
   * ```
   */
  async set(options: LimitsOptions): Promise<void> {
    this.q.check(true);
    const o = limitsSchema.parse(options, 'limits.set') as LimitsOptions;
    if (o.concurrency === undefined && o.ratePerSec === undefined)
      throw new ConfigError(
        'limits.set',
        'concurrency and/or ratePerSec (use limits.clear() to remove them)',
        options,
      );
    if (o.burst !== undefined && o.ratePerSec === undefined)
      throw new ConfigError('limits.set.burst', 'only with ratePerSec', o.burst);
    const limits: QueueLimits = {
      concurrency: o.concurrency ?? null,
      ratePerSec: o.ratePerSec ?? null,
      burst: o.burst ?? null,
    };
    await requireFeatures(this.q.store, 'fleet-wide limits').setLimits(
      this.q.name,
      limits,
      this.q.clock.date(),
    );
  }

  /** Removes the queue's fleet-wide limits. */
  async clear(): Promise<void> {
    this.q.check(true);
    await requireFeatures(this.q.store, 'fleet-wide limits').setLimits(
      this.q.name,
      null,
      this.q.clock.date(),
    );
  }

  /** The queue's fleet-wide limits, or null when it has none. */
  async get(): Promise<QueueLimits | null> {
    this.q.check(false);
    return requireFeatures(this.q.store, 'fleet-wide limits').getLimits(this.q.name);
  }
}
