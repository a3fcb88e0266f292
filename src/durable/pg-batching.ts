/**
 * Batching for the PostgreSQL store: calls of one queue that arrive while a statement is in flight
 * (or in the same turn of the event loop) go out together in the next statement — one commit, one
 * WAL flush for many enqueues; one fenced UPDATE for many completes. Each call still resolves
 * only after the commit that holds its rows.
 * @module
 */

import { BulwarkDurableError } from './errors.js';
import type { EnqueueOutcome, LeaseRef, NewItem } from './store.js';

/** One caller's part of a batch. @internal */
export interface Call<I, O> {
  readonly input: I;
  readonly now: number;
  readonly resolve: (out: O) => void;
  readonly reject: (error: unknown) => void;
}

/**
 * Per-queue batches: `add` waits for the rest of this turn, then `flush` runs with the calls that
 * `take` picks (all by default) until none are left, with up to `parallel` flushes of one queue in
 * flight (each on its own connection). `flush` settles every call it is given.
 */
class PerQueueBatches<I, O> {
  readonly #batches = new Map<string, { waiting: Call<I, O>[]; runners: number }>();

  constructor(
    private readonly flush: (queue: string, calls: Call<I, O>[]) => Promise<void>,
    private readonly take: (waiting: readonly Call<I, O>[]) => number = (w) => w.length,
    private readonly parallel = 1,
  ) {}

  add(queue: string, input: I, now: number): Promise<O> {
    let batch = this.#batches.get(queue);
    if (batch === undefined) {
      batch = { waiting: [], runners: 0 };
      this.#batches.set(queue, batch);
    }
    const b = batch;
    return new Promise<O>((resolve, reject) => {
      b.waiting.push({ input, now, resolve, reject });
      // A new runner starts (next turn) when the running ones are all busy, up to `parallel`.
      if (b.runners < this.parallel && b.waiting.length === 1) {
        b.runners++;
        setImmediate(() => void this.#run(queue, b));
      }
    });
  }

  async #run(queue: string, batch: { waiting: Call<I, O>[]; runners: number }): Promise<void> {
    while (batch.waiting.length > 0) {
      const calls = batch.waiting.splice(0, Math.max(1, this.take(batch.waiting)));
      await this.flush(queue, calls);
    }
    batch.runners--;
    if (batch.runners === 0 && batch.waiting.length === 0) this.#batches.delete(queue);
  }
}

/** Most items one grouped INSERT carries. */
const MAX_GROUP = 1000;

/** `n` copies of `now`. @internal */
export function uniformNow(n: number, now: number): number[] {
  return new Array<number>(n).fill(now);
}

type Insert = (
  queue: string,
  items: readonly NewItem[],
  nows: readonly number[],
) => Promise<EnqueueOutcome[]>;

/** Groups concurrent enqueues of a queue into INSERTs of up to 1000 items. @internal */
export function enqueueBatches(insert: Insert): PerQueueBatches<readonly NewItem[], EnqueueOutcome[]> {
  const one = async (queue: string, c: Call<readonly NewItem[], EnqueueOutcome[]>) => {
    try {
      c.resolve(await insert(queue, c.input, uniformNow(c.input.length, c.now)));
    } catch (error) {
      c.reject(error);
    }
  };
  const flush = async (queue: string, calls: Call<readonly NewItem[], EnqueueOutcome[]>[]) => {
    if (calls.length === 1) return one(queue, calls[0]!);
    const all: NewItem[] = [];
    const nows: number[] = [];
    for (const c of calls) {
      for (const it of c.input) {
        all.push(it);
        nows.push(c.now);
      }
    }
    try {
      const out = await insert(queue, all, nows);
      let j = 0;
      for (const c of calls) {
        c.resolve(out.slice(j, j + c.input.length));
        j += c.input.length;
      }
    } catch (error) {
      if (error instanceof BulwarkDurableError) {
        for (const c of calls) c.reject(error);
        return;
      }
      // One call's bad item (a duplicate id, say) must not fail the others: retry each alone.
      for (const c of calls) await one(queue, c);
    }
  };
  // Take calls up to MAX_GROUP items (a single larger call goes alone).
  const take = (waiting: readonly Call<readonly NewItem[], EnqueueOutcome[]>[]) => {
    let n = 0;
    let size = 0;
    while (n < waiting.length) {
      const next = waiting[n]!.input.length;
      if (n > 0 && size + next > MAX_GROUP) break;
      size += next;
      n++;
    }
    return n;
  };
  return new PerQueueBatches(flush, take);
}

type Complete = (
  queue: string,
  ids: string[],
  tokens: string[],
  nows: number[],
) => Promise<readonly { id: string; token: string }[]>;

/**
 * Groups concurrent completes of a queue into fenced statements, up to `parallel` in flight.
 * @internal
 */
export function completeBatches(
  complete: Complete,
  parallel = 2,
): PerQueueBatches<readonly LeaseRef[], boolean[]> {
  return new PerQueueBatches(
    async (queue, calls) => {
      let n = 0;
      for (const c of calls) n += c.input.length;
      const ids = new Array<string>(n);
      const tokens = new Array<string>(n);
      const nows = new Array<number>(n);
      let j = 0;
      for (const c of calls) {
        for (const ref of c.input) {
          ids[j] = ref.id;
          tokens[j] = ref.leaseToken;
          nows[j] = c.now;
          j++;
        }
      }
      try {
        const rows = await complete(queue, ids, tokens, nows);
        if (rows.length === n && calls.length === 1) {
          calls[0]!.resolve(new Array<boolean>(n).fill(true));
          return;
        }
        const done = new Set<string>();
        for (const row of rows) done.add(`${row.id}\u0000${row.token}`);
        j = 0;
        for (const c of calls) {
          const out = new Array<boolean>(c.input.length);
          for (let i = 0; i < out.length; i++, j++) {
            // A ref repeated in one statement settles once: later copies report false.
            out[i] = done.delete(`${ids[j]!}\u0000${tokens[j]!}`);
          }
          c.resolve(out);
        }
      } catch (error) {
        for (const c of calls) c.reject(error);
      }
    },
    undefined,
    parallel,
  );
}
