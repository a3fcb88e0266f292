import { EventEmitter } from 'node:events';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createFakeClock, deferred } from 'bulwark/testing';
import { describe, expect, it } from 'vitest';
import { customCheck } from './check.js';
import { createHealthMonitor } from './monitor.js';
import { gracefulShutdown, type ShutdownEvent } from './shutdown.js';

function logger() {
  const lines: string[] = [];
  return {
    lines,
    info: (m: string) => void lines.push(`info ${m}`),
    warn: (m: string) => void lines.push(`warn ${m}`),
    error: (m: string) => void lines.push(`error ${m}`),
  };
}

describe('gracefulShutdown', () => {
  it('runs the phases in order: readiness off, drain delay, tracked work, hooks; exits 0', async () => {
    const clock = createFakeClock();
    const monitor = createHealthMonitor({ clock, checks: [customCheck({ name: 'a', run: () => true })] });
    await clock.tick(0);
    const exits: number[] = [];
    const order: string[] = [];
    const work = deferred<void>();
    const signals = new EventEmitter();
    const log = logger();
    const s = gracefulShutdown({
      clock,
      monitor,
      drainDelayMs: 5_000,
      signalSource: signals,
      exit: (c) => exits.push(c),
      logger: log,
      hooks: [
        { name: 'one', run: (sig) => void order.push(`one ${sig}`) },
        { name: 'two', run: async () => void order.push('two') },
      ],
    });
    s.track(work.promise);
    const drained: string[] = [];
    s.register('consumer', async () => void drained.push('consumer'));
    const events: ShutdownEvent[] = [];
    s.on('change', (e) => events.push(e));
    expect(monitor.snapshot().ready).toBe(true);
    signals.emit('SIGTERM', 'SIGTERM');
    expect(monitor.snapshot()).toMatchObject({ ready: false, shuttingDown: true });
    expect(s.phase).toBe('draining');
    await clock.tick(4_999);
    expect(drained).toEqual([]);
    await clock.tick(1);
    expect(drained).toEqual(['consumer']);
    expect(s.phase).toBe('waiting');
    expect(order).toEqual([]);
    work.resolve();
    await clock.tick(0);
    expect(order).toEqual(['one SIGTERM', 'two']);
    expect(exits).toEqual([0]);
    const result = await s.begin();
    expect(result).toEqual({ outcome: 'clean', code: 0, signal: 'SIGTERM', problems: [] });
    expect(events.filter((e) => e.type === 'phase').map((e) => (e as { phase: string }).phase)).toEqual([
      'draining',
      'closing',
      'waiting',
      'hooks',
      'done',
    ]);
    expect(signals.listenerCount('SIGTERM')).toBe(0);
    await monitor.close();
  });

  it('is idempotent; a hook that throws or overruns gives the error code; the next hook still runs', async () => {
    const clock = createFakeClock();
    const exits: number[] = [];
    const ran: string[] = [];
    let abortedWith: unknown;
    const log = logger();
    const s = gracefulShutdown({
      clock,
      signals: [],
      drainDelayMs: 0,
      exit: (c) => exits.push(c),
      exitCode: { error: 7 },
      logger: log,
      hooks: [
        {
          name: 'hang',
          timeoutMs: 1_000,
          run: (_sig, abort) =>
            new Promise(() => {
              abort.addEventListener('abort', () => {
                abortedWith = abort.reason;
              });
            }),
        },
        {
          name: 'boom',
          run: () => {
            throw new Error('pool already closed');
          },
        },
        { name: 'last', run: () => void ran.push('last') },
      ],
    });
    const a = s.begin();
    expect(s.begin()).toBe(a);
    await clock.tick(1_000);
    const r = await a;
    expect(ran).toEqual(['last']);
    expect(r.outcome).toBe('error');
    expect(r.code).toBe(7);
    expect(r.problems).toEqual([
      'hook "hang" overran its 1000 ms timeout',
      'hook "boom" failed: pool already closed',
    ]);
    expect(exits).toEqual([7]);
    expect((abortedWith as Error).name).toBe('ShutdownTimeoutError');
    expect(log.lines).toContain('error shutdown: hook "boom" failed after 0 ms: pool already closed');
  });

  it('in-flight work that outlives inFlightTimeoutMs is an error; the deadline forces the exit', async () => {
    const clock = createFakeClock();
    const exits: number[] = [];
    const s = gracefulShutdown({
      clock,
      signals: [],
      drainDelayMs: 0,
      inFlightTimeoutMs: 2_000,
      deadlineMs: 3_000,
      exit: (c) => exits.push(c),
      exitCode: { error: 2, forced: 9 },
      logger: false,
      hooks: [{ name: 'slow', timeoutMs: 10_000, run: () => new Promise(() => {}) }],
    });
    s.track(new Promise(() => {}));
    const done = s.begin('manual');
    await clock.tick(2_000);
    expect(s.phase).toBe('hooks');
    await clock.tick(1_000);
    expect(await done).toMatchObject({
      outcome: 'forced',
      code: 9,
      problems: ['deadline of 3000 ms passed'],
    });
    await clock.tick(10_000);
    expect(exits).toEqual([9]);
  });

  it('a second signal forces the exit at once', async () => {
    const clock = createFakeClock();
    const exits: number[] = [];
    const signals = new EventEmitter();
    const s = gracefulShutdown({ clock, signalSource: signals, exit: (c) => exits.push(c), logger: false });
    signals.emit('SIGINT', 'SIGINT');
    signals.emit('SIGTERM', 'SIGTERM');
    expect(exits).toEqual([1]);
    expect(await s.begin()).toMatchObject({
      outcome: 'forced',
      signal: 'SIGINT',
      problems: ['second signal SIGTERM'],
    });
    await clock.runAll();
    expect(exits).toEqual([1]);
  });

  it('closes a real server: in-flight requests finish with Connection: close, new connections are refused', async () => {
    const release = deferred<void>();
    const server = createServer((_req, res) => {
      release.promise.then(() => res.end('late'));
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const { port } = server.address() as AddressInfo;
    const s = gracefulShutdown({
      servers: [server],
      signals: [],
      drainDelayMs: 0,
      exit: false,
      logger: false,
    });
    const inFlight = fetch(`http://127.0.0.1:${port}/`);
    while (s.inFlight === 0) await new Promise((r) => setTimeout(r, 5));
    const done = s.begin();
    while (server.listening) await new Promise((r) => setTimeout(r, 5));
    await expect(fetch(`http://127.0.0.1:${port}/`)).rejects.toThrow();
    release.resolve();
    const res = await inFlight;
    expect(res.headers.get('connection')).toBe('close');
    expect(await res.text()).toBe('late');
    expect(await done).toMatchObject({ outcome: 'clean', code: 0 });
  });

  it('validates its options', () => {
    expect(() => gracefulShutdown({ drainDelayMs: -1, signals: [] })).toThrow(
      /gracefulShutdown\.drainDelayMs/,
    );
    expect(() => gracefulShutdown({ hooks: [{ name: '', run: () => {} }], signals: [] })).toThrow(
      /gracefulShutdown\.hooks\[0\]\.name/,
    );
  });
});
