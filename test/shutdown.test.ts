/**
 * Graceful shutdown of a real child process (test/fixtures/health/slow-server.ts run with tsx):
 * SIGTERM with slow requests in flight. Every in-flight request completes with 200, readiness
 * answers 503 during the drain delay, new connections are refused once the listeners close, hooks
 * run in order with their timeouts, and the process exits by its deadline with the configured code.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { request } from 'node:http';
import { connect } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const FIXTURE = join(ROOT, 'test', 'fixtures', 'health', 'slow-server.ts');

interface Child {
  readonly proc: ChildProcess;
  readonly lines: string[];
  /** Resolves with the first line matching `re` (already printed or to come). */
  waitFor(re: RegExp, ms?: number): Promise<string>;
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

const children: ChildProcess[] = [];
afterEach(() => {
  for (const c of children.splice(0)) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
});

function startChild(config: object): Child {
  // `node --import tsx`: the fixture runs in this very process, so signals reach it directly
  // (the tsx binary would run it in a child and relay them).
  const proc = spawn(process.execPath, ['--import', 'tsx', FIXTURE, JSON.stringify(config)], {
    cwd: ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.push(proc);
  const lines: string[] = [];
  const waiters: { re: RegExp; resolve: (l: string) => void }[] = [];
  let buf = '';
  let stderr = '';
  proc.stderr!.on('data', (d) => {
    stderr += String(d);
  });
  proc.stdout!.on('data', (d) => {
    buf += String(d);
    let i = buf.indexOf('\n');
    while (i >= 0) {
      const line = buf.slice(0, i);
      buf = buf.slice(i + 1);
      lines.push(line);
      for (const w of [...waiters]) {
        if (w.re.test(line)) {
          waiters.splice(waiters.indexOf(w), 1);
          w.resolve(line);
        }
      }
      i = buf.indexOf('\n');
    }
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    proc.on('exit', (code, signal) => resolve({ code, signal })),
  );
  return {
    proc,
    lines,
    exited,
    waitFor(re, ms = 20_000) {
      const seen = lines.find((l) => re.test(l));
      if (seen !== undefined) return Promise.resolve(seen);
      return new Promise((resolve, reject) => {
        const t = setTimeout(
          () => reject(new Error(`no line matching ${re} in ${ms} ms; got:\n${lines.join('\n')}\n${stderr}`)),
          ms,
        );
        waiters.push({
          re,
          resolve: (l) => {
            clearTimeout(t);
            resolve(l);
          },
        });
      });
    },
  };
}

/** One request on a fresh connection (no agent). */
function get(
  port: number,
  path: string,
): Promise<{ status: number; body: string; connection: string | undefined }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, agent: false }, (res) => {
      let body = '';
      res.on('data', (d) => {
        body += String(d);
      });
      res.on('end', () => resolve({ status: res.statusCode!, body, connection: res.headers.connection }));
    });
    req.on('error', reject);
    req.end();
  });
}

const base = {
  slowMs: 1_500,
  drainDelayMs: 700,
  inFlightTimeoutMs: 5_000,
  deadlineMs: 15_000,
  exitCode: { clean: 0, error: 3, forced: 4 },
};

