/**
 * `bulwark/redis`: distributed state on Redis (ioredis, an optional peer dependency: pass your
 * own client). Rate limiters with an in-memory insurance limiter.
 */
export { type RedisRateLimitOptions, RedisRateLimitPolicy, redisRateLimit } from './rate-limit.js';
export {
  type RedisClientLike,
  RedisRateLimiter,
  type RedisRateLimiterEvent,
  type RedisRateLimiterOptions,
  RedisTimeoutError,
  redisRateLimiter,
} from './rate-limiter.js';
