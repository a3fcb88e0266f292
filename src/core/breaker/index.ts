/** The circuit breaker: state machine, failure windows, options, saved state, telemetry. */

export {
  CircuitBreakerPolicy,
  type CircuitBreakerStats,
  circuitBreaker,
} from './circuit-breaker.js';
export { CIRCUIT_BREAKER_DESCRIPTOR, SHARED_CIRCUIT_BREAKER_DESCRIPTOR } from './descriptor.js';
export type { IsolationHandle } from './isolation.js';
export type {
  BreakerOptions,
  CircuitBreakerOptions,
  ConsecutiveBreakerOptions,
  CountBreakerOptions,
  SlowCallOptions,
  TimeBreakerOptions,
} from './options.js';
export type { CircuitState, SavedCircuitState } from './saved-state.js';
export type { WindowFigures } from './windows.js';
