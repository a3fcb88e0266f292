import { createRegistry } from 'bulwark';
import { createFakeClock } from 'bulwark/testing';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { FAKE_BREAKER, FAKE_LIMITER, FakeComponent } from '../../test/metrics-fakes.js';
import { createHealthMonitor, customCheck } from '../health/index.js';
import { createAlerts, createLogs, createMetrics, isSecretKey, scrubSecrets, scrubString } from './index.js';

const SECRETS = [
  'hunter2',
  's3cr3t-pw',
  'tok_ABCDEF123',
  'sk_live_42',
  'eyJhbGciOi.payload.sig',
  'Zm9vOmJhcg==',
];

function capture() {
  const lines: string[] = [];
  const logger = pino({ level: 'info' }, { write: (s: string) => void lines.push(s) });
  return { lines, logger };
}

describe('scrubbing', () => {
  it('scrubs connection-string credentials, key=value secrets and bearer tokens from strings', () => {
    expect(scrubString('postgres://app:hunter2@db:5432/x')).toBe('postgres://app:[REDACTED]@db:5432/x');
    expect(scrubString('redis://:hunter2@cache:6379')).toBe('redis://:[REDACTED]@cache:6379');
    expect(scrubString('Server=db;User Id=a;Password=hunter2;')).toBe(
      'Server=db;User Id=a;Password=[REDACTED];',
    );
    expect(scrubString('Authorization: Bearer eyJhbGciOi.payload.sig')).not.toContain('eyJhbGciOi');
    expect(scrubString('no secrets here: http://example.org/a@b')).toBe(
      'no secrets here: http://example.org/a@b',
    );
  });

  it('redacts secret fields at any depth, in errors and their causes, and survives cycles', () => {
    const err = Object.assign(new Error('connect postgres://u:hunter2@h/db failed'), {
      code: 'ECONNREFUSED',
      password: 's3cr3t-pw',
      cause: Object.assign(new Error('inner'), { apiKey: 'sk_live_42' }),
    });
    const cyclic: Record<string, unknown> = {
      token: 'tok_ABCDEF123',
      nested: { 'x-api-key': 'sk_live_42', headers: { authorization: 'Basic Zm9vOmJhcg==' } },
    };
    cyclic.self = cyclic;
    const out = JSON.stringify(scrubSecrets({ err, cyclic, connectionString: 'postgres://a:hunter2@b/c' }));
    for (const s of SECRETS) expect(out).not.toContain(s);
    expect(out).toContain('ECONNREFUSED');
    expect(out).toContain('[Circular]');
    expect(out).toContain('postgres://a:[REDACTED]@b/c');
  });
});

