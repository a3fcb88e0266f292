/**
 * The dead letters of a queue: list them with their last error, redrive them (paced, by ids or
 * oldest first, back to their queue or into another), purge them.
 * @module
 */

import type { Clock } from '../core/clock.js';
import { parseError } from './failures.js';
import type { DeadLetter, ItemView } from './job.js';
import { type RedriveOptions, redriveSchema } from './options.js';
import type { ItemState, QueueStore, StoredItem } from './store.js';
import { type RedriveMove, requireFeatures } from './store-features.js';

/** What dead letters need of their queue. @internal */
export interface DeadLettersHost<T> {
  readonly name: string;
  readonly store: QueueStore;
  readonly clock: Clock;
  /** Throws when the queue is closed (or, with `write`, read-only). */
  check(write: boolean): void;
  view(item: StoredItem): ItemView<T>;
  /** The item's payload bound to queue `to` (re-encrypted when the queue encrypts). */
  rebind(item: StoredItem, to: string): { payload: Uint8Array; keyId: string | null };
  /** Counts and reports a redriven batch. */
  redriven(ids: readonly string[], to: string): void;
  purge(state: ItemState, options: { olderThanMs?: number }): Promise<number>;
}

/** An id given to `redrive({ ids })` that was not redriven, and why. */
export interface RedriveSkip {
  readonly id: string;
  /**
   * `not-found`: no such item in the queue; `not-dead`: the item is in another `state`; `limit`:
   * `limit` items were redriven before this id's turn; `key-conflict` (redrive `to` another queue):
   * its idempotency key is taken there, so it stays dead here; `undecryptable` (`to`): its payload
   * could not be re-encrypted for the other queue.
   */
  readonly reason: 'not-found' | 'not-dead' | 'limit' | 'key-conflict' | 'undecryptable';
  readonly state?: ItemState;
}

/**
 * The result of a redrive.
 *
 * @example
 * ```ts
 * import type { RedriveResult } from 'bulwark/durable';
 * const r: RedriveResult = { redriven: ['a'], skipped: [{ id: 'b', reason: 'not-found' }], aborted: false };
 * console.log(r.skipped.length); // 1
 * ```
 */
export interface RedriveResult {
  /** Ids sent back to pending, in order. */
  readonly redriven: string[];
  /** For `ids`: every requested id that was not redriven, with the reason. */
  readonly skipped: RedriveSkip[];
  /** True when the signal stopped the redrive before it was done. */
  readonly aborted: boolean;
}

/** The dead letters of a queue (`queue.deadLetters`). */
export class DeadLetters<T> {
  /** @internal */
  constructor(private readonly q: DeadLettersHost<T>) {}

  /**
   * Dead items, oldest id first, with their reason and last error.
   *
   * @example
   * ```ts
   * import { openQueue, sqliteStore } from 'bulwark/durable';
   * const q = await openQueue({ name: 'dl', store: sqliteStore({ path: ':memory:' }) });
   * console.log((await q.deadLetters.list({ limit: 50 })).length); // 0
   * await q.close();
   * ```
   */
  async list(options: { limit?: number; after?: string } = {}): Promise<DeadLetter<T>[]> {
    this.q.check(false);
    const items = await this.q.store.list(this.q.name, {
      state: 'dead',
      limit: options.limit ?? 50,
      ...(options.after === undefined ? {} : { after: options.after }),
    });
    return items.map((i) => ({ ...this.q.view(i), error: parseError(i.lastError) }));
  }

  /**
   * Sends dead items back to pending with attempts reset (the redrive is recorded on each item),
   * oldest first or by ids, at most `limit`, paced at `ratePerSec`. With `ids`, every id that was
   * not redriven is listed in `skipped` with the reason; with a `signal`, an abort stops between
   * batches and the result says what was done (`aborted: true`).
   *
   * @example
   * ```ts
   * import { openQueue, sqliteStore } from 'bulwark/durable';
   * const q = await openQueue({ name: 'rd', store: sqliteStore({ path: ':memory:' }) });
   * const { redriven, skipped } = await q.deadLetters.redrive({ ids: ['nope'] });
   * console.log(redriven.length, skipped[0]?.reason); // 0 not-found
   * await q.close();
   * ```
   */
  async redrive(options: RedriveOptions = {}): Promise<RedriveResult> {
    this.q.check(true);
    redriveSchema.parse(options, 'redrive');
    const ids = options.ids;
    const limit = options.limit ?? ids?.length ?? 100;
    const rate = options.ratePerSec;
    const clock = this.q.clock;
    const to = options.to === undefined || options.to === this.q.name ? undefined : options.to;
    if (to !== undefined) requireFeatures(this.q.store, 'redrive into another queue');
    // Batches of about 1/10 s of the rate, waiting between them so the average stays at the rate.
    const batch = rate === undefined ? limit : Math.max(1, Math.min(limit, Math.floor(rate / 10)));
    const redriven: string[] = [];
    const skipped: RedriveSkip[] = [];
    let offset = 0;
    while (redriven.length < limit && options.signal?.aborted !== true) {
      const n = Math.min(batch, limit - redriven.length);
      const started = clock.now();
      let got: string[];
      if (ids !== undefined) {
        if (offset >= ids.length) break;
        const slice = ids.slice(offset, offset + n);
        offset += slice.length;
        if (to !== undefined) got = await this.moveTo(to, slice, skipped);
        else {
          got = await this.q.store.redrive(this.q.name, { ids: slice, limit: n }, clock.date());
          await this.explain(slice, got, skipped);
        }
      } else {
        if (to !== undefined) {
          const oldest = await this.q.store.list(this.q.name, { state: 'dead', limit: n, order: 'updated' });
          got = await this.moveTo(to, oldest, skipped);
          if (oldest.length === 0) break;
        } else got = await this.q.store.redrive(this.q.name, { limit: n }, clock.date());
        if (got.length === 0) break;
      }
      redriven.push(...got);
      if (got.length > 0) this.q.redriven(got, to ?? this.q.name);
      options.onProgress?.(redriven);
      if (ids === undefined && got.length < n) break;
      if (rate !== undefined && redriven.length < limit) {
        const wait = (Math.max(got.length, 1) / rate) * 1000 - (clock.now() - started);
        if (wait > 0) await pause(clock, wait, options.signal);
      }
    }
    const aborted =
      options.signal?.aborted === true &&
      redriven.length < limit &&
      (ids === undefined || offset < ids.length);
    return { redriven, skipped, aborted };
  }

