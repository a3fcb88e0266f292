/** The circuit breaker: state machine, failure windows, options, saved state, telemetry. */

export {
  type CircuitBreakerStats,
  CircuitBreakerPolicy,
  circuitBreaker,
  type IsolationHandle,
} from './circuit-breaker.js';
export { CIRCUIT_BREAKER_DESCRIPTOR, SHARED_CIRCUIT_BREAKER_DESCRIPTOR } from './descriptor.js';
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
