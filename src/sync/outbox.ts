/**
 * The client's outbox: the ONE place `bulwark/sync` uses the durable queue (its public API only).
 * Operations are enqueued on SQLite (fsynced before `add` resolves, keyed by `opId`), and
 * replayed in batches by a worker: the worker claims up to `batchSize` due operations (higher
 * priority first), `flush` pushes them, and each one completes only when the server acknowledged
 * it. A crash mid-replay leaves the unacknowledged ones in the queue; they run again after their
 * lease (the server recognises the ones it had already applied by `opId`).
 * @module
 */

import { backoff } from '../core/backoff.js';
import type { Clock } from '../core/clock.js';
import { openQueue, type Queue, sqliteStore } from '../durable/index.js';
import type { SyncOperation } from './record.js';

/** What `flush` says about each operation of a batch. */
export type FlushOutcome = 'done' | 'later';

/** The client's durable outbox. @internal */
export interface Outbox {
  /** Stores `op` durably (resolves after the fsynced commit). */
  add(op: SyncOperation, priority: number): Promise<void>;
  /** Operations not yet acknowledged (pending or in replay), in no particular order. */
  unacknowledged(): Promise<SyncOperation[]>;
  /**
   * Replays due operations through `flush` until none is due, or `flush` throws (then returns the
   * error; the batch stays in the outbox). Operations `flush` answers `later` run again after
   * `laterMs`.
   */
  drain(
    flush: (ops: SyncOperation[]) => Promise<Map<string, FlushOutcome>>,
  ): Promise<{ error: unknown; later: number }>;
  /** Operations waiting and operations given up (dead letters, kept). */
  counts(): Promise<{ waiting: number; dead: number }>;
  close(): Promise<void>;
}

/** Options of the outbox. @internal */
export interface OutboxOptions {
  /** SQLite file, or `:memory:`. */
  path: string;
  name: string;
  batchSize: number;
  /** Lease of a claimed operation: after a crash mid-replay, it runs again after this. */
  leaseMs: number;
  /** Delay before an operation answered `later` runs again. */
  laterMs: number;
  clock?: Clock;
}

class LaterError extends Error {
  constructor() {
    super('Waits for an earlier operation of the same record, or for the server clock');
  }
}

const POLL_MS = 10;

/** Opens the outbox. @internal */
export async function openOutbox(o: OutboxOptions): Promise<Outbox> {
  const q: Queue<SyncOperation> = await openQueue<SyncOperation>({
    name: o.name,
    store: sqliteStore({ path: o.path }),
    // Never dead-letter an operation for failing to reach the server: offline can last days.
    maxAttempts: 1_000_000_000,
    backoff: backoff.constant(o.laterMs),
    ...(o.clock !== undefined ? { clock: o.clock } : {}),
  });
  const wait = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
  return {
    async add(op, priority) {
      await q.enqueue(op, { key: op.opId, priority });
    },
    async unacknowledged() {
      const out: SyncOperation[] = [];
      for (const state of ['pending', 'active'] as const) {
        let after: string | undefined;
        for (;;) {
          const page = await q.list({ state, limit: 500, ...(after !== undefined ? { after } : {}) });
          for (const item of page) if (item.payload !== undefined) out.push(item.payload);
          if (page.length < 500) break;
          after = page[page.length - 1]!.id;
        }
      }
      return out;
    },
    async drain(flush) {
      let error: unknown;
      let later = 0;
      let batch: { op: SyncOperation; resolve: () => void; reject: (e: unknown) => void }[] = [];
      let flushing = 0;
      const run = async (): Promise<void> => {
        const b = batch;
        batch = [];
        flushing++;
        try {
          const out = await flush(b.map((x) => x.op));
          for (const x of b) {
            if (out.get(x.op.opId) === 'done') x.resolve();
            else {
              later++;
              x.reject(new LaterError());
            }
          }
        } catch (e) {
          error ??= e;
          for (const x of b) x.reject(e);
        } finally {
          flushing--;
        }
      };
      const worker = q.work(
        (job) =>
          new Promise<void>((resolve, reject) => {
            if (error !== undefined) return reject(error);
            if (batch.length === 0) setImmediate(() => void run());
            batch.push({ op: job.payload, resolve, reject });
          }),
        { concurrency: o.batchSize, leaseMs: o.leaseMs, pollMs: POLL_MS },
      );
      // Items deferred by an earlier failed attempt (offline, or told to come back later) become
      // due within `laterMs`: wait for them once, so a sync right after coming online sends them.
      const started = Date.now();
      for (;;) {
        await wait(POLL_MS);
        if (error !== undefined) break;
        const st = await q.stats();
        const idle = st.active === 0 && batch.length === 0 && flushing === 0;
        const waitingForDeferred = st.delayed > 0 && Date.now() - started <= o.laterMs + 2 * POLL_MS;
        if (st.pending - st.delayed === 0 && idle && !waitingForDeferred) break;
      }
      await worker.stop({ graceMs: 0 });
      return { error, later };
    },
    async counts() {
      const st = await q.stats();
      return { waiting: st.pending + st.active, dead: st.dead };
    },
    close: () => q.close({ graceMs: 0 }),
  };
}
