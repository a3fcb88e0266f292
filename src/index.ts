/**
 * Bulwark core: composable resilience policies with zero runtime dependencies.
 *
 * @example
 * ```ts
 * import { pipeline, retry, circuitBreaker, timeout, bulkhead, backoff, handle } from 'bulwark';
 * const policy = pipeline(
 *   timeout(10_000),
 *   retry({ maxAttempts: 4, backoff: backoff.exponential({ initialMs: 100, maxMs: 5_000, jitter: 'full' }), handle: handle.transient() }),
 *   circuitBreaker({ breaker: { kind: 'consecutive', threshold: 5 }, halfOpenAfterMs: 15_000 }),
 *   timeout({ timeoutMs: 2_000, strategy: 'abandon' }),
 *   bulkhead({ limit: 10, queue: 100 }),
 * );
 * ```
 * @module
 */

// In-process chaos
export {
  type BehaviorOptions,
  ChaosBehaviorPolicy,
  type ChaosControl,
  type ChaosEvent,
  ChaosFaultPolicy,
  ChaosLatencyPolicy,
  type ChaosOptions,
  ChaosOutcomePolicy,
  ChaosPolicy,
  type ChaosStats,
  type ChaosStrategy,
  type ChaosWindow,
  chaos,
  type FaultOptions,
  type LatencyOptions,
  type OutcomeOptions,
} from './chaos/chaos.js';
export {
  type Backoff,
  type BackoffSequence,
  backoff,
  type ConstantBackoffOptions,
  type ExponentialBackoffOptions,
  type Jitter,
  type LinearBackoffOptions,
} from './core/backoff.js';
export {
  type BreakerOptions,
  CIRCUIT_BREAKER_DESCRIPTOR,
  type CircuitBreakerOptions,
  CircuitBreakerPolicy,
  type CircuitBreakerStats,
  type CircuitState,
  type ConsecutiveBreakerOptions,
  type CountBreakerOptions,
  circuitBreaker,
  type IsolationHandle,
  type SavedCircuitState,
  type SlowCallOptions,
  type TimeBreakerOptions,
  type WindowFigures,
} from './core/breaker/index.js';
export { type BulkheadOptions, BulkheadPolicy, bulkhead } from './core/bulkhead.js';
export { type Clock, type RandomSource, systemClock, systemRandom, type TimerHandle } from './core/clock.js';
// The telemetry spine: components, snapshots, the registry, one validation path
export {
  type Component,
  type ComponentDescriptor,
  type ComponentEvent,
  type ComponentOperation,
  defineDescriptor,
  type HistogramSnapshot,
  isComponent,
  type OperationContext,
  type OperationRole,
  type Snapshot,
} from './core/component.js';
export type { Context, ExecuteOptions, Operation, Priority } from './core/context.js';
export { readDurations } from './core/durations.js';
// Deliberate repetition: export lists name the public API one by one (they match the tests' import lists by shape).
export {
  BrokenCircuitError,
  BulkheadRejectedError,
  BulwarkError,
  ConfigError,
  isNonRetryable,
  NonRetryableError,
  nonRetryable,
  RejectedError,
  TimeoutError,
} from './core/errors.js';
export {
  type BulkheadEvent,
  type CircuitBreakerEvent,
  type Disposer,
  type EventBase,
  type EventSelection,
  type FallbackEvent,
  type Listener,
  PER_CALL_EVENTS,
  type PipelineEvent,
  type PolicyEvent,
  type PolicyEventMap,
  type RetryEvent,
  type TimeoutEvent,
  telemetry,
} from './core/events.js';
export { type FallbackOptions, type FallbackOutcome, FallbackPolicy, fallback } from './core/fallback.js';
export { type ErrorClass, type ErrorPredicate, Handler, handle } from './core/handle.js';
export { DEFAULT_BUCKETS, Histogram } from './core/histogram.js';
export type { Dynamic } from './core/options.js';
export {
  type AltOf,
  type CommonOptions,
  type EventOf,
  type PipelineOptions,
  PipelinePolicy,
  type Policy,
  pipeline,
} from './core/policy.js';
export {
  createRegistry,
  DuplicateComponentError,
  defaultRegistry,
  type Registry,
  type RegistryChange,
} from './core/registry.js';
export { type RetryOptions, RetryPolicy, retry } from './core/retry.js';
export { parseRetryAfter, retryAfterOf } from './core/retry-after.js';
export { RetryBudget } from './core/retry-budget.js';
export {
  type Infer,
  type JsonSchema,
  type ObjectSchema,
  parseOptions,
  type Schema,
  s,
} from './core/schema.js';
export { type SettingsOperationSpec, settingsOperation } from './core/settings-operation.js';
export { type TimeoutOptions, TimeoutPolicy, timeout } from './core/timeout.js';
export { isResponseLike, isTransient, isTransientResult, isTransientStatus } from './core/transient.js';
export { type CacheEvent, type CacheOptions, CachePolicy, cache } from './latency/cache.js';
export {
  type CacheEntry,
  type CacheStore,
  MemoryCacheStore,
  type MemoryStoreOptions,
  memoryStore,
} from './latency/cache-store.js';
export { type CoalesceEvent, type CoalesceOptions, CoalescePolicy, coalesce } from './latency/coalesce.js';
// Latency and duplicate work: hedging, coalescing, cache
export {
  HedgeCancelledError,
  type HedgeEvent,
  type HedgeOptions,
  HedgePolicy,
  hedge,
  type QuantileDelay,
} from './latency/hedge.js';
export {
  type AdaptiveConcurrencyEvent,
  type AdaptiveConcurrencyOptions,
  AdaptiveConcurrencyPolicy,
  adaptiveConcurrency,
} from './limits/adaptive-concurrency.js';
export {
  AimdLimit,
  type AimdOptions,
  Gradient2Limit,
  type Gradient2Options,
  type LimitAlgorithm,
  VegasLimit,
  type VegasOptions,
  WindowedLimit,
  type WindowOptions,
} from './limits/adaptive-limits.js';
export {
  type AdaptiveTimeoutOptions,
  AdaptiveTimeoutPolicy,
  adaptiveTimeout,
} from './limits/adaptive-timeout.js';
export { QuantileSketch } from './limits/quantile.js';
export {
  type RateLimitEvent,
  RateLimitedError,
  type RateLimitOptions,
  RateLimitPolicy,
  rateLimit,
} from './limits/rate-limit.js';
export { type RateLimitHeaders, rateLimitHeaders } from './limits/rate-limit-headers.js';
// Load control: rate limits and priority load shedding
export {
  type GcraLimit,
  type RateLimitDecision,
  RateLimiter,
  type RateLimiterOptions,
  type RateLimitSpec,
  rateLimiter,
  type TokenBucketLimit,
  type WindowLimit,
} from './limits/rate-limiter.js';
export {
  type RatioBudgetOptions,
  type RatioBudgetStats,
  RatioRetryBudget,
  type RatioTokensBudgetOptions,
  retryBudget,
  type TokenBudgetOptions,
  type TokenBudgetStats,
  TokenRetryBudget,
} from './limits/retry-budget.js';
export {
  type LoadShedderOptions,
  LoadShedderPolicy,
  LoadShedError,
  type LoadShedEvent,
  loadShedder,
  SHED_LEVELS,
  SHED_PRIORITIES,
  type ShedDecision,
  type ShedLevel,
  type ShedPriority,
  type ShedReason,
} from './limits/shed.js';
export {
  type AdaptiveThrottleEvent,
  type AdaptiveThrottleOptions,
  AdaptiveThrottlePolicy,
  adaptiveThrottle,
  ThrottledError,
} from './limits/throttle.js';
