/**
 * Chaos experiments end to end (issue 14, acceptance 3): the three shipped experiments run in
 * their CI size and pass (real Redis, real PostgreSQL, a real `bulwark gateway` and its
 * upstreams, each behind a fault proxy); a deliberately failing hypothesis aborts and every fault
 * is gone within 1 s (measured from the abort decision to the proxy API reporting no toxic and
 * every proxy up, with traffic flowing again); the HTML report renders in headless Chromium.
 */
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { connect, createServer as createTcpServer, type Server as TcpServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  type ChaosProxyServer,
  chaosProxyServer,
  type ExperimentResult,
  htmlReport,
  loadExperiment,
  runExperiment,
} from 'bulwark/chaos';
import { chromium } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runMain } from '../src/chaos/experiment/cli.js';

const root = fileURLToPath(new URL('..', import.meta.url));
const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const out = mkdtempSync(join(tmpdir(), 'bulwark-chaosexp-test-'));
afterAll(() => rmSync(out, { recursive: true, force: true }));

async function runShipped(name: string): Promise<{ code: number; result: ExperimentResult; text: string }> {
  const lines: string[] = [];
  const io = { out: (s: string) => lines.push(s), err: (s: string) => lines.push(s) };
  const code = await runMain(
    ['chaos', 'run', join(root, 'examples/chaos', `${name}.yaml`), '--ci', '--out', out, '--quiet'],
    io,
  );
  const result = JSON.parse(readFileSync(join(out, `${name}.json`), 'utf8')) as ExperimentResult;
  return { code, result, text: lines.join('\n') };
}

function expectPassed(r: { code: number; result: ExperimentResult; text: string }): void {
  expect(r.result.status, r.text).toBe('passed');
  expect(r.code).toBe(0);
  expect(r.result.score).toBe(100);
  expect(r.result.control?.hypothesisMet).toBe(true);
  expect(r.result.experiment?.faults.length).toBeGreaterThan(0);
  expect(r.result.experiment?.faults.every((f) => f.endMs !== null)).toBe(true);
  expect(r.result.experiment?.requests).toBeGreaterThan(100);
}

describe('shipped experiments (CI size)', () => {
  it('Redis slowed: the limiter insurance holds the steady state', async () => {
    const r = await runShipped('redis-slowed');
    expectPassed(r);
    const insurance = r.result.experiment?.probes.find((p) => p.name.startsWith('insurance'));
    const before = r.result.control?.probes.find((p) => p.name.startsWith('insurance'));
    // the insurance decided more calls while Redis was slow than in the control run
    expect(Number(insurance?.value)).toBeGreaterThan(Number(before?.value));
    expect(existsSync(join(out, 'redis-slowed.html'))).toBe(true);
  }, 90_000);

  it('PostgreSQL cut: the durable outbox stores and forwards with 0 lost', async () => {
    const r = await runShipped('postgres-cut');
    expectPassed(r);
    const lost = r.result.experiment?.probes.find((p) => p.name === 'orders lost');
    expect(lost?.value).toBe(0);
    const kept = r.result.experiment?.probes.find((p) => p.name.startsWith('kept in the outbox'));
    expect(Number(kept?.value)).toBeGreaterThan(0); // the cut really happened
  }, 90_000);

  it('one gateway endpoint failing 50 %: retries keep success >= 99 %', async () => {
    const r = await runShipped('gateway-endpoint');
    expectPassed(r);
    const ratio = r.result.experiment?.probes.find((p) => p.name === 'success ratio');
    expect(Number(ratio?.value)).toBeGreaterThanOrEqual(0.99);
    const retries = r.result.experiment?.probes.find((p) => p.name.startsWith('retries during'));
    expect(Number(retries?.value)).toBeGreaterThan(0); // the 503s really happened and were retried
  }, 90_000);
});

