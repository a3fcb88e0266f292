import { describe, expect, it } from 'vitest';
import { type Context, timeout } from '../index.js';
import { createFakeClock, flushMicrotasks } from '../testing/index.js';
import { type DeadlineNode, DeadlineQueue, DeadlineQueues } from './deadline-queue.js';

class Node implements DeadlineNode<Node> {
  _dlPrev: Node | null = null;
  _dlNext: Node | null = null;
  _dlDeadline = 0;
  _dlQueued = false;
  constructor(readonly id: string) {}
}

/** A queue on a fake clock that records `[id, time]` of every expiry. */
function setup(ms = 100, onExpire?: (n: Node, q: DeadlineQueue<Node>) => void) {
  const clock = createFakeClock();
  const expired: [string, number][] = [];
  const queue: DeadlineQueue<Node> = new DeadlineQueue<Node>(clock, ms, (n) => {
    expired.push([n.id, clock.now()]);
    onExpire?.(n, queue);
  });
  return { clock, queue, expired };
}

/** The ids from head to tail, following the links both ways (and checking they agree). */
function order(first: Node | null): string[] {
  const ids: string[] = [];
  let prev: Node | null = null;
  for (let n = first; n !== null; n = n._dlNext) {
    expect(n._dlPrev).toBe(prev);
    ids.push(n.id);
    prev = n;
  }
  return ids;
}

