import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createRegistry } from 'bulwark';
import {
  type AlertNotification,
  createAlerts,
  createMetrics,
  logNotifier,
  WebhookError,
  webhookNotifier,
} from 'bulwark/metrics';
import { createFakeClock } from 'bulwark/testing';
import { afterEach, describe, expect, it } from 'vitest';
import { FakeComponent } from './metrics-fakes.js';

/** A real HTTP receiver that answers `failures` with 503 (or hangs) before accepting. */
async function receiver(failures: number, mode: 'status' | 'hang' | 'reject' = 'status') {
  const bodies: unknown[] = [];
  let requests = 0;
  const readBody = (req: IncomingMessage) =>
    new Promise<string>((resolve) => {
      let s = '';
      req.on('data', (c) => {
        s += c;
      });
      req.on('end', () => resolve(s));
    });
  const server: Server = createServer(async (req, res) => {
    requests++;
    const body = await readBody(req);
    if (mode === 'reject') {
      res.writeHead(400).end('bad');
      return;
    }
    if (requests <= failures) {
      if (mode === 'hang') return; // never answers: the per-attempt timeout must fire
      res.writeHead(503).end('busy');
      return;
    }
    bodies.push({ headers: req.headers, json: JSON.parse(body) });
    res.writeHead(200).end('ok');
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`;
  servers.push(server);
  return { url, bodies, requests: () => requests };
}

const servers: Server[] = [];
afterEach(async () => {
  for (const s of servers.splice(0)) {
    s.closeAllConnections();
    await new Promise((r) => s.close(r));
  }
});

const note = (): AlertNotification => ({
  status: 'firing',
  at: 0,
  alert: {
    rule: 'BulwarkCircuitOpen',
    state: 'firing',
    severity: 'warning',
    labels: { alertname: 'BulwarkCircuitOpen', severity: 'warning', name: 'db' },
    annotations: { summary: 'Circuit breaker db has been open for over a minute' },
    value: 1,
    activeAt: 0,
    firedAt: 0,
    resolvedAt: undefined,
  },
});

describe('webhookNotifier', () => {
  it('POSTs Alertmanager-shaped JSON, retrying with backoff through 503s', async () => {
    const rx = await receiver(3);
    const hook = webhookNotifier({
      url: rx.url,
      initialDelayMs: 1,
      maxDelayMs: 5,
      headers: { 'x-team': 'core' },
    });
    await hook.notify(note());
    expect(rx.requests()).toBe(4);
    expect(rx.bodies).toHaveLength(1);
    const b = rx.bodies[0] as { headers: Record<string, string>; json: Record<string, unknown> };
    expect(b.headers['content-type']).toBe('application/json');
    expect(b.headers['x-team']).toBe('core');
    expect(b.json).toMatchObject({
      version: '4',
      status: 'firing',
      groupLabels: { alertname: 'BulwarkCircuitOpen' },
      alerts: [
        {
          status: 'firing',
          labels: { name: 'db' },
          annotations: { summary: 'Circuit breaker db has been open for over a minute' },
        },
      ],
    });
  });

  it('gives up after maxAttempts with a WebhookError', async () => {
    const rx = await receiver(100);
    const hook = webhookNotifier({ url: rx.url, initialDelayMs: 1, maxDelayMs: 2, maxAttempts: 3 });
    await expect(hook.notify(note())).rejects.toBeInstanceOf(WebhookError);
    expect(rx.requests()).toBe(3);
  });

  it('does not retry a 4xx', async () => {
    const rx = await receiver(0, 'reject');
    const hook = webhookNotifier({ url: rx.url, initialDelayMs: 1 });
    await expect(hook.notify(note())).rejects.toThrow(/answered 400/);
    expect(rx.requests()).toBe(1);
  });

  it('times out a hanging attempt and retries (fake clock drives timeout and backoff)', async () => {
    const rx = await receiver(1, 'hang');
    const clock = createFakeClock();
    const hook = webhookNotifier({
      url: rx.url,
      clock,
      timeoutMs: 1_000,
      initialDelayMs: 100,
      maxDelayMs: 100,
    });
    let done = false;
    const p = Promise.resolve(hook.notify(note())).then(() => {
      done = true;
    });
    // Let the first request reach the server, then pass its deadline and the backoff.
    while (rx.requests() < 1) await new Promise((r) => setTimeout(r, 5));
    await clock.tick(1_000);
    await clock.tick(100);
    for (let i = 0; i < 200 && !done; i++) {
      await new Promise((r) => setTimeout(r, 5));
      await clock.tick(100);
    }
    await p;
    expect(rx.requests()).toBe(2);
    expect(rx.bodies).toHaveLength(1);
  });

  it('is driven by the alert manager: firing and resolved each delivered once', async () => {
    const rx = await receiver(1);
    const clock = createFakeClock();
    const registry = createRegistry();
    const metrics = createMetrics({ registry, clock });
    let ready = false;
    const svc = new FakeComponent(
      { kind: 'svc', help: 'a service', states: ['ok'], gauges: { ready: 'ready' }, counters: {} },
      'main',
    );
    svc.snapshot = () => ({
      kind: 'svc',
      name: 'main',
      state: 'ok',
      gauges: { ready: ready ? 1 : 0 },
      counters: {},
    });
    registry.register(svc);
    const lines: object[] = [];
    const push = (o: object) => void lines.push(o);
    const alerts = createAlerts({
      metrics,
      clock,
      rules: [
        { name: 'NotReady', expr: { kind: 'value', metric: 'bulwark_svc_ready', op: '==', threshold: 0 } },
      ],
      notifiers: [
        webhookNotifier({ url: rx.url, initialDelayMs: 1, maxDelayMs: 2 }),
        logNotifier({ logger: { info: push, warn: push, error: push } }),
      ],
    });
    await alerts.evaluate();
    await alerts.flush(); // evaluate() does not wait for deliveries
    ready = true;
    await clock.tick(15_000);
    await alerts.evaluate();
    await alerts.flush();
    expect(rx.bodies.map((b) => (b as { json: { status: string } }).json.status)).toEqual([
      'firing',
      'resolved',
    ]);
    expect(lines).toHaveLength(2);
  });

  it('validates its options with the field named', () => {
    expect(() => webhookNotifier({ url: 'not a url' })).toThrow(/webhookNotifier\.url/);
  });
});
