// bench/gateway/openloop.ts: the open-loop generator (compiled from openloop.c with gcc) against
// node:http servers at 500 req/s for 1 s. Counts are checked exactly where the server decides
// them; latencies only where a server delay puts a floor under them (no wall-clock bounds).
import { spawnSync } from 'node:child_process';
import { createServer, type RequestListener, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { openLoop } from '../bench/gateway/openloop.js';

const hasGcc = spawnSync('gcc', ['--version']).status === 0;

let server: Server | undefined;

async function listen(handler: RequestListener): Promise<number> {
  server = createServer(handler);
  await new Promise<void>((r) => server!.listen(0, '127.0.0.1', r));
  return (server.address() as AddressInfo).port;
}

afterEach(async () => {
  server?.closeAllConnections();
  await new Promise((r) => server?.close(r));
  server = undefined;
});

describe.skipIf(!hasGcc)('openLoop', () => {
  it('sends rate × seconds requests and counts every answer', async () => {
    let seen = 0;
    const port = await listen((req, res) => {
      seen++;
      res.end(`hello ${req.url}`);
    });
    const r = await openLoop({ host: '127.0.0.1', port, path: '/x', connections: 20, rate: 500, seconds: 1 });
    expect(r.sent).toBe(500);
    expect(r.completed).toBe(500);
    expect(r.non2xx).toBe(0);
    expect(r.errors).toBe(0);
    expect(r.timeouts).toBe(0);
    expect(seen).toBe(500);
    expect(r.p50).toBeGreaterThan(0);
    expect(r.p99).toBeGreaterThanOrEqual(r.p50);
    expect(r.p99Service).toBeGreaterThanOrEqual(r.p50Service);
  });

  it('leaves the warm-up out of the counts', async () => {
    let seen = 0;
    const port = await listen((_req, res) => {
      seen++;
      res.end('hello');
    });
    const r = await openLoop({
      host: '127.0.0.1',
      port,
      connections: 10,
      rate: 500,
      seconds: 1,
      warmupSeconds: 0.5,
    });
    expect(r.completed).toBe(500);
    expect(seen).toBe(750);
  });

  it('frames chunked bodies, counts non-2xx and reopens connections the server closes', async () => {
    let seen = 0;
    const port = await listen((_req, res) => {
      seen++;
      if (seen % 5 === 0) res.statusCode = 503;
      if (seen % 7 === 0) res.setHeader('connection', 'close');
      if (seen % 2 === 0) {
        res.write('chunk one;'); // no content-length: node sends transfer-encoding: chunked
        setImmediate(() => res.end('x'.repeat(seen % 3 === 0 ? 70_000 : 10)));
      } else {
        res.end('hello');
      }
    });
    const r = await openLoop({ host: '127.0.0.1', port, connections: 10, rate: 500, seconds: 1 });
    expect(r.completed).toBe(500);
    expect(r.non2xx).toBe(100);
    expect(r.errors).toBe(0);
    expect(seen).toBe(500);
  });

  it('counts a server delay in the latency, from the scheduled time and from the send', async () => {
    const port = await listen((_req, res) => {
      setTimeout(() => res.end('slow hello'), 20);
    });
    const r = await openLoop({ host: '127.0.0.1', port, connections: 50, rate: 500, seconds: 1 });
    expect(r.completed).toBe(500);
    expect(r.non2xx).toBe(0);
    expect(r.p50).toBeGreaterThanOrEqual(20_000);
    expect(r.p50Service).toBeGreaterThanOrEqual(20_000);
  });
});