describe('abort', () => {
  let web: Server;
  let echo: TcpServer;
  let api: ChaosProxyServer;
  beforeAll(async () => {
    web = createServer((req, res) => {
      req.resume();
      res.end('ok');
    });
    echo = createTcpServer((s) => s.on('error', () => {}).pipe(s));
    await new Promise<void>((r) => web.listen(0, '127.0.0.1', r));
    await new Promise<void>((r) => echo.listen(0, '127.0.0.1', r));
    api = await chaosProxyServer({ port: 0 });
    const up = (s: { address(): unknown }) => `127.0.0.1:${(s.address() as AddressInfo).port}`;
    for (const [name, upstream] of [
      ['web', up(web)],
      ['db', up(echo)],
      ['cache', up(echo)],
    ]) {
      const res = await fetch(`${api.url}/proxies`, {
        method: 'POST',
        body: JSON.stringify({ name, listen: '127.0.0.1:0', upstream }),
      });
      expect(res.status).toBe(201);
    }
  });
  afterAll(async () => {
    await api?.close();
    web?.close();
    echo?.close();
  });

  const listenOf = (name: string) => api.proxies.get(name)!.listen;
  const echoes = (addr: string): Promise<boolean> =>
    new Promise((resolve) => {
      const [host, port] = addr.split(':');
      const s = connect({ host: host!, port: Number(port) }, () => s.write('x'));
      const t = setTimeout(() => {
        s.destroy();
        resolve(false);
      }, 200);
      s.on('data', () => {
        clearTimeout(t);
        s.destroy();
        resolve(true);
      });
      s.on('error', () => {
        clearTimeout(t);
        resolve(false);
      });
    });

  /** True once the API shows every proxy up without toxics and traffic flows through each. */
  async function allClear(): Promise<boolean> {
    const proxies = (await (await fetch(`${api.url}/proxies`)).json()) as Record<
      string,
      { enabled: boolean; toxics: unknown[] }
    >;
    if (!Object.values(proxies).every((p) => p.enabled && p.toxics.length === 0)) return false;
    const res = await fetch(`http://${listenOf('web')}/`, { signal: AbortSignal.timeout(200) }).catch(
      () => null,
    );
    if (res?.status !== 200) return false;
    return (await echoes(listenOf('db'))) && (await echoes(listenOf('cache')));
  }

  it('a failing hypothesis aborts, and every fault is gone within 1 s of the decision', async () => {
    let decidedAt = 0;
    let clearedSeenAt = 0;
    let watching: Promise<void> | undefined;
    const result = await runExperiment(
      {
        title: 'deliberately failing',
        durationMs: 20_000,
        load: { url: `http://${listenOf('web')}/`, rate: 100, timeoutMs: 1_000 },
        'steady-state-hypothesis': {
          probes: [{ name: 'ok', type: 'successRatio', tolerance: { min: 0.99 } }],
        },
        method: [
          { type: 'pauseProxy', proxy: 'db', api: api.url },
          { type: 'proxyDown', proxy: 'cache', api: api.url },
          {
            type: 'toxic',
            proxy: 'web',
            api: api.url,
            toxic: { type: 'reset_peer', attributes: { timeout: 0 } },
            pauses: { beforeMs: 500 },
          },
        ],
        abort: {
          probes: [{ name: 'ok over 0.5 s', type: 'successRatio', tolerance: { min: 0.9 } }],
          everyMs: 100,
          windowMs: 500,
        },
      },
      {
        onEvent: (e) => {
          if (e.event !== 'abort') return;
          decidedAt = performance.now();
          watching = (async () => {
            while (!(await allClear())) await new Promise((r) => setTimeout(r, 10));
            clearedSeenAt = performance.now();
          })();
        },
      },
    );
    await watching;
    expect(result.status).toBe('aborted');
    expect(result.abort?.reason).toContain('ok over 0.5 s');
    expect(result.experiment?.durationMs).toBeLessThan(10_000);
    expect(result.experiment?.faults.map((f) => f.label)).toEqual([
      'db paused',
      'cache down',
      'reset_peer on web',
    ]);
    const ms = clearedSeenAt - decidedAt;
    console.log(
      `every fault gone ${ms.toFixed(1)} ms after the abort decision (runner: ${result.abort?.clearedAfterMs.toFixed(1)} ms)`,
    );
    expect(ms).toBeGreaterThan(0);
    expect(ms).toBeLessThan(1_000);
    expect(await allClear()).toBe(true);
  }, 60_000);

  it('Ctrl-C on `bulwark chaos run` removes the faults, runs the rollbacks and exits 130', async () => {
    const { spawn } = await import('node:child_process');
    const { writeFileSync } = await import('node:fs');
    const dir = mkdtempSync(join(tmpdir(), 'bulwark-chaosexp-sigint-'));
    const file = join(dir, 'long.yaml');
    writeFileSync(
      file,
      [
        'title: interrupted',
        'durationMs: 60000',
        `load: { url: "http://${listenOf('web')}/", rate: 20 }`,
        'steady-state-hypothesis:',
        '  probes: [{ name: ok, type: successRatio, tolerance: { min: 0 } }]',
        'method:',
        `  - { type: toxic, api: "${api.url}", proxy: web, toxic: { type: latency, attributes: { latency: 5 } } }`,
        'rollbacks:',
        `  - { type: proxyDown, name: rollback-marker, api: "${api.url}", proxy: cache }`,
      ].join('\n'),
    );
    const child = spawn(
      process.execPath,
      ['--import', 'tsx', join(root, 'examples/chaos/bulwark.ts'), 'chaos', 'run', file, '--out', dir],
      {
        cwd: root,
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    let output = '';
    const seen = new Promise<void>((resolve) => {
      const on = (c: Buffer): void => {
        output += c.toString();
        if (output.includes('✓ latency on web')) resolve();
      };
      child.stdout.on('data', on);
      child.stderr.on('data', on);
    });
    await seen;
    expect(api.proxies.get('web')!.toxics.length).toBe(1);
    const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
    child.kill('SIGINT');
    expect(await exited).toBe(130);
    expect(api.proxies.get('web')!.toxics).toEqual([]);
    expect(api.proxies.get('cache')!.isEnabled).toBe(false); // the rollback ran
    await api.proxies.get('cache')!.setEnabled(true);
    expect(output).toContain('INTERRUPTED');
    rmSync(dir, { recursive: true, force: true });
  }, 60_000);

  it('the CLI exits 1 when the hypothesis fails, 2 with file:line for a bad file', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'bulwark-chaosexp-cli-'));
    const { writeFileSync } = await import('node:fs');
    const bad = join(dir, 'bad.yaml');
    writeFileSync(
      bad,
      'title: t\ndurationMs: 100\nsteady-state-hypothesis:\n  probes:\n    - { name: ok, type: successRatio, tolerance: { min: 1 } }\nmethod:\n  - { type: sleeep, durationMs: 5 }\n',
    );
    const lines: string[] = [];
    const io = { out: (s: string) => lines.push(s), err: (s: string) => lines.push(s) };
    expect(await runMain(['chaos', 'run', bad], io)).toBe(2);
    expect(lines.join('\n')).toMatch(/bad\.yaml:7:\d+ method\[0\]\.type: /);
    const failing = join(dir, 'failing.yaml');
    writeFileSync(
      failing,
      `title: t\ndurationMs: 600\nload: { url: "http://${listenOf('web')}/", rate: 50 }\nsteady-state-hypothesis:\n  probes:\n    - { name: p99, type: latency, percentile: 99, tolerance: { max: 0 } }\nmethod:\n  - { type: sleep, durationMs: 5 }\n`,
    );
    expect(await runMain(['chaos', 'run', failing, '--out', dir, '--quiet'], io)).toBe(1);
    expect(lines.join('\n')).toContain('FAILED');
    rmSync(dir, { recursive: true, force: true });
  }, 30_000);
});

