/**
 * The run-time operations of REAL components through the control plane over a socket: limits of
 * a bulkhead, a rate limit, a load shedder and an adaptive limit; health overrides; alert rules
 * and silences; SLO views. Each action with each role (401 / 403 / 400 naming the field / 200),
 * audited with before/after and the reason; inputs fuzzed from the OpenAPI input schemas (valid
 * and broken) never produce a 5xx, and every call that got past authentication and validation
 * is in the audit log.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import {
  adaptiveConcurrency,
  bulkhead,
  circuitBreaker,
  createRegistry,
  loadShedder,
  type Registry,
  rateLimit,
} from 'bulwark';
import { createHealthMonitor, customCheck, type HealthMonitor } from 'bulwark/health';
import { type AlertManager, createAlerts, createMetrics, sloTracker } from 'bulwark/metrics';
import { type ControlPlane, createControlPlane, type MemoryAudit, memoryAudit } from 'bulwark/server';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TOKENS } from './support/control-plane-fixture.js';

type Role = keyof typeof TOKENS;
type JsonSchema = {
  type?: string;
  properties?: Record<string, JsonSchema>;
  required?: string[];
  items?: JsonSchema;
  enum?: unknown[];
  anyOf?: JsonSchema[];
  minimum?: number;
  maximum?: number;
  exclusiveMinimum?: number;
  minItems?: number;
  maxItems?: number;
};

let server: Server;
let base: string;
let cp: ControlPlane;
let audit: MemoryAudit;
let registry: Registry;
let monitor: HealthMonitor;
let alerts: AlertManager;
const pool = () => registry.get('bulkhead', 'db') as ReturnType<typeof bulkhead>;

async function call(
  path: string,
  role?: Role,
  body?: unknown,
): Promise<{ status: number; body: Record<string, unknown> }> {
  const res = await fetch(`${base}${path}`, {
    method: body === undefined ? 'GET' : 'POST',
    headers: {
      ...(role === undefined ? {} : { authorization: `Bearer ${TOKENS[role]}` }),
      ...(body === undefined ? {} : { 'content-type': 'application/json' }),
    },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  const text = await res.text();
  return { status: res.status, body: text === '' ? {} : (JSON.parse(text) as Record<string, unknown>) };
}

const act = (kind: string, name: string, op: string) => `/api/components/${kind}/${name}/actions/${op}`;

beforeAll(async () => {
  registry = createRegistry();
  circuitBreaker({ name: 'payments', registry });
  bulkhead({ name: 'db', limit: 4, queue: 10, registry });
  rateLimit({ name: 'api', limits: [{ algorithm: 'gcra', rate: 10, periodMs: 1_000, burst: 5 }], registry });
  loadShedder({ name: 'edge', capacity: 100, registry });
  adaptiveConcurrency({ name: 'search', algorithm: 'aimd', registry });
  monitor = createHealthMonitor({
    name: 'health',
    checks: [customCheck({ name: 'db', run: () => true }), customCheck({ name: 'cache', run: () => true })],
    registry,
  });
  await monitor.runNow();
  const metrics = createMetrics({ registry });
  alerts = createAlerts({ metrics, registry, rules: [] });
  sloTracker({
    name: 'checkout',
    source: registry.get('circuitBreaker', 'payments')!,
    objective: 0.99,
    registry,
  });
  audit = memoryAudit({ capacity: 100_000 });
  cp = createControlPlane({
    registry,
    audit,
    tokens: [
      { name: 'vic', role: 'viewer', token: TOKENS.viewer },
      { name: 'olga', role: 'operator', token: TOKENS.operator },
      { name: 'ada', role: 'admin', token: TOKENS.admin },
    ],
    authLimit: { failures: 100_000 },
  });
  server = createServer(cp.handle);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  cp.close();
  await monitor.close();
  await new Promise((r) => server.close(r));
});

/** Every new action: [path, a valid input, a bad input, the field the 400 names, the least role]. */
const CASES: [string, unknown, unknown, string, Role][] = [
  [act('bulkhead', 'db', 'setLimits'), { limit: 8 }, { limit: 0 }, 'body.input.limit', 'operator'],
  [
    act('rateLimit', 'api', 'setLimits'),
    { limits: [{ algorithm: 'gcra', rate: 50, periodMs: 1_000, burst: 20 }] },
    { limits: [{ algorithm: 'gcra', rate: 50, periodMs: -5 }] },
    'body.input.limits[0].periodMs',
    'operator',
  ],
  [
    act('loadShedder', 'edge', 'setLimits'),
    { capacity: 200 },
    { capacity: 1.5 },
    'body.input.capacity',
    'operator',
  ],
  [
    act('loadShedder', 'edge', 'setLevel'),
    { level: 'limited' },
    { level: 'down' },
    'body.input.level',
    'operator',
  ],
  [
    act('adaptiveConcurrency', 'search', 'setBounds'),
    { minLimit: 30, maxLimit: 300 },
    { minLimit: 50, maxLimit: 10 },
    'body.input.maxLimit',
    'operator',
  ],
  [
    act('healthMonitor', 'health', 'forceCheck'),
    { check: 'cache', status: 'warn', durationMs: 60_000 },
    { check: 'cahce', status: 'warn', durationMs: 60_000 },
    'body.input.check',
    'operator',
  ],
  [
    act('healthMonitor', 'health', 'forceLevel'),
    { level: 'limited', durationMs: 60_000 },
    { level: 'limited', durationMs: -1 },
    'body.input.durationMs',
    'operator',
  ],
  [
    act('alertManager', 'alerts', 'putRule'),
    {
      rule: {
        name: 'BreakerOpen',
        expr: {
          kind: 'value',
          metric: 'bulwark_component_state',
          match: { state: 'forced-open' },
          op: '==',
          threshold: 1,
        },
      },
    },
    { rule: { name: 'Bad', expr: { kind: 'value', metric: 'm', op: '=>', threshold: 1 } } },
    'body.input.rule.expr.op',
    'admin',
  ],
  [
    act('alertManager', 'alerts', 'silence'),
    { matchers: [{ name: 'alertname', value: 'BreakerOpen' }], durationMs: 3_600_000 },
    { matchers: [{ name: 'alert name', value: 'x' }], durationMs: 1_000 },
    'body.input.matchers[0].name',
    'operator',
  ],
];

