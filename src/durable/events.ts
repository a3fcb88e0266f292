/**
 * Events of durable queues and their workers. A queue emits its own events (kind `durableQueue`,
 * `name` = the queue); each worker emits the events of the items it runs (kind `durableWorker`,
 * `name` = the worker, `queue` = its queue). Both reach the component's `onEvent` listeners, the
 * registry they joined, and the process-wide `telemetry` bus.
 * @module
 */

import type { EventBase } from '../core/events.js';

interface QueueBase extends EventBase {
  readonly kind: 'durableQueue';
  /** The queue's name (also in `name`). */
  readonly queue: string;
}

interface WorkerBase extends EventBase {
  readonly kind: 'durableWorker';
  /** The worker's queue (`name` is the worker's name). */
  readonly queue: string;
}

/** The state of a queue in its snapshot. */
export type QueueState = 'closed' | 'closing' | 'paused' | 'readOnly' | 'open';

/** A queue's state from its flags (closed wins over closing, over paused, over read-only). */
export function queueState(
  closed: boolean,
  closing: boolean,
  paused: boolean,
  readOnly: boolean,
): QueueState {
  if (closed) return 'closed';
  if (closing) return 'closing';
  if (paused) return 'paused';
  return readOnly ? 'readOnly' : 'open';
}

/**
 * An event of a durable queue. `attempt` is 0 (these events are not about one attempt).
 * - `enqueued`: an item was stored (or found to be a `duplicate` of an existing key).
 * - `redriven`: dead items were sent back to pending (`to`: the queue they went to).
 * - `paused` / `resumed`: the queue was paused or resumed (fleet-wide).
 * - `stateChange`: the snapshot's state moved (`open`, `readOnly`, `paused`, `closing`, `closed`).
 * - `scheduled`: this process fired ticks of a schedule (`ids`: the items made).
 * - `error`: a background store operation of the queue failed (its stats refresh).
 */
export type DurableQueueEvent =
  | (QueueBase & { readonly event: 'enqueued'; readonly id: string; readonly duplicate: boolean })
  | (QueueBase & { readonly event: 'redriven'; readonly ids: readonly string[]; readonly to: string })
  | (QueueBase & { readonly event: 'paused' | 'resumed' })
  | (QueueBase & {
      readonly event: 'stateChange';
      readonly from: QueueState;
      readonly to: QueueState;
    })
  | (QueueBase & { readonly event: 'scheduled'; readonly schedule: string; readonly ids: readonly string[] })
  | (QueueBase & { readonly event: 'error'; readonly operation: string; readonly error: unknown });

/**
 * An event of a worker. `attempt` is the item's attempt number (1-based; 0 for events that are not
 * about one attempt).
 * - `claimed`: the worker took an item and starts its handler.
 * - `completed`: the handler succeeded and the completion was committed.
 * - `retried`: the handler failed; the item runs again after `delayMs`.
 * - `dead`: the item moved to the dead letters (`reason`: `exhausted`, `non-retryable`,
 *   `DECRYPT_FAILED`, `DECODE_FAILED`, `lease-expired`, `stopped`).
 * - `timeout`: the handler ran past `timeoutMs`; its signal was aborted and the attempt failed.
 *   `ignoredSignal` events follow for handlers that still had not settled one more `timeoutMs`
 *   later (their late results are discarded).
 * - `leaseLost`: an ack, fail or heartbeat was refused because the lease expired or was taken
 *   over (`during` says which); the item runs (or ran) elsewhere.
 * - `released`: `worker.stop()` returned a still-running item to pending at its grace deadline.
 * - `error`: a store operation of the worker failed (the worker keeps going and retries later).
 */
export type DurableWorkerEvent =
  | (WorkerBase & { readonly event: 'claimed'; readonly id: string })
  | (WorkerBase & { readonly event: 'completed'; readonly id: string; readonly durationMs: number })
  | (WorkerBase & {
      readonly event: 'retried';
      readonly id: string;
      readonly delayMs: number;
      readonly error: unknown;
    })
  | (WorkerBase & {
      readonly event: 'dead';
      readonly id: string;
      readonly reason: string;
      readonly error: unknown;
    })
  | (WorkerBase & {
      readonly event: 'timeout' | 'ignoredSignal';
      readonly id: string;
      readonly timeoutMs: number;
    })
  | (WorkerBase & {
      readonly event: 'leaseLost';
      readonly id: string;
      readonly during: 'complete' | 'fail' | 'extend' | 'expired';
    })
  | (WorkerBase & { readonly event: 'released'; readonly id: string })
  | (WorkerBase & { readonly event: 'error'; readonly operation: string; readonly error: unknown });

declare module '../core/events.js' {
  interface PolicyEventMap {
    durableQueue: DurableQueueEvent;
    durableWorker: DurableWorkerEvent;
  }
}

/** The fields every event of a queue or worker carries. @internal */
export function eventBase<K extends 'durableQueue' | 'durableWorker'>(
  kind: K,
  name: string,
  queue: string,
  attempt: number,
): { kind: K; name: string; queue: string; priority: string; operation: undefined; attempt: number } {
  return { kind, name, queue, priority: 'normal', operation: undefined, attempt };
}