describe('in-process chaos through the control plane, and process signals', () => {
  it('enables a chaos strategy through bulwark/server for a window, then restores it; stops and restarts a process', async () => {
    const { chaos, createRegistry, pipeline } = await import('bulwark');
    const { createControlPlane } = await import('bulwark/server');
    const registry = createRegistry();
    const fault = chaos.fault({
      error: () => new Error('injected'),
      enabled: false,
      name: 'payments-fault',
      registry,
    });
    const policy = pipeline(fault);
    const token = 'an-operator-token-of-32-chars-min!!';
    const cp = createControlPlane({ registry, tokens: [{ name: 'chaos', role: 'operator', token }] });
    const server = createServer(cp.handle);
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    const seen: boolean[] = [];
    try {
      const result = await runExperiment(
        {
          title: 'in-process fault for 400 ms',
          setup: [
            {
              type: 'process',
              name: 'sleeper',
              command: [process.execPath, '-e', "console.log('ready'); setInterval(() => {}, 1000)"],
              ready: { pattern: 'ready' },
            },
          ],
          load: { url: 'http://in-process.invalid', rate: 50 },
          durationMs: 1_500,
          'steady-state-hypothesis': {
            probes: [{ name: 'ok', type: 'successRatio', tolerance: { min: 0.5 } }],
          },
          method: [
            {
              type: 'controlPlane',
              url,
              token,
              component: 'payments-fault',
              operation: 'enable',
              durationMs: 400,
              pauses: { beforeMs: 300 },
            },
            { type: 'signal', process: 'sleeper', signal: 'SIGSTOP', durationMs: 200 },
            { type: 'signal', process: 'sleeper', signal: 'SIGKILL' },
            { type: 'startProcess', process: 'sleeper' },
          ],
        },
        {
          send: async () => {
            seen.push(fault.control.enabled);
            return policy.execute(() => ({ ok: true })).catch(() => ({ ok: false }));
          },
        },
      );
      expect(result.experiment?.activities.map((a) => [a.label, a.ok])).toEqual([
        ['enable payments-fault', true],
        ['SIGSTOP sleeper', true],
        ['SIGKILL sleeper', true],
        ['start sleeper', true],
      ]);
      expect(seen.some((x) => x)).toBe(true); // injected while enabled
      expect(fault.control.enabled).toBe(false); // restored
      expect(result.experiment?.errors).toBeGreaterThan(5);
      expect(result.status).toBe('passed');
    } finally {
      cp.close?.();
      server.close();
    }
  }, 30_000);
});

