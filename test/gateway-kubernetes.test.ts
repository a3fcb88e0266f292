/**
 * What docs/gateway-kubernetes.md promises, on a real `bulwark gateway` process: a ConfigMap
 * mount (`bulwark.yaml → ..data/bulwark.yaml`, `..data → ..<version>`) updated twice by swapping
 * the `..data` symlink is reloaded both times; on SIGTERM `/readyz` fails at once, the listener
 * keeps serving through `BULWARK_DRAIN_DELAY_MS`, a request in flight completes, and the process
 * exits 0.
 */

import { mkdirSync, mkdtempSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { upstream } from './support/gateway.js';
import { startGatewayProcess } from './support/gateway-process.js';
import { until } from './support/postgres.js';

const cleanups: (() => Promise<unknown> | unknown)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

describe('gateway behind Kubernetes', () => {
  it('reloads on each ConfigMap update (symlink swap); SIGTERM fails readiness, drains, exits 0', {
    timeout: 60_000,
  }, async () => {
    const u = await upstream((req, res) => {
      setTimeout(() => res.end('ok'), req.url === '/slow' ? 800 : 0);
    });
    cleanups.push(() => u.close());
    const mount = mkdtempSync(join(tmpdir(), 'bulwark-configmap-'));
    cleanups.push(() => rmSync(mount, { recursive: true, force: true }));
    const config = (version: string) =>
      `listen: 127.0.0.1:0\nadmin: 127.0.0.1:0\naccessLog: false\nupstreams:\n  app: { endpoints: [{ url: "${u.url}" }] }\nroutes:\n  - match: { path: / }\n    upstream: app\n    responseHeaders: { add: { x-config: ${version} } }\n`;
    let n = 0;
    const publish = (yaml: string) => {
      const dir = `..v${++n}`;
      mkdirSync(join(mount, dir));
      writeFileSync(join(mount, dir, 'bulwark.yaml'), yaml);
      symlinkSync(dir, join(mount, '..data_tmp'));
      renameSync(join(mount, '..data_tmp'), join(mount, '..data'));
    };
    publish(config('v1'));
    symlinkSync('..data/bulwark.yaml', join(mount, 'bulwark.yaml'));

    const previous = process.env.BULWARK_DRAIN_DELAY_MS;
    process.env.BULWARK_DRAIN_DELAY_MS = '500';
    const gw = await startGatewayProcess(join(mount, 'bulwark.yaml')).finally(() => {
      if (previous === undefined) delete process.env.BULWARK_DRAIN_DELAY_MS;
      else process.env.BULWARK_DRAIN_DELAY_MS = previous;
    });
    cleanups.push(() => gw.kill());
    const version = async () => (await fetch(`${gw.url}/`)).headers.get('x-config');
    expect(await version()).toBe('v1');
    expect((await fetch(`${gw.adminUrl}/readyz`)).status).toBe(200);
    for (const v of ['v2', 'v3']) {
      publish(config(v));
      expect(await until(async () => (await version()) === v, 10_000)).toBe(true);
    }

    const inFlight = fetch(`${gw.url}/slow`).then((r) => r.status);
    await new Promise((r) => setTimeout(r, 100));
    gw.kill('SIGTERM');
    expect(await until(async () => (await fetch(`${gw.adminUrl}/readyz`)).status === 503, 2_000)).toBe(true);
    // Still serving during the drain delay (load balancers are still sending).
    expect((await fetch(`${gw.url}/`)).status).toBe(200);
    expect(await inFlight).toBe(200);
    expect(await gw.exited).toBe(0);
  });
});