describe('DeadlineQueue', () => {
  it('expires nodes in the order they were added, each at its own deadline', () => {
    const { clock, queue, expired } = setup(100);
    const a = new Node('a');
    const b = new Node('b');
    const c = new Node('c');
    queue.add(a);
    clock.tickSync(10);
    queue.add(b);
    clock.tickSync(15);
    queue.add(c);
    expect(a._dlDeadline).toBe(100);
    expect(b._dlDeadline).toBe(110);
    expect(c._dlDeadline).toBe(125);
    expect(queue.empty).toBe(false);
    clock.tickSync(200);
    expect(expired).toEqual([
      ['a', 100],
      ['b', 110],
      ['c', 125],
    ]);
    expect(queue.empty).toBe(true);
    expect([a, b, c].every((n) => !n._dlQueued && n._dlNext === null && n._dlPrev === null)).toBe(true);
  });

  it('keeps one timer for the whole queue, re-armed for the new head', () => {
    const { clock, queue } = setup(100);
    for (let i = 0; i < 50; i++) {
      queue.add(new Node(String(i)));
      expect(clock.pending).toBe(1);
      clock.tickSync(1);
    }
    expect(clock.nextDue()).toBe(100);
    clock.tickSync(50); // now 100: node 0 expires; the timer is re-armed for node 1
    expect(clock.pending).toBe(1);
    expect(clock.nextDue()).toBe(101);
  });

  it('expires nodes added at the same instant together', () => {
    const { clock, queue, expired } = setup(10);
    queue.add(new Node('a'));
    queue.add(new Node('b'));
    queue.add(new Node('c'));
    clock.tickSync(10);
    expect(expired).toEqual([
      ['a', 10],
      ['b', 10],
      ['c', 10],
    ]);
    expect(clock.pending).toBe(0);
  });

  // Deliberate repetition: a test set-up of the same shape as another test's (other names and values);
  // each test spells out its own scenario.
  it('removes a middle node: its neighbours are linked and it never expires', () => {
    const { clock, queue, expired } = setup(100);
    const [a, b, c] = [new Node('a'), new Node('b'), new Node('c')];
    queue.add(a);
    queue.add(b);
    queue.add(c);
    queue.remove(b);
    expect(b._dlQueued).toBe(false);
    expect(b._dlPrev).toBeNull();
    expect(b._dlNext).toBeNull();
    expect(order(a)).toEqual(['a', 'c']);
    expect(c._dlPrev).toBe(a);
    clock.tickSync(100);
    expect(expired.map(([id]) => id)).toEqual(['a', 'c']);
  });

  it('removes the head and the tail', () => {
    const { clock, queue, expired } = setup(100);
    const nodes = ['a', 'b', 'c', 'd'].map((id) => new Node(id));
    for (const n of nodes) queue.add(n);
    queue.remove(nodes[0]!);
    queue.remove(nodes[3]!);
    expect(order(nodes[1]!)).toEqual(['b', 'c']);
    // a node can be added again after its removal
    queue.add(nodes[0]!);
    expect(order(nodes[1]!)).toEqual(['b', 'c', 'a']);
    clock.tickSync(100);
    expect(expired.map(([id]) => id)).toEqual(['b', 'c', 'a']);
  });

  it('removing a node that is not queued (or twice) changes nothing', () => {
    const { clock, queue, expired } = setup(100);
    const a = new Node('a');
    const b = new Node('b');
    queue.remove(a);
    expect(clock.pending).toBe(0);
    queue.add(a);
    queue.add(b);
    queue.remove(a);
    queue.remove(a);
    expect(order(b)).toEqual(['b']);
    expect(clock.refed).toBe(1);
    clock.tickSync(100);
    expect(expired.map(([id]) => id)).toEqual(['b']);
  });

  it('unrefs (not clears) its timer when emptied, and the timer is gone after one more period', () => {
    const { clock, queue, expired } = setup(100);
    const a = new Node('a');
    queue.add(a);
    expect(clock.pending).toBe(1);
    expect(clock.refed).toBe(1);
    queue.remove(a);
    expect(queue.empty).toBe(true);
    expect(clock.pending).toBe(1);
    expect(clock.refed).toBe(0);
    clock.tickSync(100);
    expect(clock.pending).toBe(0);
    expect(expired).toEqual([]);
  });

  it('refs the idle timer again when a node is added, and still expires the node at its own deadline', () => {
    const { clock, queue, expired } = setup(100);
    const a = new Node('a');
    queue.add(a);
    queue.remove(a);
    clock.tickSync(40);
    const b = new Node('b');
    queue.add(b); // deadline 140; the old timer (due 100) is reused
    expect(clock.pending).toBe(1);
    expect(clock.refed).toBe(1);
    clock.tickSync(60); // now 100: the old timer fires early, finds nothing due, re-arms
    expect(expired).toEqual([]);
    expect(clock.pending).toBe(1);
    expect(clock.nextDue()).toBe(140);
    clock.tickSync(40);
    expect(expired).toEqual([['b', 140]]);
    expect(clock.pending).toBe(0);
  });

  it('copes with an expiry callback that removes the next node', () => {
    const b = new Node('b');
    const { clock, queue, expired } = setup(100, (n, q) => {
      if (n.id === 'a') q.remove(b);
    });
    queue.add(new Node('a'));
    queue.add(b);
    queue.add(new Node('c'));
    clock.tickSync(100);
    expect(expired.map(([id]) => id)).toEqual(['a', 'c']);
  });

  it('an expiry callback that adds a node does not delay the nodes still waiting', () => {
    const late = new Node('late');
    const { clock, queue, expired } = setup(100, (n, q) => {
      if (n.id === 'a') q.add(late); // deadline 200
    });
    queue.add(new Node('a'));
    clock.tickSync(50);
    queue.add(new Node('b')); // deadline 150
    clock.tickSync(200);
    expect(expired).toEqual([
      ['a', 100],
      ['b', 150],
      ['late', 200],
    ]);
    expect(clock.pending).toBe(0);
  });

  // Deliberate repetition: a test set-up of the same shape as another test's (other names and values);
  // each test spells out its own scenario.
  it('an expiry callback that throws does not stop the nodes still waiting from expiring on time', () => {
    const { clock, queue, expired } = setup(100, (n) => {
      if (n.id === 'a') throw new Error('callback failed');
    });
    queue.add(new Node('a'));
    clock.tickSync(10);
    queue.add(new Node('b'));
    expect(() => clock.tickSync(90)).toThrow('callback failed');
    expect(clock.nextDue()).toBe(110);
    clock.tickSync(10);
    expect(expired).toEqual([
      ['a', 100],
      ['b', 110],
    ]);
  });

  it('an expiry callback that empties the queue leaves no timer behind', () => {
    const b = new Node('b');
    const { clock, queue, expired } = setup(100, (n, q) => {
      if (n.id === 'a') q.remove(b);
    });
    queue.add(new Node('a'));
    clock.tickSync(10);
    queue.add(b);
    clock.tickSync(90);
    expect(expired.map(([id]) => id)).toEqual(['a']);
    expect(clock.pending).toBe(0);
  });
});

