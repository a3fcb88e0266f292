/**
 * The real Redis the Redis tests run against (127.0.0.1:6379, db 0). On CI (CI=true) the tests
 * must run: when Redis is unreachable they fail. Elsewhere they are skipped, with a message.
 */
import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { describe } from 'vitest';

export const REDIS_HOST = '127.0.0.1';
export const REDIS_PORT = 6379;

async function probe(): Promise<boolean> {
  const c = new Redis({
    host: REDIS_HOST,
    port: REDIS_PORT,
    lazyConnect: true,
    connectTimeout: 500,
    maxRetriesPerRequest: 0,
    retryStrategy: () => null,
  });
  c.on('error', () => {});
  try {
    await c.connect();
    return (await c.ping()) === 'PONG';
  } catch {
    return false;
  } finally {
    c.disconnect();
  }
}

/** True when Redis answered a PING. */
export const redisUp = await probe();
const onCi = process.env.CI === 'true';
if (!redisUp && !onCi) {
  console.warn(
    `Redis tests SKIPPED: no Redis at ${REDIS_HOST}:${REDIS_PORT} (start one, e.g. \`redis-server\`; with CI=true they fail instead)`,
  );
}

/** `describe` for Redis tests: runs when Redis is up or on CI (where an unreachable Redis fails them). */
export const describeRedis = redisUp || onCi ? describe : describe.skip;

/** A client of the test Redis; throws on CI when it is unreachable. */
export async function connectRedis(): Promise<Redis> {
  const c = new Redis({ host: REDIS_HOST, port: REDIS_PORT, db: 0, lazyConnect: true, connectTimeout: 1000 });
  c.on('error', () => {});
  try {
    await c.connect();
  } catch (error) {
    c.disconnect();
    throw new Error(`Redis at ${REDIS_HOST}:${REDIS_PORT} is unreachable (CI=${String(onCi)})`, {
      cause: error,
    });
  }
  return c;
}

/** A fresh key prefix, unique to one test. */
export function testPrefix(): string {
  return `bulwark:test:${randomBytes(6).toString('hex')}:`;
}

/** Deletes every key under `prefix`. */
export async function cleanup(c: Redis, prefix: string): Promise<void> {
  let cursor = '0';
  do {
    const [next, keys] = await c.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000);
    cursor = next;
    if (keys.length > 0) await c.del(...keys);
  } while (cursor !== '0');
}

/** `INFO commandstats` as command → calls. */
export async function commandCalls(c: Redis): Promise<Map<string, number>> {
  const info = await c.info('commandstats');
  const out = new Map<string, number>();
  for (const line of info.split('\n')) {
    const m = /^cmdstat_([^:]+):calls=(\d+)/.exec(line.trim());
    if (m !== null) out.set(m[1]!, Number(m[2]));
  }
  return out;
}

/** Polls `cond` every 10 ms until it holds or `deadlineMs` passes; returns whether it held. */
export async function until(cond: () => Promise<boolean>, deadlineMs: number): Promise<boolean> {
  const end = Date.now() + deadlineMs;
  for (;;) {
    if (await cond()) return true;
    if (Date.now() > end) return false;
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** Polls the synchronous `cond` every 5 ms; throws when it does not hold within `ms`. */
export async function waitFor(cond: () => boolean, ms = 3_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 5));
  }
}
