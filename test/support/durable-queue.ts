/**
 * Helpers of the queue's unit tests (src/durable/*.test.ts): a queue on an in-memory SQLite store
 * with a fake clock, whose queue and worker events are collected through one registry.
 */
import { afterEach } from 'vitest';
import { backoff } from '../../src/core/backoff.js';
import { createRegistry } from '../../src/core/registry.js';
import type { DurableQueueEvent, DurableWorkerEvent } from '../../src/durable/events.js';
import type { QueueOptions } from '../../src/durable/options.js';
import { openQueue, type Queue } from '../../src/durable/queue.js';
import { sqliteStore } from '../../src/durable/sqlite-store.js';
import { type FakeClock, flushMicrotasks } from '../../src/testing/fake-clock.js';

/** Lets the store's group commits (setImmediate) and the worker's promise chains run. */
export async function settle(rounds = 12): Promise<void> {
  for (let i = 0; i < rounds; i++) await flushMicrotasks();
}

export async function until(
  cond: () => boolean | Promise<boolean>,
  clock?: FakeClock,
  stepMs = 0,
): Promise<void> {
  for (let i = 0; i < 500; i++) {
    if (await cond()) return;
    if (clock !== undefined) await clock.tick(stepMs);
    await settle(2);
  }
  throw new Error('condition not met');
}

/** Queues to close after each test. */
export const open: Queue<unknown>[] = [];
afterEach(async () => {
  for (const q of open.splice(0)) await q.close({ graceMs: 0 });
});

export async function makeQueue<T = unknown>(
  clock: FakeClock,
  options: Partial<QueueOptions<T>> = {},
): Promise<{ q: Queue<T>; events: (DurableQueueEvent | DurableWorkerEvent)[] }> {
  // The queue and its workers join one registry: its listener sees every event of both.
  const registry = createRegistry();
  const events: (DurableQueueEvent | DurableWorkerEvent)[] = [];
  registry.onEvent((e) => events.push(e as DurableQueueEvent | DurableWorkerEvent));
  const q = await openQueue<T>({
    registry,
    name: `q${Math.random().toString(36).slice(2)}`,
    store: sqliteStore({ path: ':memory:' }),
    clock,
    backoff: backoff.constant(1000),
    ...options,
  });
  open.push(q as Queue<unknown>);
  return { q, events };
}