describe('DeadlineQueue: very long durations', () => {
  it("never asks for a timer longer than Node's limit, and still expires the node at its deadline", () => {
    const clock = createFakeClock();
    const asked: number[] = [];
    const recording = {
      ...clock,
      setTimeout: (cb: () => void, ms: number) => {
        asked.push(ms);
        return clock.setTimeout(cb, ms);
      },
    };
    const thirtyDays = 30 * 24 * 3_600_000;
    const expired: number[] = [];
    const queue = new DeadlineQueue<Node>(recording, thirtyDays, () => expired.push(clock.now()));
    queue.add(new Node('a'));
    clock.tickSync(thirtyDays - 1);
    expect(expired).toEqual([]);
    clock.tickSync(1);
    expect(expired).toEqual([thirtyDays]);
    expect(asked.length).toBeGreaterThan(1);
    for (const ms of asked) expect(ms).toBeLessThanOrEqual(2_147_483_647);
  });
});

describe('DeadlineQueues', () => {
  it('gives one queue per duration', () => {
    const clock = createFakeClock();
    const queues = new DeadlineQueues<Node>(clock, () => {});
    expect(queues.for(100)).toBe(queues.for(100));
    expect(queues.for(100)).not.toBe(queues.for(200));
    expect(queues.for(200).ms).toBe(200);
  });

  it('a one-off queue clears its timer as soon as it empties (no lingering timer per call)', () => {
    const clock = createFakeClock();
    const queues = new DeadlineQueues<Node>(clock, () => {}, 1);
    queues.for(1);
    const oneOff = queues.for(1_000);
    const n = new Node('n');
    oneOff.add(n);
    expect(clock.pending).toBe(1);
    oneOff.remove(n);
    expect(clock.pending).toBe(0);
  });

  it('past `max` durations, makes a one-off queue per call (bounded memory) that still works', () => {
    const clock = createFakeClock();
    const expired: string[] = [];
    const queues = new DeadlineQueues<Node>(clock, (n) => expired.push(n.id), 2);
    const q1 = queues.for(1);
    const q2 = queues.for(2);
    const q3 = queues.for(3);
    expect(queues.for(1)).toBe(q1);
    expect(queues.for(2)).toBe(q2);
    expect(queues.for(3)).not.toBe(q3);
    q3.add(new Node('x'));
    clock.tickSync(3);
    expect(expired).toEqual(['x']);
  });
});

/** Waits until the signal aborts, then rejects with the reason. */
function untilAborted(ctx: Context): Promise<never> {
  const signal = ctx.signal;
  return new Promise<never>((_, reject) => {
    signal.addEventListener('abort', () => reject(signal.reason), { once: true });
  });
}

