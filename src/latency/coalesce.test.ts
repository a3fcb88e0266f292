import { describe, expect, it } from 'vitest';
import { ConfigError } from '../core/errors.js';
import { pipeline } from '../core/policy.js';
import { retry } from '../core/retry.js';
import { deferred, flushMicrotasks } from '../testing/index.js';
import { type CoalesceEvent, coalesce } from './coalesce.js';

describe('coalesce', () => {
  it('concurrent calls with one key share one execution; other keys run on their own', async () => {
    const sf = coalesce({ key: (ctx) => String(ctx.props.id) });
    const events: CoalesceEvent[] = [];
    sf.onEvent((e) => events.push(e));
    const gate = deferred<string>();
    const runs: string[] = [];
    const work = (tag: string) => () => {
      runs.push(tag);
      return gate.promise;
    };
    const a = sf.execute(work('a'), { props: { id: 1 } });
    const b = sf.execute(work('b'), { props: { id: 1 } });
    const c = sf.execute(work('c'), { props: { id: 2 } });
    expect(sf.stats).toMatchObject({ inFlight: 2, executions: 2, joined: 1 });
    gate.resolve('v');
    expect(await Promise.all([a, b, c])).toEqual(['v', 'v', 'v']);
    expect(runs).toEqual(['a', 'c']);
    expect(events).toMatchObject([{ event: 'join', key: '1', waiters: 2 }]);
    expect(sf.stats.inFlight).toBe(0);
    // After it settled, the next call runs again.
    expect(await sf.execute(() => 'again', { props: { id: 1 } })).toBe('again');
  });

  it('every waiter gets the same error', async () => {
    const sf = coalesce({ key: () => 'k' });
    const gate = deferred<string>();
    const boom = new Error('boom');
    const a = sf.execute(() => gate.promise);
    const b = sf.execute(() => 'unused');
    gate.reject(boom);
    await expect(a).rejects.toBe(boom);
    await expect(b).rejects.toBe(boom);
  });

  it('an aborting caller stops waiting without cancelling the execution others wait on', async () => {
    const sf = coalesce({ key: () => 'k' });
    const gate = deferred<string>();
    let signal: AbortSignal | undefined;
    const c1 = new AbortController();
    const a = sf.execute(
      (ctx) => {
        signal = ctx.signal;
        return gate.promise;
      },
      { signal: c1.signal },
    );
    const b = sf.execute(() => 'unused', { signal: new AbortController().signal });
    c1.abort(new Error('first gone'));
    await expect(a).rejects.toThrow('first gone');
    expect(signal!.aborted).toBe(false);
    gate.resolve('shared');
    expect(await b).toBe('shared');
  });

  it('aborts the shared execution when every waiter aborted', async () => {
    const sf = coalesce({ key: () => 'k' });
    const events: CoalesceEvent[] = [];
    sf.onEvent((e) => events.push(e));
    let signal: AbortSignal | undefined;
    const c1 = new AbortController();
    const c2 = new AbortController();
    const a = sf.execute(
      (ctx) => {
        signal = ctx.signal;
        return new Promise((_, reject) =>
          ctx.signal.addEventListener('abort', () => reject(ctx.signal.reason)),
        );
      },
      { signal: c1.signal },
    );
    const b = sf.execute(() => 'unused', { signal: c2.signal });
    c1.abort(new Error('one'));
    expect(signal!.aborted).toBe(false);
    c2.abort(new Error('two'));
    expect(signal!.aborted).toBe(true);
    await expect(a).rejects.toThrow('one');
    await expect(b).rejects.toThrow('two');
    await flushMicrotasks();
    expect(sf.stats).toMatchObject({ inFlight: 0, cancelled: 1 });
    expect(events.map((e) => e.event)).toEqual(['join', 'cancel']);
    // A new call with the key starts a new execution.
    expect(await sf.execute(() => 'fresh')).toBe('fresh');
  });

  it('works in a pipeline, rejects a bad key and validates options', async () => {
    const sf = coalesce({ key: () => 'k' });
    let n = 0;
    const p = pipeline(retry({ maxAttempts: 2 }), sf);
    expect(
      await p.execute(() => {
        n++;
        if (n === 1) throw new Error('flaky');
        return n;
      }),
    ).toBe(2);
    const bad = coalesce({ key: () => 1 as never });
    await expect(bad.execute(() => 1)).rejects.toThrow(/coalesce.key\(ctx\)/);
    expect(() => coalesce({} as never)).toThrow(ConfigError);
    expect(() => coalesce({ key: () => 'k', keys: 1 } as never)).toThrow(/keys/);
    const c = new AbortController();
    c.abort(new Error('early'));
    await expect(sf.execute(() => 1, { signal: c.signal })).rejects.toThrow('early');
  });
});
