/**
 * LISTEN/NOTIFY for the PostgreSQL store: one dedicated connection per store LISTENs on the
 * schema's channel while some worker subscribes (pinged; reconnected with backoff, after which
 * every subscriber is woken once), and NOTIFYs after commits are coalesced per queue.
 * @module
 */

import type { Pool, PoolClient } from 'pg';

/** What the notifier needs of its store. @internal */
export interface NotifierHost {
  pool(): Promise<Pool>;
  query(text: string, values: unknown[], name: string): Promise<unknown>;
  closed(): boolean;
  report(error: unknown): void;
  wrap(error: unknown): unknown;
}

type Listener = () => void;

/** The store's LISTEN connection and its subscribers, and the coalesced NOTIFYs. @internal */
export class PgNotifier {
  readonly #h: NotifierHost;
  readonly #channel: string;
  readonly #notifyName: string;
  readonly #checkMs: number;
  readonly #subs = new Map<string, Set<Listener>>();
  #listenClient: PoolClient | undefined;
  #listenStarting: Promise<void> | undefined;
  #listenTimer: ReturnType<typeof setTimeout> | undefined;
  #listenCheck: ReturnType<typeof setInterval> | undefined;
  #listenBackoff = 100;
  #listenedBefore = false;

  constructor(host: NotifierHost, channel: string, notifyName: string, checkMs: number) {
    this.#h = host;
    this.#channel = channel;
    this.#notifyName = notifyName;
    this.#checkMs = checkMs;
  }

  readonly #notifying = new Map<string, { again: boolean }>();

  /** NOTIFY after a commit, at most one in flight per queue (one more follows if asked meanwhile). */
  notifyLater(queue: string): void {
    const state = this.#notifying.get(queue);
    if (state !== undefined) {
      state.again = true;
      return;
    }
    const st = { again: false };
    this.#notifying.set(queue, st);
    const send = (): void => {
      st.again = false;
      this.#h.query('SELECT pg_notify($1, $2)', [this.#channel, queue], this.#notifyName).then(
        () => {
          if (st.again && !this.#h.closed()) send();
          else this.#notifying.delete(queue);
        },
        (error: unknown) => {
          this.#notifying.delete(queue);
          this.#h.report(error);
        },
      );
    };
    send();
  }

  async subscribe(queue: string, onReady: () => void): Promise<() => Promise<void>> {
    let set = this.#subs.get(queue);
    if (set === undefined) {
      set = new Set();
      this.#subs.set(queue, set);
    }
    // Wrap so that the same function subscribed twice is two subscriptions.
    const listener: Listener = () => onReady();
    set.add(listener);
    try {
      await withTimeout(this.#ensureListening(), this.#checkMs, 'subscribing');
    } catch (error) {
      // The LISTEN connection reconnects in the background; the queue polls meanwhile.
      this.#h.report(error);
    }
    let done = false;
    return async () => {
      if (done) return;
      done = true;
      const cur = this.#subs.get(queue);
      cur?.delete(listener);
      if (cur !== undefined && cur.size === 0) this.#subs.delete(queue);
      if (this.#subs.size === 0) this.#stopListening();
    };
  }

  #ensureListening(): Promise<void> {
    if (this.#listenClient !== undefined || this.#h.closed()) return Promise.resolve();
    this.#listenStarting ??= this.#startListening().finally(() => {
      this.#listenStarting = undefined;
    });
    return this.#listenStarting;
  }

