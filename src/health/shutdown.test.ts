import { EventEmitter } from 'node:events';
import { createServer } from 'node:http';
import { type AddressInfo, connect, type Socket } from 'node:net';
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
    expect(monitor.report().ready).toBe(true);
    signals.emit('SIGTERM', 'SIGTERM');
    expect(monitor.report()).toMatchObject({ ready: false, shuttingDown: true });
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

  it('a manual begin() followed by one platform SIGTERM does not force; a second signal does', async () => {
    const clock = createFakeClock();
    const exits: number[] = [];
    const signals = new EventEmitter();
    const s = gracefulShutdown({
      clock,
      signalSource: signals,
      drainDelayMs: 1_000,
      exit: (c) => exits.push(c),
      logger: false,
    });
    const done = s.begin();
    signals.emit('SIGTERM', 'SIGTERM'); // Kubernetes' SIGTERM after a preStop-triggered begin()
    expect(exits).toEqual([]);
    expect(s.phase).toBe('draining');
    signals.emit('SIGINT', 'SIGINT'); // an operator insisting
    expect(exits).toEqual([1]);
    expect(await done).toMatchObject({
      outcome: 'forced',
      signal: 'manual',
      problems: ['second signal SIGINT'],
    });
  });

  it('a forced exit with exit: false leaves no timer running and closes the servers', async () => {
    const clock = createFakeClock();
    const signals = new EventEmitter();
    const server = createServer((_req, res) => res.end('ok'));
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const s = gracefulShutdown({
      clock,
      servers: [server],
      signalSource: signals,
      drainDelayMs: 60_000,
      exit: false,
      logger: false,
    });
    signals.emit('SIGTERM', 'SIGTERM');
    expect(clock.pending).toBe(2); // the drain delay and the deadline
    signals.emit('SIGTERM', 'SIGTERM');
    expect((await s.begin()).outcome).toBe('forced');
    expect(clock.pending).toBe(0);
    expect(server.listening).toBe(false);
  });

  it('a connection that never sent a request does not hold the shutdown (clean, not error)', async () => {
    const server = createServer((_req, res) => res.end('ok'));
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const { port } = server.address() as AddressInfo;
    const raw = connect(port, '127.0.0.1');
    await new Promise((r) => raw.once('connect', r));
    const rawClosed = new Promise((r) => raw.once('close', r));
    raw.on('error', () => {});
    const s = gracefulShutdown({
      servers: [server],
      signals: [],
      drainDelayMs: 0,
      inFlightTimeoutMs: 3_000, // before the fix the shutdown waited for this, then said 'error'
      exit: false,
      logger: false,
    });
    expect(await s.begin()).toMatchObject({ outcome: 'clean', code: 0, problems: [] });
    await rawClosed;
  });

  it('an upgraded socket is named in the problem; a register() drain that closes it keeps the shutdown clean', async () => {
    for (const withDrain of [false, true]) {
      const upgraded = new Set<Socket>();
      const server = createServer((_req, res) => res.end('ok'));
      server.on('upgrade', (_req, socket: Socket) => {
        upgraded.add(socket);
        socket.write('HTTP/1.1 101 Switching Protocols\r\nUpgrade: test\r\nConnection: Upgrade\r\n\r\n');
      });
      await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
      const { port } = server.address() as AddressInfo;
      const client = connect(port, '127.0.0.1');
      client.on('error', () => {});
      client.write('GET / HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: test\r\n\r\n');
      await new Promise((r) => client.once('data', r));
      const s = gracefulShutdown({
        servers: [server],
        signals: [],
        drainDelayMs: 0,
        inFlightTimeoutMs: 200,
        exit: false,
        logger: false,
      });
      if (withDrain)
        s.register('upgraded sockets', () => {
          for (const socket of upgraded) socket.destroy();
        });
      const result = await s.begin();
      if (withDrain) expect(result).toMatchObject({ outcome: 'clean', problems: [] });
      else {
        expect(result.outcome).toBe('error');
        expect(result.problems[0]).toMatch(/^open connections on 1 server\(s\) \(upgraded sockets/);
        for (const socket of upgraded) socket.destroy();
      }
      client.destroy();
    }
  });

  it('validates its options', () => {
    for (const signal of ['SIGKILL', 'SIGSTOP'] as const) {
      expect(() => gracefulShutdown({ signals: [signal] })).toThrow(
        /gracefulShutdown\.signals\[0\].*cannot be caught/,
      );
    }
    expect(() => gracefulShutdown({ deadlineMs: 2 ** 31, signals: [] })).toThrow(
      /gracefulShutdown\.deadlineMs/,
    );
    expect(() => gracefulShutdown({ drainDelayMs: Number.POSITIVE_INFINITY, signals: [] })).toThrow(
      /gracefulShutdown\.drainDelayMs/,
    );
    expect(() => gracefulShutdown({ drainDelayMs: -1, signals: [] })).toThrow(
      /gracefulShutdown\.drainDelayMs/,
    );
    expect(() => gracefulShutdown({ hooks: [{ name: '', run: () => {} }], signals: [] })).toThrow(
      /gracefulShutdown\.hooks\[0\]\.name/,
    );
  });
});