describe('gracefulShutdown in a real process', () => {
  it('drains in-flight requests, fails readiness during the drain, refuses new connections, runs hooks in order with timeouts', async () => {
    const child = startChild({
      ...base,
      hooks: [
        { name: 'first', ms: 100, timeoutMs: 2_000 },
        { name: 'hang', ms: null, timeoutMs: 300 },
        { name: 'last', ms: 50, timeoutMs: 2_000 },
      ],
    });
    const port = Number((await child.waitFor(/^listening \d+$/)).split(' ')[1]);
    expect((await get(port, '/readyz')).status).toBe(200);

    const inFlight = [get(port, '/slow'), get(port, '/slow'), get(port, '/slow')];
    await child.waitFor(/^request start 3$/);
    child.proc.kill('SIGTERM');
    await child.waitFor(/^phase draining$/);

    // During the drain delay: still serving, but readiness fails.
    const ready = await get(port, '/readyz');
    expect(ready.status).toBe(503);
    expect(JSON.parse(ready.body)).toMatchObject({ status: 'fail', output: 'shutting down' });
    expect((await get(port, '/livez')).status).toBe(200);

    await child.waitFor(/^phase closing$/);
    await expect(get(port, '/slow')).rejects.toMatchObject({ code: 'ECONNREFUSED' });

    const results = await Promise.all(inFlight);
    for (const r of results) {
      expect(r).toMatchObject({ status: 200, body: 'done' });
      expect(r.connection).toBe('close'); // keep-alive ends with the response
    }

    const { code } = await child.exited;
    expect(code).toBe(3); // a hook overran: the error code
    const order = child.lines.filter((l) => /^hook |^phase |request end|overran/.test(l));
    expect(order).toEqual([
      'phase draining',
      'phase closing',
      'phase waiting',
      'request end 1',
      'request end 2',
      'request end 3',
      'phase hooks',
      'hook first start',
      'hook first end',
      'hook hang start',
      'log warn shutdown: hook "hang" overran its 300 ms timeout; abandoned it, going on',
      'hook last start',
      'hook last end',
      'phase done',
    ]);
    expect(child.lines).toContain('log warn shutdown: error; exiting with code 3');
  });

  it('exits cleanly with code 0 when everything ends in time', async () => {
    const child = startChild({
      ...base,
      slowMs: 200,
      drainDelayMs: 100,
      hooks: [{ name: 'close pool', ms: 20, timeoutMs: 1_000 }],
    });
    const port = Number((await child.waitFor(/^listening \d+$/)).split(' ')[1]);
    const inFlight = get(port, '/slow');
    await child.waitFor(/^request start 1$/);
    child.proc.kill('SIGTERM');
    expect((await inFlight).status).toBe(200);
    expect((await child.exited).code).toBe(0);
    expect(child.lines).toContain('hook close pool end');
  });

  it('a raw TCP connection that never sends a request does not hold the exit: code 0', async () => {
    // inFlightTimeoutMs 5 000 (base): before the fix the exit waited for it and used the error code.
    const child = startChild({ ...base, drainDelayMs: 0, hooks: [] });
    const port = Number((await child.waitFor(/^listening \d+$/)).split(' ')[1]);
    const raw = connect(port, '127.0.0.1');
    raw.on('error', () => {});
    await new Promise((r) => raw.once('connect', r));
    const rawClosed = new Promise((r) => raw.once('close', r));
    child.proc.kill('SIGTERM');
    expect((await child.exited).code).toBe(0);
    await rawClosed;
    expect(child.lines).toContain('log info shutdown: clean; exiting with code 0');
    expect(child.lines.some((l) => l.includes('still running'))).toBe(false);
  });

  it('exits with the forced code when the deadline passes', async () => {
    const child = startChild({
      ...base,
      drainDelayMs: 100,
      deadlineMs: 1_000,
      hooks: [{ name: 'stuck', ms: null, timeoutMs: 60_000 }],
    });
    await child.waitFor(/^listening \d+$/);
    child.proc.kill('SIGTERM');
    const { code } = await child.exited;
    expect(code).toBe(4);
    expect(child.lines).toContain('hook stuck start');
    expect(child.lines).toContain('log error shutdown: forced exit: deadline of 1000 ms passed');
  });

  it('a second signal forces the exit at once', async () => {
    const child = startChild({ ...base, drainDelayMs: 30_000, deadlineMs: 60_000, hooks: [] });
    await child.waitFor(/^listening \d+$/);
    child.proc.kill('SIGTERM');
    await child.waitFor(/^phase draining$/);
    child.proc.kill('SIGINT');
    const { code } = await child.exited;
    expect(code).toBe(4);
    expect(child.lines).toContain('log error shutdown: forced exit: second signal SIGINT');
  });
});