  async #startListening(): Promise<void> {
    if (this.#listenTimer !== undefined) {
      clearTimeout(this.#listenTimer);
      this.#listenTimer = undefined;
    }
    let client: PoolClient | undefined;
    const limit = this.#checkMs;
    try {
      const pool = await this.#h.pool();
      // Bounded: a half-open network must not leave the LISTEN connection hanging forever.
      client = await withTimeout(pool.connect(), limit, 'connecting the LISTEN connection', (late) =>
        destroyClient(late),
      );
      const c = client;
      c.on('error', (error) => this.#dropListener(c, error));
      c.on('end', () => this.#dropListener(c, new Error('LISTEN connection ended')));
      c.on('notification', (msg) => {
        if (msg.channel !== this.#channel) return;
        if (msg.payload === undefined) return;
        this.#fire(msg.payload);
      });
      await withTimeout(c.query(`LISTEN "${this.#channel}"`), limit, 'LISTEN');
      if (this.#h.closed() || this.#subs.size === 0) {
        c.release(true);
        return;
      }
      this.#listenClient = c;
      this.#listenBackoff = 100;
      const every = this.#checkMs;
      this.#listenCheck = setInterval(() => this.#ping(c, every), every);
      this.#listenCheck.unref?.();
      // After a reconnect, notifications may have been missed: let every subscriber look.
      if (this.#listenedBefore) for (const q of this.#subs.keys()) this.#fire(q);
      this.#listenedBefore = true;
    } catch (error) {
      if (client !== undefined) destroyClient(client);
      this.#scheduleListen();
      throw this.#h.wrap(error);
    }
  }

  #ping(c: PoolClient, timeoutMs: number): void {
    if (this.#listenClient !== c) return;
    let settled = false;
    const timer = setTimeout(() => {
      if (!settled)
        this.#dropListener(c, new Error(`LISTEN connection did not answer a ping within ${timeoutMs} ms`));
    }, timeoutMs);
    timer.unref?.();
    c.query('SELECT 1').then(
      () => {
        settled = true;
        clearTimeout(timer);
      },
      (error: unknown) => {
        settled = true;
        clearTimeout(timer);
        this.#dropListener(c, error);
      },
    );
  }

  #dropListener(c: PoolClient, error: unknown): void {
    if (this.#listenClient !== c) return;
    this.#listenClient = undefined;
    if (this.#listenCheck !== undefined) {
      clearInterval(this.#listenCheck);
      this.#listenCheck = undefined;
    }
    this.#h.report(this.#h.wrap(error));
    destroyClient(c);
    if (!this.#h.closed() && this.#subs.size > 0) this.#scheduleListen();
  }

  #scheduleListen(): void {
    if (this.#h.closed() || this.#subs.size === 0 || this.#listenTimer !== undefined) return;
    const delay = this.#listenBackoff;
    this.#listenBackoff = Math.min(this.#listenBackoff * 2, 5000);
    this.#listenTimer = setTimeout(() => {
      this.#listenTimer = undefined;
      this.#ensureListening().catch((error: unknown) => this.#h.report(error));
    }, delay);
    this.#listenTimer.unref?.();
  }

  stop(): void {
    this.#subs.clear();
    this.#stopListening();
  }

  #stopListening(): void {
    if (this.#listenTimer !== undefined) {
      clearTimeout(this.#listenTimer);
      this.#listenTimer = undefined;
    }
    if (this.#listenCheck !== undefined) {
      clearInterval(this.#listenCheck);
      this.#listenCheck = undefined;
    }
    const c = this.#listenClient;
    this.#listenClient = undefined;
    if (c !== undefined) destroyClient(c);
  }

  #fire(queue: string): void {
    const set = this.#subs.get(queue);
    if (set === undefined) return;
    for (const l of set) {
      try {
        l();
      } catch (error) {
        this.#h.report(error);
      }
    }
  }
}

/** Releases a pool client and destroys its socket at once (a half-open connection never ends by itself). */
export function destroyClient(c: PoolClient): void {
  c.removeAllListeners('notification');
  c.on('error', () => {});
  try {
    c.release(true);
  } catch {
    // released already
  }
  try {
    (c as unknown as { connection?: { stream?: { destroy?: () => void } } }).connection?.stream?.destroy?.();
  } catch {
    // nothing more to do
  }
}

/** `p`, or a rejection after `ms`; a value that arrives late goes to `onLate`. */
export function withTimeout<T>(
  p: Promise<T>,
  ms: number,
  what: string,
  onLate?: (late: T) => void,
): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      reject(new Error(`${what} took more than ${ms} ms`));
    }, ms);
    timer.unref?.();
    p.then(
      (v) => {
        clearTimeout(timer);
        if (timedOut) onLate?.(v);
        else resolve(v);
      },
      (e: unknown) => {
        clearTimeout(timer);
        if (!timedOut) reject(e);
      },
    );
  });
}