describe('run-time operations of real components: roles, validation, audit', () => {
  it.each(CASES)(
    '%s: 401 without a token, 403 below its role, 400 naming the field, 200 audited',
    async (path, good, bad, field, least) => {
      expect((await call(path, undefined, { reason: 'test run', input: good })).status).toBe(401);
      const below: Role = least === 'admin' ? 'operator' : 'viewer';
      const denied = await call(path, below, { reason: 'test run', input: good });
      expect(denied.status).toBe(403);
      const invalid = await call(path, least, { reason: 'test run', input: bad });
      expect(invalid.status).toBe(400);
      expect(invalid.body.field).toBe(field);
      const n = audit.entries().length;
      const ok = await call(path, least, { reason: 'incident INC-7: more room', input: good });
      expect(ok.status, JSON.stringify(ok.body)).toBe(200);
      const entry = audit.entries()[n]!;
      expect(entry).toMatchObject({ actor: least === 'admin' ? 'ada' : 'olga', outcome: 'success' });
      expect((entry.payload as { reason: string }).reason).toBe('incident INC-7: more room');
      expect(entry.payload).toHaveProperty('before');
      expect(entry.payload).toHaveProperty('after');
    },
  );

  it('the changes are live: the bulkhead limit, the forced check, the level, the silenced alert', async () => {
    expect(pool().snapshot().gauges.limit).toBe(8);
    const entry = audit.entries().find((e) => e.action === 'bulkhead.setLimits' && e.outcome === 'success')!;
    const p = entry.payload as {
      before: { gauges: { limit: number } };
      after: { gauges: { limit: number } };
    };
    expect([p.before.gauges.limit, p.after.gauges.limit]).toEqual([4, 8]);
    const health = await call('/api/components/healthMonitor/health/views/overrides', 'viewer');
    expect(health.status).toBe(200);
    expect(
      (health.body as unknown as { target: string; actor: string }[]).map((o) => `${o.target}:${o.actor}`),
    ).toEqual(['cache:olga', 'degradationLevel:olga']);
    expect(monitor.healthJson({ details: true })!.status).toBe('warn');
    expect(monitor.degradation!.level).toBe('limited');
    const released = await call(act('healthMonitor', 'health', 'releaseOverride'), 'operator', {
      reason: 'fixed',
      input: { target: 'degradationLevel' },
    });
    expect(released.status).toBe(200);
    expect(monitor.degradation!.level).not.toBe('limited');
    (registry.get('circuitBreaker', 'payments') as ReturnType<typeof circuitBreaker>).forceOpen();
    await alerts.evaluate();
    const firing = await call('/api/components/alertManager/alerts/views/alerts?state=firing', 'viewer');
    expect(firing.body).toEqual([
      expect.objectContaining({ rule: 'BreakerOpen', silencedBy: [expect.any(String)] }),
    ]);
    const silences = (await call('/api/components/alertManager/alerts/views/silences', 'viewer'))
      .body as unknown as {
      createdBy: string;
      comment: string;
    }[];
    expect(silences[0]).toMatchObject({ createdBy: 'olga', comment: 'incident INC-7: more room' });
    const slo = await call('/api/components/slo/checkout/views/burns', 'viewer');
    expect((slo.body as unknown as unknown[]).length).toBe(4);
    const delDry = await call(act('alertManager', 'alerts', 'deleteRule'), 'admin', {
      reason: 'see what goes',
      input: { name: 'BreakerOpen' },
      dryRun: true,
    });
    expect(delDry.body).toMatchObject({ dryRun: true, result: { alertsResolved: 1 } });
    expect(alerts.rules).toHaveLength(1);
    const unknown = await call(act('alertManager', 'alerts', 'deleteRule'), 'admin', {
      reason: 'clean up',
      input: { name: 'Nope' },
    });
    expect(unknown.status).toBe(409);
  });
});

