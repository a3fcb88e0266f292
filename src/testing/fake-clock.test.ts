import { describe, expect, it } from 'vitest';
import { createFakeClock, flushMicrotasks } from './index.js';

describe('createFakeClock', () => {
  it('starts at now 0 and 2026-01-01T00:00:00Z by default; both are settable', () => {
    const c = createFakeClock();
    expect(c.now()).toBe(0);
    expect(c.date()).toBe(Date.UTC(2026, 0, 1));
    const d = createFakeClock({ now: 500, date: Date.UTC(2030, 5, 1) });
    expect(d.now()).toBe(500);
    expect(d.date()).toBe(Date.UTC(2030, 5, 1));
  });

  it('date() moves with now()', async () => {
    const c = createFakeClock({ now: 100, date: 1_000_000 });
    c.tickSync(250);
    expect(c.now()).toBe(350);
    expect(c.date()).toBe(1_000_250);
    await c.tick(50);
    expect(c.date()).toBe(1_000_300);
  });

  it('fires a timer only when time reaches it', () => {
    const c = createFakeClock();
    const fired: number[] = [];
    c.setTimeout(() => fired.push(c.now()), 100);
    c.tickSync(99);
    expect(fired).toEqual([]);
    c.tickSync(1);
    expect(fired).toEqual([100]);
    c.tickSync(1_000);
    expect(fired).toEqual([100]);
  });

  it('fires due timers in order of due time, then of creation, with now() at each due time', () => {
    const c = createFakeClock();
    const fired: string[] = [];
    c.setTimeout(() => fired.push(`a@${c.now()}`), 30);
    c.setTimeout(() => fired.push(`b@${c.now()}`), 10);
    c.setTimeout(() => fired.push(`c@${c.now()}`), 30);
    c.setTimeout(() => fired.push(`d@${c.now()}`), 20);
    c.tickSync(100);
    expect(fired).toEqual(['b@10', 'd@20', 'a@30', 'c@30']);
    expect(c.now()).toBe(100);
  });

  it('fires, within the same tick, timers that a firing timer sets', () => {
    const c = createFakeClock();
    const fired: number[] = [];
    c.setTimeout(() => {
      fired.push(c.now());
      c.setTimeout(() => fired.push(c.now()), 10);
    }, 10);
    c.tickSync(25);
    expect(fired).toEqual([10, 20]);
  });

  it('treats a negative, NaN or infinite delay as 0', () => {
    const c = createFakeClock();
    const fired: string[] = [];
    c.setTimeout(() => fired.push('neg'), -5);
    c.setTimeout(() => fired.push('nan'), Number.NaN);
    c.setTimeout(() => fired.push('inf'), Number.POSITIVE_INFINITY);
    expect(c.nextDue()).toBe(0);
    c.tickSync(0);
    expect(fired).toEqual(['neg', 'nan', 'inf']);
  });

  it('clearTimeout cancels a timer (and is harmless twice)', () => {
    const c = createFakeClock();
    const fired: string[] = [];
    const t = c.setTimeout(() => fired.push('x'), 10);
    c.setTimeout(() => fired.push('y'), 10);
    c.clearTimeout(t);
    c.clearTimeout(t);
    expect(c.pending).toBe(1);
    c.tickSync(10);
    expect(fired).toEqual(['y']);
  });

  it('pending counts timers not yet fired or cleared; refed those not unref-ed', () => {
    const c = createFakeClock();
    expect(c.pending).toBe(0);
    expect(c.refed).toBe(0);
    const a = c.setTimeout(() => {}, 10);
    c.setTimeout(() => {}, 20);
    expect(c.pending).toBe(2);
    expect(c.refed).toBe(2);
    expect(a.unref()).toBe(a);
    expect(c.refed).toBe(1);
    a.unref();
    expect(c.refed).toBe(1);
    expect(a.ref()).toBe(a);
    expect(c.refed).toBe(2);
    a.unref();
    c.tickSync(10);
    expect(c.pending).toBe(1);
    expect(c.refed).toBe(1);
    c.tickSync(10);
    expect(c.pending).toBe(0);
    expect(c.refed).toBe(0);
  });

  it('nextDue is the due time of the earliest pending timer, or undefined', () => {
    const c = createFakeClock({ now: 5 });
    expect(c.nextDue()).toBeUndefined();
    c.setTimeout(() => {}, 50);
    const early = c.setTimeout(() => {}, 10);
    expect(c.nextDue()).toBe(15);
    c.clearTimeout(early);
    expect(c.nextDue()).toBe(55);
  });

  it('tick lets promise callbacks run between timers, so awaiting code continues before the next timer', async () => {
    const c = createFakeClock();
    const log: string[] = [];
    const sleep = (ms: number) => new Promise<void>((r) => c.setTimeout(r, ms));
    const task = (async () => {
      await sleep(10);
      log.push(`woke@${c.now()}`);
      await sleep(10); // set after the first timer fired: still within the same tick
      log.push(`woke again@${c.now()}`);
    })();
    c.setTimeout(() => log.push(`timer@${c.now()}`), 15);
    await c.tick(30);
    await task;
    expect(log).toEqual(['woke@10', 'timer@15', 'woke again@20']);
    expect(c.now()).toBe(30);
  });

  it('tickSync runs no promise callbacks in between: code awaiting a timer continues only later', async () => {
    const c = createFakeClock();
    const log: string[] = [];
    void (async () => {
      await new Promise<void>((r) => c.setTimeout(r, 10));
      log.push('continued');
      c.setTimeout(() => log.push(`second@${c.now()}`), 10);
    })();
    c.tickSync(30);
    expect(log).toEqual([]);
    await flushMicrotasks();
    expect(log).toEqual(['continued']);
    expect(c.nextDue()).toBe(40); // set at now=30
  });

  it('tick(0) fires timers due now and flushes promise callbacks', async () => {
    const c = createFakeClock();
    const log: string[] = [];
    c.setTimeout(() => log.push('zero'), 0);
    void Promise.resolve().then(() => log.push('microtask'));
    await c.tick(0);
    expect(log).toEqual(['microtask', 'zero']);
  });

  it('runAll fires timers until none is left, advancing time to each', async () => {
    const c = createFakeClock();
    const log: number[] = [];
    let n = 0;
    const again = () => {
      log.push(c.now());
      if (++n < 5) c.setTimeout(again, 100);
    };
    c.setTimeout(again, 100);
    await c.runAll();
    expect(log).toEqual([100, 200, 300, 400, 500]);
    expect(c.pending).toBe(0);
    expect(c.now()).toBe(500);
  });

  it('runAll stops after `limit` timers (a timer that re-arms forever cannot hang a test)', async () => {
    const c = createFakeClock();
    let fired = 0;
    const forever = () => {
      fired++;
      c.setTimeout(forever, 1);
    };
    c.setTimeout(forever, 1);
    await c.runAll(50);
    expect(fired).toBe(50);
    expect(c.pending).toBe(1);
  });

  it('runAll lets promise callbacks run between timers', async () => {
    const c = createFakeClock();
    const log: number[] = [];
    void (async () => {
      for (let i = 0; i < 3; i++) {
        await new Promise<void>((r) => c.setTimeout(r, 1_000));
        log.push(c.now());
      }
    })();
    await c.runAll();
    expect(log).toEqual([1_000, 2_000, 3_000]);
  });

  it('the clocks of two fake clocks are independent', () => {
    const a = createFakeClock();
    const b = createFakeClock();
    const fired: string[] = [];
    a.setTimeout(() => fired.push('a'), 10);
    b.setTimeout(() => fired.push('b'), 10);
    a.tickSync(10);
    expect(fired).toEqual(['a']);
    expect(b.now()).toBe(0);
  });
});

describe('flushMicrotasks', () => {
  it('lets every pending promise callback run, including chained ones', async () => {
    const log: number[] = [];
    void Promise.resolve()
      .then(() => log.push(1))
      .then(() => log.push(2))
      .then(() => log.push(3));
    await flushMicrotasks();
    expect(log).toEqual([1, 2, 3]);
  });
});

describe('fake clock: time only moves forward', () => {
  it('refuses negative and non-finite steps', async () => {
    const clock = createFakeClock({ now: 1000 });
    expect(() => clock.tickSync(-500)).toThrow(RangeError);
    await expect(clock.tick(Number.NaN)).rejects.toThrow(RangeError);
    await expect(clock.tick(Number.POSITIVE_INFINITY)).rejects.toThrow(RangeError);
    expect(clock.now()).toBe(1000);
  });
});