describe('the deadline queue behind timeout()', () => {
  it('sequential calls through one timeout keep at most one timer, unref it when idle, and drop it one period later', async () => {
    const clock = createFakeClock();
    const t = timeout({ timeoutMs: 1_000, clock });
    for (let i = 0; i < 200; i++) {
      const value = await t.execute(
        i % 2 === 0
          ? () => i
          : async (ctx) => {
              void ctx.signal;
              expect(clock.pending).toBe(1);
              expect(clock.refed).toBe(1);
              return i;
            },
      );
      expect(value).toBe(i);
      expect(clock.pending).toBeLessThanOrEqual(1);
      expect(clock.refed).toBe(0);
      clock.tickSync(3);
    }
    expect(clock.pending).toBe(1);
    await clock.tick(1_000);
    expect(clock.pending).toBe(0);
    expect(t.stats.timeouts).toBe(0);
  });

  it('concurrent calls through one timeout share one timer', async () => {
    const clock = createFakeClock();
    const t = timeout({ timeoutMs: 100, clock });
    const releases: (() => void)[] = [];
    const calls: Promise<number>[] = [];
    for (let i = 0; i < 100; i++) {
      calls.push(
        t.execute(
          () =>
            new Promise<number>((resolve) => {
              releases.push(() => resolve(i));
            }),
        ),
      );
      expect(clock.pending).toBe(1);
      await clock.tick(0.5);
    }
    expect(clock.refed).toBe(1);
    for (const release of releases) release();
    expect(await Promise.all(calls)).toEqual(calls.map((_, i) => i));
    expect(clock.pending).toBe(1);
    expect(clock.refed).toBe(0);
    await clock.tick(100);
    expect(clock.pending).toBe(0);
  });

  it('one timer per distinct duration, e.g. one per priority', async () => {
    const clock = createFakeClock();
    const t = timeout({ timeoutMs: (ctx) => (ctx.priority === 'critical' ? 50 : 100), clock });
    const calls = [] as Promise<unknown>[];
    for (let i = 0; i < 10; i++) {
      calls.push(t.execute(untilAborted, { priority: i % 2 === 0 ? 'critical' : 'normal' }).catch((e) => e));
    }
    expect(clock.pending).toBe(2);
    await clock.tick(100);
    await Promise.all(calls);
    expect(t.stats.timeouts).toBe(10);
    expect(clock.pending).toBe(0);
  });

  it('a dynamic ms with many distinct values leaves no timer per call behind', async () => {
    const clock = createFakeClock();
    let n = 0;
    const t = timeout({ timeoutMs: () => 1_000 + n++, clock });
    for (let i = 0; i < 500; i++) await t.execute(() => i);
    expect(clock.refed).toBe(0);
    expect(clock.pending).toBeLessThanOrEqual(64); // the shared queues' idle timers, at most
    await clock.tick(2_000);
    expect(clock.pending).toBe(0);
  });

  it('a dynamic ms with many distinct values still times calls out', async () => {
    const clock = createFakeClock();
    let n = 0;
    const t = timeout({ timeoutMs: () => 100 + n++, clock });
    const outcomes = Array.from({ length: 100 }, () => t.execute(untilAborted).catch((e: unknown) => e));
    await clock.tick(300);
    const errors = await Promise.all(outcomes);
    expect(errors.map((e) => (e as { timeoutMs: number }).timeoutMs)).toEqual(
      Array.from({ length: 100 }, (_, i) => 100 + i),
    );
    expect(clock.pending).toBe(0);
  });

  it('expires calls in start order, each at its own deadline', async () => {
    const clock = createFakeClock();
    const t = timeout({ timeoutMs: 100, clock });
    const expiries: [number, number][] = [];
    for (let i = 0; i < 5; i++) {
      void t
        .execute(untilAborted)
        .catch(() => expiries.push([i, clock.now()]))
        .then(() => {});
      await clock.tick(7);
    }
    await clock.tick(200);
    expect(expiries).toEqual([
      [0, 100],
      [1, 107],
      [2, 114],
      [3, 121],
      [4, 128],
    ]);
  });

  it('a call that finishes in the middle of the queue does not disturb the others', async () => {
    const clock = createFakeClock();
    const t = timeout({ timeoutMs: 100, clock });
    const outcomes: string[] = [];
    const a = t.execute(untilAborted).catch(() => outcomes.push(`a@${clock.now()}`));
    await clock.tick(10);
    let finishB!: () => void;
    const b = t
      .execute(() => new Promise<void>((resolve) => (finishB = resolve)))
      .then(() => outcomes.push(`b ok@${clock.now()}`));
    await clock.tick(10);
    const c = t.execute(untilAborted).catch(() => outcomes.push(`c@${clock.now()}`));
    await clock.tick(10);
    finishB();
    await flushMicrotasks();
    await clock.tick(200);
    await Promise.all([a, b, c]);
    expect(outcomes).toEqual(['b ok@30', 'a@100', 'c@120']);
  });

  it('a timeout listener that starts a call on the same policy does not delay the calls already waiting', async () => {
    const clock = createFakeClock();
    const t = timeout({ timeoutMs: 100, clock });
    const abortedAt: Record<string, number> = {};
    const run = (id: string) =>
      t
        .execute((ctx) => {
          ctx.signal.addEventListener('abort', () => {
            abortedAt[id] = clock.now();
          });
          return untilAborted(ctx);
        })
        .catch(() => {});
    let spawned = false;
    t.onEvent(() => {
      if (spawned) return;
      spawned = true;
      void run('spawned'); // started synchronously from inside the expiry
    });
    void run('a');
    await clock.tick(50);
    void run('b');
    await clock.tick(300);
    expect(abortedAt).toEqual({ a: 100, b: 150, spawned: 200 });
  });
});