/** Values that fit the schema (mostly) or break it at one place (sometimes). */
function fromSchema(s: JsonSchema | undefined, depth = 0): fc.Arbitrary<unknown> {
  const junk = fc.oneof(fc.string({ maxLength: 8 }), fc.integer(), fc.constant(null), fc.boolean());
  if (s === undefined || depth > 4) return fc.jsonValue({ maxDepth: 2 });
  let good: fc.Arbitrary<unknown>;
  if (s.enum !== undefined) good = fc.constantFrom(...s.enum);
  else if (s.anyOf !== undefined) good = fc.oneof(...s.anyOf.map((x) => fromSchema(x, depth + 1)));
  else if (s.type === 'integer' || s.type === 'number') {
    const min = s.minimum ?? s.exclusiveMinimum ?? -1e6;
    const max = s.maximum ?? 1e9;
    good =
      s.type === 'integer'
        ? fc.integer({ min: Math.ceil(min), max: Math.floor(Math.min(max, 2 ** 31)) })
        : fc.double({ min, max, noNaN: true });
  } else if (s.type === 'boolean') good = fc.boolean();
  else if (s.type === 'string') good = fc.string({ maxLength: 20 });
  else if (s.type === 'array')
    good = fc.array(fromSchema(s.items, depth + 1), {
      minLength: s.minItems ?? 0,
      maxLength: Math.min(s.maxItems ?? 3, 3),
    });
  else if (s.type === 'object' || s.properties !== undefined) {
    const props = s.properties ?? {};
    const rec: Record<string, fc.Arbitrary<unknown>> = {};
    for (const [k, v] of Object.entries(props)) rec[k] = fromSchema(v, depth + 1);
    good = fc.record(rec, { requiredKeys: (s.required ?? []).filter((k) => k in props) });
  } else good = fc.jsonValue({ maxDepth: 2 });
  return fc.oneof({ arbitrary: good, weight: 4 }, { arbitrary: junk, weight: 1 });
}

describe('fuzzed from the OpenAPI input schemas', () => {
  it('never a 5xx; every call past authentication and validation is audited', async () => {
    const doc = (await call('/openapi.json')).body as {
      paths: Record<string, { post?: { requestBody: { content: Record<string, { schema: JsonSchema }> } } }>;
    };
    const actions = Object.entries(doc.paths)
      .filter(([p, v]) => p.includes('/actions/') && v.post !== undefined)
      .map(([p, v]) => ({
        path: p,
        input: v.post!.requestBody.content['application/json']!.schema.properties!.input,
      }));
    expect(actions.length).toBeGreaterThanOrEqual(15);
    let passed = 0;
    const before = audit.entries().length;
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom(...actions).chain((a) => fc.tuple(fc.constant(a.path), fromSchema(a.input))),
        fc.constantFrom<Role>('viewer', 'operator', 'admin'),
        fc.boolean(),
        async ([path, input], role, dryRun) => {
          const res = await call(path, role, { reason: 'fuzzing the API', input, dryRun });
          expect(res.status, JSON.stringify({ path, input, res: res.body })).toBeLessThan(500);
          if (res.status !== 400) passed++;
        },
      ),
      { numRuns: 300 },
    );
    // 403 (denied), 200 (success) and 409 (refused by the component) are all recorded.
    expect(audit.entries().length - before).toBe(passed);
  });
});
