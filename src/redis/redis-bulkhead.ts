/**
 * A bulkhead whose slots are the permits of a Redis semaphore (fleet-wide): a call takes a permit
 * or is rejected with `BulkheadRejectedError` (no queue), renews its lease while it runs, and
 * gives the permit back when it settles.
 */

import { registrySchema } from '../core/breaker/options.js';
import type { ComponentDescriptor, Snapshot } from '../core/component.js';
import type { ExecuteOptions, Operation } from '../core/context.js';
import { ExecutionContext } from '../core/context.js';
import { BulkheadRejectedError } from '../core/errors.js';
import { type EventBase, PolicyEmitter } from '../core/events.js';
import { type Link, PolicyBase, start } from '../core/policy.js';
import type { Registry } from '../core/registry.js';
import { joinRegistry } from '../core/registry.js';
import { s } from '../core/schema.js';
import { type RedisPermit, RedisSemaphore } from './semaphore.js';

/** Events of a Redis bulkhead: a call refused because every permit of the fleet was held. */
export type RedisBulkheadEvent = EventBase & {
  readonly kind: 'redisBulkhead';
  readonly event: 'reject';
  readonly reason: 'full';
  /** Permits held fleet-wide when the call was refused. */
  readonly inFlight: number;
  readonly queued: 0;
};

declare module '../core/events.js' {
  interface PolicyEventMap {
    redisBulkhead: RedisBulkheadEvent;
  }
}

/** Options of `redisBulkhead()`. */
export interface RedisBulkheadOptions {
  /** The semaphore whose permits the calls take. */
  readonly semaphore: RedisSemaphore;
  /** How often a running call renews its lease, in ms. Default `leaseMs / 3`. */
  readonly renewEveryMs?: number;
  /** Name in events, errors and snapshots. Default the semaphore's name. */
  readonly name?: string;
  /** The registry the bulkhead joins at creation. */
  readonly registry?: Registry;
}

const schema = s.object({
  semaphore: s.custom<RedisSemaphore>('a redisSemaphore()', (v, path) =>
    v instanceof RedisSemaphore ? v : s.fail(path, 'a redisSemaphore()', v),
  ),
  renewEveryMs: s.optional(s.duration({ positive: true })),
  name: s.optional(s.string()),
  registry: s.optional(registrySchema),
});

/** The descriptor of `redisBulkhead` components. */
export const REDIS_BULKHEAD_DESCRIPTOR: ComponentDescriptor = Object.freeze({
  kind: 'redisBulkhead',
  help: 'A bulkhead whose slots are the permits of a Redis semaphore (fleet-wide)',
  category: 'bulkhead',
  states: Object.freeze(['ok']),
  gauges: Object.freeze({ inFlight: 'Calls of this instance holding a permit now' }),
  counters: Object.freeze({
    rejections: 'Calls refused because every permit of the fleet was held',
    leasesLost: 'Permits whose lease ended while their call ran',
  }),
});

// Deliberate repetition: a policy class opens like every other (kind, name, emitter) after its
// descriptor literal: that is the Component contract; the descriptor values differ in meaning.
/** A bulkhead over a Redis semaphore. See `redisBulkhead()`. */
export class RedisBulkheadPolicy extends PolicyBase<never, RedisBulkheadEvent> {
  readonly kind = 'redisBulkhead';
  readonly name: string;
  /** The kind's descriptor (states, gauges, counters). */
  override get descriptor(): ComponentDescriptor {
    return REDIS_BULKHEAD_DESCRIPTOR;
  }
  /** @internal */
  readonly emitter = new PolicyEmitter<RedisBulkheadEvent>();
  readonly semaphore: RedisSemaphore;
  readonly renewEveryMs: number;
  private rejected = 0;
  private running = 0;
  private lost = 0;

