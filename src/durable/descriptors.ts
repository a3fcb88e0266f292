/**
 * What durable queues and workers report through the telemetry spine: their states, gauges and
 * counters (the same objects for every queue and worker).
 * @module
 */

import type { ComponentDescriptor, Snapshot } from '../core/component.js';
import type { StoreStats } from './store.js';

/**
 * The descriptor of every durable queue (`kind: 'durableQueue'`).
 *
 * @example
 * ```ts
 * import { QUEUE_DESCRIPTOR } from 'bulwark/durable';
 * console.log(Object.keys(QUEUE_DESCRIPTOR.gauges)); // [ 'workers', 'inFlight', 'pending', … ]
 * ```
 */
export const QUEUE_DESCRIPTOR: ComponentDescriptor = {
  kind: 'durableQueue',
  help: 'A durable queue: items stored in SQLite or PostgreSQL, run at least once by its workers',
  category: 'queue',
  states: ['open', 'paused', 'closing', 'closed', 'readOnly'],
  gauges: {
    workers: 'Workers of this queue in this process',
    inFlight: 'Handlers running now in this process',
    pending: 'Items due now (store-wide, as of the last stats refresh)',
    delayed: 'Pending items not yet due (last stats refresh)',
    active: 'Items claimed by some worker (last stats refresh)',
    completed: 'Completed items kept by retention (last stats refresh)',
    dead: 'Dead letters (last stats refresh)',
    oldestPendingAgeMs: 'Age of the oldest due pending item, in ms (last stats refresh)',
  },
  counters: {
    enqueued: 'Items stored by this process',
    duplicates: 'Enqueues that found their idempotency key taken (nothing stored)',
    redriven: 'Dead letters sent back to pending by this process',
    scheduled: 'Items made by this process for ticks of the queue schedules',
    errors: 'Background store operations of the queue that failed',
  },
};

/**
 * The descriptor of every durable-queue worker (`kind: 'durableWorker'`).
 *
 * @example
 * ```ts
 * import { WORKER_DESCRIPTOR } from 'bulwark/durable';
 * console.log(WORKER_DESCRIPTOR.states); // [ 'running', 'stopping', 'stopped' ]
 * ```
 */
export const WORKER_DESCRIPTOR: ComponentDescriptor = {
  kind: 'durableWorker',
  help: 'A worker running the handler of a durable queue under fenced leases',
  category: 'queue',
  states: ['running', 'stopping', 'stopped'],
  gauges: {
    inFlight: 'Handlers running now',
    buffered: 'Prefetched items waiting for a handler slot',
    concurrency: 'Handler slots',
  },
  counters: {
    claimed: 'Items claimed',
    completed: 'Items completed (ack committed)',
    retried: 'Failed attempts scheduled for a retry',
    dead: 'Items moved to the dead letters',
    timeouts: 'Attempts that ran past timeoutMs',
    ignoredSignals: 'Timed-out handlers still running one more timeoutMs later (they ignore their signal)',
    leaseLost: 'Acks, fails or heartbeats refused because the lease was lost',
    released: 'Items returned to pending by stop()',
    errors: 'Store operations that failed',
  },
};

/** A queue's snapshot from its figures (the store's counts as of `stats.at`). @internal */
export function queueSnapshot(
  name: string,
  state: string,
  workers: number,
  inFlight: number,
  st: (StoreStats & { at: number }) | null,
  counters: Readonly<Record<string, number>>,
  details: { store: string; timeoutMs: number; maxAttempts: number },
): Snapshot {
  return {
    kind: 'durableQueue',
    name,
    state,
    gauges: {
      workers,
      inFlight,
      pending: st?.pending ?? 0,
      delayed: st?.delayed ?? 0,
      active: st?.active ?? 0,
      completed: st?.completed ?? 0,
      dead: st?.dead ?? 0,
      oldestPendingAgeMs: st?.oldestPendingAgeMs ?? 0,
    },
    counters: { ...counters },
    details: { ...details, statsAt: st === null ? null : new Date(st.at).toISOString() },
  };
}
