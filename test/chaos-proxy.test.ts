/**
 * The fault proxy on real sockets: each toxic measured as a client sees it (added latency within
 * 5 ms or 5 %, bandwidth within 10 %, ECONNRESET, silence, slice sizes, a close after N bytes,
 * HTTP statuses), the toxiproxy API driven by the unchanged `toxiproxy-node-client`, and a reset
 * that never hangs.
 */
import { createServer as createHttpServer, type Server as HttpServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { type ChaosProxyServer, chaosProxyServer, type FaultProxy, faultProxy } from 'bulwark/chaos';
import { Toxiproxy } from 'toxiproxy-node-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

let echo: Server;
let echoPort: number;
let blob: Server;
let blobPort: number;
let web: HttpServer;
let webPort: number;
const BLOB = Buffer.alloc(256 * 1024, 7);

const port = (s: { address(): unknown }) => (s.address() as AddressInfo).port;
const listen = (s: Server | HttpServer) => new Promise<void>((r) => s.listen(0, '127.0.0.1', () => r()));

beforeAll(async () => {
  echo = createServer((s) => s.on('error', () => {}).pipe(s));
  blob = createServer((s) => s.on('error', () => {}).end(BLOB));
  web = createHttpServer((req, res) => {
    req.resume();
    res.writeHead(200, { 'content-type': 'text/plain' });
    res.end(`ok ${req.method} ${req.url}`.padEnd(4096, '.'));
  });
  await Promise.all([listen(echo), listen(blob), listen(web)]);
  echoPort = port(echo);
  blobPort = port(blob);
  webPort = port(web);
});

afterAll(() => {
  echo.close();
  blob.close();
  web.close();
});

async function open(p: FaultProxy): Promise<Socket> {
  const [host, portText] = p.listen.split(':') as [string, string];
  const sock = connect({ host, port: Number(portText) });
  sock.setNoDelay(true);
  await new Promise<void>((resolve, reject) => {
    sock.once('connect', resolve);
    sock.once('error', reject);
  });
  return sock;
}

/** Lowest round trip of `n` 1-byte pings over `sock`, in ms (the least disturbed by other work). */
async function rtt(sock: Socket, n = 7): Promise<number> {
  const times: number[] = [];
  for (let i = 0; i < n; i++) {
    const t0 = performance.now();
    sock.write('x');
    await new Promise((r) => sock.once('data', r));
    times.push(performance.now() - t0);
  }
  return Math.min(...times);
}

/** Everything the server sends until it closes, with the chunk sizes and the time taken. */
async function drain(sock: Socket): Promise<{ bytes: number; chunks: number[]; ms: number; error?: string }> {
  const t0 = performance.now();
  const chunks: number[] = [];
  return new Promise((resolve) => {
    sock.on('data', (d: Buffer) => chunks.push(d.length));
    sock.on('error', (e: NodeJS.ErrnoException) =>
      resolve({
        bytes: chunks.reduce((a, b) => a + b, 0),
        chunks,
        ms: performance.now() - t0,
        error: e.code ?? e.message,
      }),
    );
    sock.on('close', () =>
      resolve({ bytes: chunks.reduce((a, b) => a + b, 0), chunks, ms: performance.now() - t0 }),
    );
  });
}

const tcp = (upstream: number, name: string) =>
  faultProxy({ name, listen: '127.0.0.1:0', upstream: `127.0.0.1:${upstream}` });

describe('TCP toxics on real sockets', () => {
  it('latency: adds the configured delay (within 5 ms or 5 %), jitter stays within its bound', async () => {
    const p = await tcp(echoPort, 'latency');
    const sock = await open(p);
    const base = await rtt(sock);
    p.addToxic({ type: 'latency', attributes: { latency: 80 } });
    const added = (await rtt(sock)) - base;
    expect(added).toBeGreaterThanOrEqual(80 - 1);
    expect(added).toBeLessThanOrEqual(80 + Math.max(5, 0.05 * 80));
    p.removeToxic('latency_downstream');
    p.addToxic({ type: 'latency', stream: 'upstream', attributes: { latency: 40, jitter: 10 } });
    const withJitter = (await rtt(sock, 9)) - base;
    expect(withJitter).toBeGreaterThanOrEqual(30 - 1);
    expect(withJitter).toBeLessThanOrEqual(50 + 5);
    sock.destroy();
    await p.close();
  });

  it('bandwidth: throughput within 10 % of the rate', async () => {
    const p = await tcp(blobPort, 'bandwidth');
    p.addToxic({ type: 'bandwidth', attributes: { rate: 512 } }); // 512 KB/s
    const got = await drain(await open(p));
    expect(got.bytes).toBe(BLOB.length);
    const kbPerSecond = BLOB.length / 1024 / (got.ms / 1000);
    expect(kbPerSecond).toBeGreaterThan(512 * 0.9);
    expect(kbPerSecond).toBeLessThan(512 * 1.1);
    await p.close();
  });

  it('reset_peer: the client sees ECONNRESET', async () => {
    const p = await tcp(echoPort, 'reset');
    p.addToxic({ type: 'reset_peer', stream: 'upstream', attributes: { timeout: 0 } });
    const sock = await open(p);
    const done = drain(sock);
    sock.write('hello');
    expect((await done).error).toBe('ECONNRESET');
    await p.close();
  });

  it('timeout: no data passes, and the connection closes after the timeout (0: never)', async () => {
    const p = await tcp(echoPort, 'timeout');
    p.addToxic({ type: 'timeout', attributes: { timeout: 150 } });
    const sock = await open(p);
    const done = drain(sock);
    sock.write('anyone there?');
    const got = await done;
    expect(got.bytes).toBe(0);
    expect(got.ms).toBeGreaterThanOrEqual(149);
    p.updateToxic('timeout_downstream', { attributes: { timeout: 0 } });
    const hole = await open(p);
    let bytes = 0;
    hole.on('data', (d: Buffer) => {
      bytes += d.length;
    });
    hole.write('ping');
    await new Promise((r) => setTimeout(r, 300));
    expect(bytes).toBe(0);
    expect(hole.destroyed).toBe(false);
    p.removeToxic('timeout_downstream');
    hole.write('ping');
    await new Promise((r) => hole.once('data', r)); // data flows again once the toxic is gone
    hole.destroy();
    await p.close();
  });

  it('slicer: the data arrives in slices of average_size ± size_variation', async () => {
    const p = await tcp(blobPort, 'slicer');
    p.addToxic({ type: 'slicer', attributes: { average_size: 1000, size_variation: 200, delay: 2000 } });
    const small = Buffer.alloc(20_000, 1);
    const server = createServer((s) => s.on('error', () => {}).end(small));
    await listen(server);
    await p.update({ upstream: `127.0.0.1:${port(server)}` });
    const got = await drain(await open(p));
    expect(got.bytes).toBe(small.length);
    const inner = got.chunks.slice(0, -1); // the last slice is what was left
    expect(inner.length).toBeGreaterThan(10);
    for (const size of inner) {
      expect(size).toBeGreaterThanOrEqual(800);
      expect(size).toBeLessThanOrEqual(1200);
    }
    server.close();
    await p.close();
  });

  it('limit_data: closes after exactly N bytes', async () => {
    const p = await tcp(blobPort, 'limit');
    p.addToxic({ type: 'limit_data', attributes: { bytes: 10_000 } });
    const got = await drain(await open(p));
    expect(got.bytes).toBe(10_000);
    await p.close();
  });

  it('slow_close: the close is delayed; down: new connections are refused', async () => {
    const p = await tcp(blobPort, 'close');
    expect((await drain(await open(p))).bytes).toBe(BLOB.length);
    p.addToxic({ type: 'slow_close', attributes: { delay: 200 } });
    const slow = await drain(await open(p));
    // A lower bound only (the close cannot come before the delay): an upper bound or a difference
    // with the run without the toxic would measure the machine's load, not the toxic.
    expect(slow.ms).toBeGreaterThanOrEqual(195);
    expect(slow.bytes).toBe(BLOB.length);
    await p.setEnabled(false);
    await expect(open(p)).rejects.toMatchObject({ code: 'ECONNREFUSED' });
    await p.setEnabled(true);
    expect((await drain(await open(p))).bytes).toBe(BLOB.length);
    await p.close();
  });

  it('toxicity 0 never applies; toxicity is drawn once per connection', async () => {
    let n = 0;
    const draws = [0.9, 0.1];
    const p = await faultProxy({
      name: 'tox',
      listen: '127.0.0.1:0',
      upstream: `127.0.0.1:${blobPort}`,
      random: () => draws[n++ % 2]!,
    });
    p.addToxic({ type: 'limit_data', toxicity: 0, attributes: { bytes: 1 } });
    expect((await drain(await open(p))).bytes).toBe(BLOB.length);
    p.clearToxics();
    p.addToxic({ type: 'limit_data', toxicity: 0.5, attributes: { bytes: 1 } });
    expect((await drain(await open(p))).bytes).toBe(BLOB.length); // drew 0.9: not applied
    expect((await drain(await open(p))).bytes).toBe(1); // drew 0.1: applied
    await p.close();
  });
});

describe('HTTP toxics', () => {
  const http = (name: string) =>
    faultProxy({ name, type: 'http', listen: '127.0.0.1:0', upstream: `127.0.0.1:${webPort}` });

  it('injects a status with Retry-After for the first N matching requests, by path and method', async () => {
    const p = await http('web');
    p.addToxic({
      type: 'http_status',
      attributes: { status: 503, retry_after: 2, first: 2, path: '/pay', method: 'POST' },
    });
    const url = `http://${p.listen}`;
    const statuses: number[] = [];
    for (let i = 0; i < 4; i++) {
      const res = await fetch(`${url}/pay`, { method: 'POST', body: '{}' });
      statuses.push(res.status);
      if (res.status === 503) expect(res.headers.get('retry-after')).toBe('2');
      await res.arrayBuffer();
    }
    expect(statuses).toEqual([503, 503, 200, 200]);
    expect((await fetch(`${url}/other`, { method: 'POST', body: '{}' })).status).toBe(200);
    await p.close();
  });

  it('delays headers, aborts a body after N bytes, and applies within a time window only', async () => {
    const p = await http('web2');
    const url = `http://${p.listen}`;
    p.addToxic({ type: 'http_delay', attributes: { headers_ms: 120 } });
    const t0 = performance.now();
    const res = await fetch(`${url}/slow`);
    expect(performance.now() - t0).toBeGreaterThanOrEqual(119);
    await res.text();
    p.clearToxics();
    p.addToxic({ type: 'http_abort', attributes: { after_bytes: 100 } });
    const cut = await fetch(`${url}/cut`);
    expect(cut.status).toBe(200);
    await expect(cut.text()).rejects.toThrow();
    p.clearToxics();
    p.addToxic({ type: 'http_status', attributes: { status: 500, fromMs: 0, untilMs: 150 } });
    expect((await fetch(`${url}/w`)).status).toBe(500);
    await new Promise((r) => setTimeout(r, 200));
    expect((await fetch(`${url}/w`)).status).toBe(200);
    await p.close();
  });

  it('refuses a TCP toxic on an HTTP proxy, naming the field', async () => {
    const p = await http('web3');
    expect(() => p.addToxic({ type: 'bandwidth', attributes: { rate: 1 } })).toThrow(/toxic.type/);
    await p.close();
  });
});

describe('toxiproxy-compatible API', () => {
  let api: ChaosProxyServer;
  beforeAll(async () => {
    api = await chaosProxyServer({ host: '127.0.0.1', port: 0 });
  });
  afterAll(() => api.close());

  it('the unchanged toxiproxy-node-client creates proxies and toxics, and their effect is measured', async () => {
    const client = new Toxiproxy(api.url);
    expect(await client.getVersion()).toMatch(/^\d+\.\d+/);
    const proxy = await client.createProxy({
      name: 'echo',
      listen: '127.0.0.1:0',
      upstream: `127.0.0.1:${echoPort}`,
    });
    const live = api.proxies.get('echo')!;
    const sock = await open(live);
    const base = await rtt(sock);
    const toxic = await proxy.addToxic({
      name: 'slow',
      type: 'latency',
      stream: 'downstream',
      toxicity: 1,
      attributes: { latency: 60, jitter: 0 },
    });
    expect(toxic.name).toBe('slow');
    const added = (await rtt(sock, 9)) - base;
    expect(added).toBeGreaterThanOrEqual(59);
    expect(added).toBeLessThanOrEqual(60 + 5);
    expect((await proxy.getToxic('slow')).attributes).toMatchObject({ latency: 60 });
    await toxic.remove();
    expect((await rtt(sock)) - base).toBeLessThan(20);
    const all = await client.getAll();
    expect(Object.keys(all)).toContain('echo');
    const populated = await client.populate([
      { name: 'blob', listen: '127.0.0.1:0', upstream: `127.0.0.1:${blobPort}` },
    ]);
    expect(populated.blob?.upstream).toBe(`127.0.0.1:${blobPort}`);
    const updated = await (await client.get('echo')).update({
      enabled: false,
      listen: live.listen,
      upstream: live.upstream,
    });
    expect(updated.enabled).toBe(false);
    await client.reset();
    expect(api.proxies.get('echo')!.isEnabled).toBe(true);
    sock.destroy();
  });

  it('creates a proxy with its toxics in one call; errors keep toxiproxy shape; reset never hangs', async () => {
    const res = await fetch(`${api.url}/proxies`, {
      method: 'POST',
      body: JSON.stringify({
        name: 'one',
        listen: '127.0.0.1:0',
        upstream: `127.0.0.1:${blobPort}`,
        toxics: [{ type: 'limit_data', attributes: { bytes: 5 } }],
      }),
    });
    expect(res.status).toBe(201);
    expect(((await res.json()) as { toxics: unknown[] }).toxics).toHaveLength(1);
    expect((await drain(await open(api.proxies.get('one')!))).bytes).toBe(5);
    const dup = await fetch(`${api.url}/proxies`, {
      method: 'POST',
      body: JSON.stringify({ name: 'one', listen: '127.0.0.1:0', upstream: 'x:1' }),
    });
    expect(dup.status).toBe(409);
    expect(await dup.json()).toMatchObject({ status: 409 });
    const bad = await fetch(`${api.url}/proxies/one/toxics`, {
      method: 'POST',
      body: JSON.stringify({ type: 'latency', attributes: { latency: -1 } }),
    });
    expect(bad.status).toBe(400);
    expect(((await bad.json()) as { error: string }).error).toMatch(/body\.attributes\.latency/);
    expect((await fetch(`${api.url}/proxies/nope`)).status).toBe(404);
    const t0 = performance.now();
    expect((await fetch(`${api.url}/reset`, { method: 'POST' })).status).toBe(204);
    expect(performance.now() - t0).toBeLessThan(3000);
    expect(api.proxies.get('one')!.toxics).toHaveLength(0);
  });
});