  constructor(options: RedisBulkheadOptions) {
    super();
    const o = schema.parse(options, 'redisBulkhead');
    this.semaphore = o.semaphore;
    const leaseMs = this.semaphore.leaseMs;
    this.renewEveryMs = o.renewEveryMs ?? Math.max(1, Math.floor(leaseMs / 3));
    if (this.renewEveryMs >= leaseMs)
      s.fail('redisBulkhead.renewEveryMs', `less than leaseMs (${leaseMs})`, o.renewEveryMs);
    this.name = o.name ?? this.semaphore.name;
    joinRegistry(o.registry, this);
  }

  /** Calls of this instance holding a permit now; rejections and lost leases since creation. */
  get stats(): { readonly active: number; readonly rejected: number; readonly leasesLost: number } {
    return { active: this.running, rejected: this.rejected, leasesLost: this.lost };
  }

  /**
   * This instance's figures (no I/O).
   *
   * @example
   * ```ts nocheck
   * const { gauges, counters } = policy.snapshot(); // gauges.inFlight, counters.rejections
   * ```
   */
  override snapshot(): Snapshot {
    return {
      kind: this.kind,
      name: this.name,
      state: 'ok',
      gauges: { inFlight: this.running },
      counters: { rejections: this.rejected, leasesLost: this.lost },
      details: {
        semaphore: this.semaphore.name,
        limit: this.semaphore.limit,
        renewEveryMs: this.renewEveryMs,
      },
    };
  }

  // Deliberate repetition: each policy class defines its own copy of `execute` (and opens `_run` the
  // same way) so the call into `_run` stays monomorphic, a measured saving on the hot path (NOTES.md).
  /** Runs `fn` under this policy. */
  override execute<T, P extends object = Record<string, unknown>>(
    fn: Operation<T, P>,
    options?: ExecuteOptions<P>,
  ): Promise<T | never> {
    return this._run(ExecutionContext.root(fn, options), null) as Promise<T | never>;
  }

  /** @internal */
  _run(ctx: ExecutionContext, next: Link | null): Promise<unknown> {
    if (ctx._isAborted) return Promise.reject(ctx._abortReason);
    return this.semaphore._acquire().then(({ permit, holders }) => {
      if (permit === null) {
        this.rejected++;
        if (this.emitter.active) {
          this.emitter.emit({
            kind: 'redisBulkhead',
            name: this.name,
            priority: ctx.priority,
            operation: ctx.name,
            attempt: ctx.attempt,
            event: 'reject',
            reason: 'full',
            inFlight: holders,
            queued: 0,
          });
        }
        return Promise.reject(new BulkheadRejectedError(this.name, 'BULKHEAD_FULL', holders, 0));
      }
      if (ctx._isAborted) {
        this.giveBack(permit);
        return Promise.reject(ctx._abortReason);
      }
      this.running++;
      // Renewed only while the call holds the permit; unref'd: the call itself keeps the process alive.
      const timer = setInterval(() => {
        permit.extend().then(
          (held) => {
            if (!held) this.lost++;
          },
          () => {}, // Redis failing: the next tick tries again; the lease may end meanwhile.
        );
      }, this.renewEveryMs);
      timer.unref?.();
      const done = () => {
        clearInterval(timer);
        this.running--;
        this.giveBack(permit);
      };
      return start(ctx, next).then(
        (value) => {
          done();
          return value;
        },
        (error: unknown) => {
          done();
          throw error;
        },
      );
    });
  }

  /** Releases in the background: if Redis fails, the lease ends the permit anyway. */
  private giveBack(permit: RedisPermit): void {
    permit.release().then(
      () => {},
      () => {},
    );
  }
}

/**
 * Makes a bulkhead whose slots are the permits of a Redis semaphore (fleet-wide).
 *
 * @example
 * ```ts nocheck
 * import { pipeline, timeout } from 'bulwark';
 * import { redisBulkhead, redisSemaphore } from 'bulwark/redis';
 * const policy = pipeline(redisBulkhead({ semaphore: redisSemaphore({ client, name: 'db', limit: 50 }) }), timeout(5_000));
 * ```
 */
export function redisBulkhead(options: RedisBulkheadOptions): RedisBulkheadPolicy {
  return new RedisBulkheadPolicy(options);
}
