import { describe, expect, it } from 'vitest';
import { ConfigError } from '../core/errors.js';
import { parseGatewayConfig } from './config.js';
import { Fleet, redisSettings } from './fleet.js';
import { lintGatewayConfig } from './lint.js';

const base = {
  listen: '127.0.0.1:0',
  accessLog: false,
  upstreams: { api: { endpoints: [{ url: 'http://127.0.0.1:7001' }] } },
  routes: [{ match: { path: '/' }, upstream: 'api' }],
};

describe('fleet settings', () => {
  it('redis is a URL or { url, prefix, timeoutMs, insuranceShare }; bad values name the option', () => {
    expect(redisSettings(parseGatewayConfig({ ...base, redis: 'redis://h:6379/0' }).redis!)).toEqual({
      url: 'redis://h:6379/0',
      prefix: 'bulwark:gw:',
      timeoutMs: 50,
      insuranceShare: 1,
    });
    const o = parseGatewayConfig({
      ...base,
      redis: { url: 'rediss://h', prefix: 'a:', insuranceShare: 0.5 },
    });
    expect(redisSettings(o.redis!)).toMatchObject({ prefix: 'a:', insuranceShare: 0.5, timeoutMs: 50 });
    expect(() => parseGatewayConfig({ ...base, redis: 'http://h' })).toThrow(ConfigError);
    try {
      parseGatewayConfig({ ...base, redis: { url: 'redis://h', prefix: '{x}' } });
      expect.unreachable();
    } catch (error) {
      expect((error as ConfigError).option).toMatch(/^\$\.redis/);
    }
    expect(() => parseGatewayConfig({ ...base, postgres: 'mysql://h' })).toThrow(ConfigError);
  });

  it('with neither setting everything is local; a reload may not move the instance to another fleet', async () => {
    const fleet = await Fleet.open(parseGatewayConfig(base));
    expect(fleet.describe()).toEqual({ limits: 'memory', breakers: 'local', queue: 'sqlite' });
    expect(fleet.sameAs(parseGatewayConfig(base))).toBe(true);
    expect(fleet.sameAs(parseGatewayConfig({ ...base, postgres: 'postgres://h/db' }))).toBe(false);
    await fleet.close();
  });

  it('the lint warns when a fleet shares limits through Redis but keeps its write queue per instance', () => {
    const routes = [{ match: { path: '/' }, upstream: 'api', storeAndForward: true }];
    const options = (v: Record<string, unknown>) =>
      lintGatewayConfig(parseGatewayConfig({ ...base, routes, ...v })).map((f) => f.option);
    expect(options({ redis: 'redis://h' })).toContain('postgres');
    expect(options({ redis: 'redis://h', postgres: 'postgres://h/db' })).not.toContain('postgres');
    expect(options({})).not.toContain('postgres');
  });
});
