/**
 * `bulwark/redis`: distributed state on Redis (ioredis, an optional peer dependency: pass your
 * own client): rate limiters with an in-memory insurance limiter, a shared circuit breaker, a
 * leased semaphore (and a bulkhead on it), and a cache store.
 */

export { SHARED_CIRCUIT_BREAKER_DESCRIPTOR } from '../core/breaker/descriptor.js';
export {
  type RedisCacheClient,
  RedisCacheStore,
  type RedisCacheStoreOptions,
  redisCacheStore,
} from './cache-store.js';
export {
  REDIS_RATE_LIMITER_DESCRIPTOR,
  type RedisClientLike,
  RedisRateLimiter,
  type RedisRateLimiterEvent,
  type RedisRateLimiterOptions,
  RedisTimeoutError,
  redisRateLimiter,
} from './rate-limiter.js';
export {
  REDIS_BULKHEAD_DESCRIPTOR,
  type RedisBulkheadEvent,
  type RedisBulkheadOptions,
  RedisBulkheadPolicy,
  redisBulkhead,
} from './redis-bulkhead.js';
export {
  REDIS_SEMAPHORE_DESCRIPTOR,
  type RedisPermit,
  RedisSemaphore,
  type RedisSemaphoreClient,
  type RedisSemaphoreOptions,
  redisSemaphore,
} from './semaphore.js';
export {
  type AggregateOptions,
  type SharedBreakerClient,
  type SharedBreakerSubscriber,
  type SharedCircuitBreakerEvent,
  type SharedCircuitBreakerOptions,
  SharedCircuitBreakerPolicy,
  type SharedCircuitState,
  sharedCircuitBreaker,
} from './shared-breaker.js';