describe('createLogs', () => {
  it('logs every state change of every registered component at info, never a secret', () => {
    const { lines, logger } = capture();
    const registry = createRegistry();
    createLogs({ registry, logger });
    const breaker = registry.register(new FakeComponent(FAKE_BREAKER, 'pg'));
    breaker.setState('open');
    breaker.emit('stateChange', {
      from: 'open',
      to: 'half-open',
      error: Object.assign(
        new Error('connect postgres://app:hunter2@db:5432/prod failed; password=s3cr3t-pw'),
        {
          password: 's3cr3t-pw',
          config: { token: 'tok_ABCDEF123', headers: { Authorization: 'Bearer eyJhbGciOi.payload.sig' } },
        },
      ),
    });
    breaker.emit('success'); // not asked for: not logged
    const text = lines.join('');
    for (const s of SECRETS) expect(text).not.toContain(s);
    const objs = lines.map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(objs.map((o) => [o.event, o.from, o.to, o.level])).toEqual([
      ['bulwark.fakeBreaker.stateChange', 'closed', 'open', 30],
      ['bulwark.fakeBreaker.stateChange', 'open', 'half-open', 30],
    ]);
    expect(objs[0]!.msg).toBe('fakeBreaker pg stateChange: closed → open');
    expect(JSON.stringify(objs[1]!.error)).toContain('[REDACTED]');
  });

  it('logs the events asked for, throttled per component and event', async () => {
    const { lines, logger } = capture();
    const clock = createFakeClock();
    const registry = createRegistry();
    createLogs({ registry, logger, clock, events: { reject: { level: 'warn', throttleMs: 10_000 } } });
    const pool = registry.register(new FakeComponent(FAKE_LIMITER, 'pool'));
    for (let i = 0; i < 5; i++) pool.emit('reject', { reason: 'full' });
    await clock.tick(10_000);
    pool.emit('reject', { reason: 'full' });
    const objs = lines.map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(objs.map((o) => [o.event, o.level, o.suppressed])).toEqual([
      ['bulwark.fakeLimiter.reject', 40, undefined],
      ['bulwark.fakeLimiter.reject', 40, 4],
    ]);
  });

  it('logs health checks, the monitor and alert transitions through the registry', async () => {
    const { lines, logger } = capture();
    const clock = createFakeClock();
    const registry = createRegistry();
    const logs = createLogs({ registry, logger });
    let up = true;
    const monitor = createHealthMonitor({
      clock,
      registry,
      degradation: false,
      checks: [customCheck({ name: 'pg', failureThreshold: 1, intervalMs: 1_000, run: () => up })],
    });
    await monitor.runNow();
    const metrics = createMetrics({ registry, clock });
    const alerts = createAlerts({
      metrics,
      registry,
      rules: [
        {
          name: 'Down',
          expr: {
            kind: 'value',
            metric: 'bulwark_component_state',
            match: { kind: 'healthMonitor', state: 'notReady' },
            op: '==',
            threshold: 1,
          },
          severity: 'critical',
        },
      ],
    });
    up = false;
    await clock.tick(1_000);
    await alerts.evaluate();
    logs.close();
    await monitor.close();
    const objs = lines.map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(objs.map((o) => `${o.event} ${o.from}->${o.to}`)).toEqual([
      'bulwark.healthCheck.stateChange pending->pass',
      'bulwark.healthMonitor.stateChange starting->ready',
      'bulwark.healthCheck.stateChange pass->fail',
      'bulwark.healthMonitor.stateChange ready->notReady',
      'bulwark.alertManager.alert inactive->firing',
      'bulwark.alertManager.stateChange ok->firing',
    ]);
    expect(objs[4]!.level).toBe(50); // error: a critical alert firing
  });

  it('makes a pino logger lazily with redact paths when none is given', async () => {
    const lines: string[] = [];
    const logs = createLogs({ registry: false, destination: { write: (s: string) => void lines.push(s) } });
    logs.log('info', { apiKey: 'sk_live_42', user: 'ann' }, 'hello');
    await logs.flush();
    expect(lines).toHaveLength(1);
    expect(lines[0]).not.toContain('sk_live_42');
    expect(JSON.parse(lines[0]!)).toMatchObject({ name: 'bulwark', user: 'ann', msg: 'hello' });
  });
});

describe('scrubbing (review regressions)', () => {
  it('redacts fields whose names contain a secret word, whatever the case and separators', () => {
    const out = scrubSecrets({
      dbPassword: 'hunter2',
      headers: { 'X-Auth-Token': 'tok123', 'x-api-token': 'k' },
      AWS_SECRET_ACCESS_KEY: 'aws',
      auth: 'user:pw',
      sessionId: 's',
      clientCredentials: 'c',
      'private.key': 'pk',
      author: 'Jane',
      user: 'bob',
    });
    expect(out).toEqual({
      dbPassword: '[REDACTED]',
      headers: { 'X-Auth-Token': '[REDACTED]', 'x-api-token': '[REDACTED]' },
      AWS_SECRET_ACCESS_KEY: '[REDACTED]',
      auth: '[REDACTED]',
      sessionId: '[REDACTED]',
      clientCredentials: '[REDACTED]',
      'private.key': '[REDACTED]',
      author: 'Jane',
      user: 'bob',
    });
    expect(isSecretKey('DB_PASSWORD')).toBe(true);
    expect(isSecretKey('name')).toBe(false);
  });

  it('scrubs JSON pairs and prefixed KEY=value pairs inside text', () => {
    const json = scrubString(
      'upstream said 400: {"password":"hunter2","token": "abc\\"d","user":"bob","apiKey":42}',
    );
    expect(json).toBe(
      'upstream said 400: {"password":"[REDACTED]","token": "[REDACTED]","user":"bob","apiKey":"[REDACTED]"}',
    );
    expect(scrubString('DB_PASSWORD=hunter2 MY_TOKEN=abc AWS_SECRET_ACCESS_KEY=xyz user=bob')).toBe(
      'DB_PASSWORD=[REDACTED] MY_TOKEN=[REDACTED] AWS_SECRET_ACCESS_KEY=[REDACTED] user=bob',
    );
    expect(scrubString('x-api-key: k123; dbPassword=p')).toBe('x-api-key: [REDACTED]; dbPassword=[REDACTED]');
    expect(scrubString('redis://:s3cret@cache:6379')).toBe('redis://:[REDACTED]@cache:6379');
  });

  it('logs binary data as its size', () => {
    expect(scrubSecrets({ body: Buffer.alloc(5) })).toEqual({ body: '[Buffer 5 bytes]' });
  });

  it('stays linear on long strings without secrets', () => {
    const long = `${'a'.repeat(200_000)}=${'b/'.repeat(100_000)}`;
    expect(scrubString(long)).toBe(long);
  });
});