describe('HTML report', () => {
  it('renders in headless Chromium: the score, the probes and the charts with the fault windows', async () => {
    const experiment = await loadExperiment(join(root, 'examples/chaos/gateway-endpoint.yaml'), { ci: true });
    const result = await runExperiment(experiment, { baseDir: join(root, 'examples/chaos') });
    expect(result.status).toBe('passed');
    const browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'],
    });
    try {
      const page = await browser.newPage({ viewport: { width: 1240, height: 900 } });
      const requests: string[] = [];
      page.on('request', (r) => {
        if (!r.url().startsWith('data:') && r.url() !== 'about:blank') requests.push(r.url());
      });
      await page.setContent(htmlReport(result), { waitUntil: 'load' });
      expect(await page.locator('.score').textContent()).toContain('100');
      expect(await page.locator('table tbody tr').count()).toBe(4);
      expect(await page.locator('svg').count()).toBe(6); // 3 charts × (control, experiment)
      expect(await page.locator('rect.fault').count()).toBe(3); // the fault window, on each experiment chart
      expect(await page.locator('polyline').count()).toBeGreaterThanOrEqual(10);
      expect(requests).toEqual([]); // self-contained
      mkdirSync(join(root, 'docs/img'), { recursive: true });
      await page.screenshot({ path: join(root, 'docs/img/chaos-report.png'), fullPage: true });
    } finally {
      await browser.close();
    }
  }, 90_000);
});
