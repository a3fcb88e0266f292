/**
 * Hot reload: 100 reloads under load with open SSE streams → 0 failed requests and every stream
 * complete; unchanged upstreams keep their pools and ejection state; a bad file is refused with
 * file:line and the old config keeps serving; SIGHUP reloads a gateway process.
 */

import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { startGatewayFromFile } from '../src/gateway/index.js';
import { upstream } from './support/gateway.js';
import { startGatewayProcess } from './support/gateway-process.js';

const cleanups: (() => Promise<unknown> | unknown)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

function yaml(port: number, variant: number): string {
  return `listen: 127.0.0.1:0
accessLog: false
upstreams:
  api:
    connections: ${variant % 4 < 2 ? 32 : 33}
    endpoints: [{ url: "http://127.0.0.1:${port}" }]
  stable:
    endpoints: [{ url: "http://127.0.0.1:${port}" }]
routes:
  - match: { path: /stream }
    upstream: stable
    idleTimeoutMs: 5000
  - match: { path: / }
    upstream: api
    responseHeaders: { add: { x-variant: "${variant}" } }
`;
}

describe('gateway: hot reload', () => {
  it('100 reloads under load with open streams: 0 failed requests, every stream complete; a bad file is refused with file:line', async () => {
    const u = await upstream((req, res) => {
      if (req.url?.startsWith('/stream')) {
        res.writeHead(200, { 'content-type': 'text/event-stream' });
        let i = 0;
        const t = setInterval(() => {
          res.write(`data: ${i++}\n\n`);
          if (i === 40) {
            clearInterval(t);
            res.end('data: [DONE]\n\n');
          }
        }, 50);
        return;
      }
      res.end('ok');
    });
    cleanups.push(() => u.close());
    const dir = mkdtempSync(join(tmpdir(), 'bulwark-gw-reload-'));
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    const file = join(dir, 'bulwark.yaml');
    writeFileSync(file, yaml(u.port, 0));
    const gw = await startGatewayFromFile(file, { watch: false, sighup: false });
    cleanups.push(() => gw.close(100));
    const stable = gw.components.upstreams.find((x) => x.name === 'stable')!;

    const streams = Array.from({ length: 100 }, () =>
      fetch(`${gw.url}/stream`).then(async (r) => {
        const text = await r.text();
        return r.status === 200 && text.endsWith('data: [DONE]\n\n');
      }),
    );
    let failed = 0;
    let done = 0;
    let stop = false;
    const load = Array.from({ length: 8 }, async () => {
      while (!stop) {
        const r = await fetch(`${gw.url}/x`).catch(() => null);
        if (r === null || r.status !== 200 || (await r.text()) !== 'ok') failed++;
        done++;
      }
    });
    for (let i = 1; i <= 100; i++) {
      writeFileSync(file, yaml(u.port, i));
      const result = await gw.reloadFromFile(file);
      expect(result.ok).toBe(true);
      await new Promise((r) => setTimeout(r, 10));
    }
    expect(gw.reloads).toBe(100);
    expect(gw.components.upstreams.find((x) => x.name === 'stable')).toBe(stable); // kept: same pool, same state
    writeFileSync(file, yaml(u.port, 101).replace('upstream: api', 'upstream: apii'));
    const bad = await gw.reloadFromFile(file);
    expect(bad.ok).toBe(false);
    expect(bad.error).toMatch(
      /bulwark\.yaml:14:15 routes\[1\]\.upstream: unknown upstream "apii" \(known: api, stable\)/,
    );
    stop = true;
    await Promise.all(load);
    const complete = await Promise.all(streams);
    expect(failed).toBe(0);
    expect(done).toBeGreaterThan(100);
    expect(complete.filter(Boolean).length).toBe(100);
    const after = await fetch(`${gw.url}/y`);
    expect(after.headers.get('x-variant')).toBe('100');
  });

  it('SIGHUP reloads a running gateway process', async () => {
    const u = await upstream((_req, res) => res.end('ok'));
    cleanups.push(() => u.close());
    const dir = mkdtempSync(join(tmpdir(), 'bulwark-gw-hup-'));
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    const file = join(dir, 'bulwark.yaml');
    writeFileSync(file, yaml(u.port, 1));
    const gw = await startGatewayProcess(file);
    cleanups.push(() => gw.kill());
    expect((await fetch(`${gw.url}/`)).headers.get('x-variant')).toBe('1');
    writeFileSync(file, yaml(u.port, 2));
    gw.kill('SIGHUP');
    const deadline = Date.now() + 5_000;
    let v = '1';
    while (v !== '2' && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 50));
      v = (await fetch(`${gw.url}/`)).headers.get('x-variant') ?? '';
    }
    expect(v).toBe('2');
  });
});
