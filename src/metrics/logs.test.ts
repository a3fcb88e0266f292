import { bulkhead, circuitBreaker, pipeline, retry } from 'bulwark';
import { createFakeClock, deferred } from 'bulwark/testing';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
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
  it('logs breaker changes, bulkhead full, retry give-ups — never a secret', async () => {
    const { lines, logger } = capture();
    const clock = createFakeClock();
    const metrics = createMetrics({ clock });
    createLogs({ metrics, logger, clock });
    const cb = circuitBreaker({
      name: 'pg',
      clock,
      breaker: { kind: 'consecutive', threshold: 2 },
      halfOpenAfterMs: 1_000,
    });
    const pool = bulkhead({ name: 'pool', limit: 1, queue: 0, clock });
    const r = retry({ name: 'r', maxAttempts: 2, clock });
    metrics.track(pipeline(r, cb), 'db');
    metrics.track(pool);
    const secretError = () =>
      Object.assign(new Error('connect postgres://app:hunter2@db:5432/prod failed; password=s3cr3t-pw'), {
        password: 's3cr3t-pw',
        config: { token: 'tok_ABCDEF123', headers: { Authorization: 'Bearer eyJhbGciOi.payload.sig' } },
      });
    const p = pipeline(r, cb)
      .execute(() => Promise.reject(secretError()))
      .catch(() => {});
    await clock.tick(10_000);
    await p;
    const gate = deferred<void>();
    const busy = pool.execute(() => gate.promise);
    for (let i = 0; i < 5; i++) await pool.execute(() => 1).catch(() => {});
    gate.resolve();
    await busy;
    const text = lines.join('');
    for (const s of SECRETS) expect(text).not.toContain(s);
    const objs = lines.map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(objs.some((o) => o.event === 'bulwark.circuit.stateChange' && o.to === 'open')).toBe(true);
    expect(objs.some((o) => o.event === 'bulwark.retry.giveUp')).toBe(true);
    // Bulkhead rejections are throttled: one line for five rejections.
    expect(objs.filter((o) => o.event === 'bulwark.bulkhead.full')).toHaveLength(1);
    const giveUp = objs.find((o) => o.event === 'bulwark.retry.giveUp')!;
    expect(JSON.stringify(giveUp.err)).toContain('[REDACTED]');
  });

  it('does not turn on per-call events', () => {
    const { logger } = capture();
    const cb = circuitBreaker();
    createLogs({ logger }).attach(cb);
    const emitter = (cb as unknown as { emitter: { wants(e: string): boolean } }).emitter;
    expect(emitter.wants('success')).toBe(false);
    expect(emitter.wants('stateChange')).toBe(true);
  });

  it('logs alert transitions and health changes', async () => {
    const { lines, logger } = capture();
    const clock = createFakeClock();
    const metrics = createMetrics({ clock });
    const logs = createLogs({ logger, clock });
    let status: 'pass' | 'fail' = 'pass';
    const monitor = {
      snapshot: () => ({
        ready: status === 'pass',
        shuttingDown: false,
        checks: [{ name: 'pg', status, critical: true }],
      }),
    };
    metrics.addHealth(monitor);
    const stop = logs.health(monitor, 1_000);
    const alerts = createAlerts({
      metrics,
      clock,
      rules: [
        {
          name: 'Down',
          expr: { kind: 'value', metric: 'bulwark_ready', op: '==', threshold: 0 },
          severity: 'critical',
        },
      ],
    });
    logs.alerts(alerts);
    status = 'fail';
    await clock.tick(1_000);
    await alerts.evaluate();
    stop();
    const objs = lines.map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(objs.map((o) => o.event)).toEqual([
      'bulwark.health.ready',
      'bulwark.health.check',
      'bulwark.alert',
    ]);
    expect(objs[2]!.level).toBe(50); // error: a critical alert firing
  });

  it('makes a pino logger lazily with redact paths when none is given', async () => {
    const lines: string[] = [];
    const logs = createLogs({ destination: { write: (s: string) => void lines.push(s) } });
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