  /**
   * What `redrive` with the same `ids` and `limit` would pick now (the same predicate and order:
   * dead items, oldest change first, or the given ids that are dead), changing nothing.
   *
   * @example
   * ```ts
   * import { openQueue, sqliteStore } from 'bulwark/durable';
   * const q = await openQueue({ name: 'pv', store: sqliteStore({ path: ':memory:' }) });
   * console.log(await q.deadLetters.preview({ limit: 10 })); // { wouldRedrive: [], skipped: [] }
   * await q.close();
   * ```
   */
  async preview(
    options: Pick<RedriveOptions, 'ids' | 'limit'> = {},
  ): Promise<{ wouldRedrive: string[]; skipped: RedriveSkip[] }> {
    this.q.check(false);
    redriveSchema.parse(options, 'preview');
    const ids = options.ids;
    const limit = options.limit ?? ids?.length ?? 100;
    const skipped: RedriveSkip[] = [];
    if (ids === undefined) {
      const dead = await this.q.store.list(this.q.name, { state: 'dead', limit, order: 'updated' });
      return { wouldRedrive: dead.map((d) => d.id), skipped };
    }
    const wouldRedrive: string[] = [];
    for (const id of ids) {
      const item = await this.q.store.get(this.q.name, id);
      if (item?.state === 'dead') {
        if (wouldRedrive.length < limit) wouldRedrive.push(id);
        else skipped.push({ id, reason: 'limit' });
      } else if (item === undefined) skipped.push({ id, reason: 'not-found' });
      else skipped.push({ id, reason: 'not-dead', state: item.state });
    }
    return { wouldRedrive, skipped };
  }

  /**
   * Moves dead items (by id, or as listed) into queue `to` in one store transaction; records the
   * others in `out`. Resolves to the ids moved.
   */
  private async moveTo(
    to: string,
    asked: readonly (string | StoredItem)[],
    out: RedriveSkip[],
  ): Promise<string[]> {
    const moves: RedriveMove[] = [];
    for (const a of asked) {
      const item = typeof a === 'string' ? await this.q.store.get(this.q.name, a) : a;
      const id = typeof a === 'string' ? a : a.id;
      if (item === undefined) out.push({ id, reason: 'not-found' });
      else if (item.state !== 'dead') out.push({ id, reason: 'not-dead', state: item.state });
      else {
        try {
          moves.push({ id, expectedKeyId: item.keyId, ...this.q.rebind(item, to) });
        } catch {
          out.push({ id, reason: 'undecryptable' });
        }
      }
    }
    if (moves.length === 0) return [];
    const outcomes = await requireFeatures(this.q.store, 'redrive into another queue').redriveTo(
      this.q.name,
      to,
      moves,
      this.q.clock.date(),
    );
    const moved: string[] = [];
    outcomes.forEach((o, i) => {
      const id = moves[i]!.id;
      if (o === 'moved') moved.push(id);
      else out.push({ id, reason: o });
    });
    return moved;
  }

  /** Records why each id of `asked` that is not in `got` was not redriven. */
  private async explain(asked: readonly string[], got: readonly string[], out: RedriveSkip[]): Promise<void> {
    const done = new Set(got);
    for (const id of asked) {
      if (done.has(id)) continue;
      const item = await this.q.store.get(this.q.name, id);
      out.push(
        item === undefined ? { id, reason: 'not-found' } : { id, reason: 'not-dead', state: item.state },
      );
    }
  }

  /**
   * Deletes dead items (older than `olderThanMs` when given).
   *
   * @example
   * ```ts
   * import { openQueue, sqliteStore } from 'bulwark/durable';
   * const q = await openQueue({ name: 'pd', store: sqliteStore({ path: ':memory:' }) });
   * console.log(await q.deadLetters.purge()); // 0
   * await q.close();
   * ```
   */
  purge(options: { olderThanMs?: number } = {}): Promise<number> {
    return this.q.purge('dead', options);
  }
}

/** Waits `ms` on the clock, or less when `signal` aborts. */
function pause(clock: Clock, ms: number, signal: AbortSignal | undefined): Promise<void> {
  if (signal?.aborted === true) return Promise.resolve();
  return new Promise<void>((resolve) => {
    const done = () => {
      clock.clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    };
    const timer = clock.setTimeout(done, ms);
    signal?.addEventListener('abort', done, { once: true });
  });
}
