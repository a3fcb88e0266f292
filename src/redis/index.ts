/**
 * `bulwark/redis`: distributed state on Redis (ioredis, an optional peer dependency: pass your
 * own client): rate limiters with an in-memory insurance limiter, a shared circuit breaker, a
 * leased semaphore (and a bulkhead on it), and a cache store.
 */

export {
  type RedisCacheClient,
  RedisCacheStore,
  type RedisCacheStoreOptions,
  redisCacheStore,
} from './cache-store.js';
export {
  type RedisClientLike,
  RedisRateLimiter,
  type RedisRateLimiterEvent,
  type RedisRateLimiterOptions,
  RedisTimeoutError,
  redisRateLimiter,
} from './rate-limiter.js';
export {
  type RedisBulkheadOptions,
  RedisBulkheadPolicy,
  type RedisPermit,
  RedisSemaphore,
  type RedisSemaphoreClient,
  type RedisSemaphoreOptions,
  redisBulkhead,
  redisSemaphore,
} from './semaphore.js';
export {
  type SharedBreakerClient,
  type SharedBreakerSubscriber,
  type SharedCircuitBreakerEvent,
  type SharedCircuitBreakerOptions,
  SharedCircuitBreakerPolicy,
  type SharedCircuitState,
  sharedCircuitBreaker,
} from './shared-breaker.js';
