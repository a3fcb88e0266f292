/**
 * What a circuit breaker reports to the telemetry spine: its states and the meaning of each
 * gauge and counter (one frozen descriptor per kind), and the snapshot built from its figures.
 */

import type { ComponentDescriptor, Snapshot } from '../component.js';
import { CIRCUIT_STATES } from './saved-state.js';

const GAUGES = Object.freeze({
  failureRatio: 'Failures / calls in the failure window (the current streak for a consecutive breaker)',
  slowCallRatio: 'Slow calls / calls in the failure window',
  windowCalls: 'Calls counted in the failure window',
  probes: 'Half-open probes running now',
  retryAfterMs: 'Ms until an open breaker admits a probe (0 when not open)',
  isolations: 'Isolation handles held now',
});

const COUNTERS = Object.freeze({
  successes: 'Calls counted as successes',
  failures: 'Calls counted as failures',
  excluded: 'Calls that counted neither way (excluded, cancelled, a predicate threw)',
  slowCalls: 'Calls slower than the slow-call threshold',
  rejections: 'Calls refused because the breaker was open, isolated or its probe slots were taken',
  bypasses: 'Calls let through while open because of their priority',
  opens: 'Times the breaker opened',
  stateChanges: 'State changes',
});

/** The descriptor of `circuitBreaker` components. */
export const CIRCUIT_BREAKER_DESCRIPTOR: ComponentDescriptor = Object.freeze({
  kind: 'circuitBreaker',
  help: 'A circuit breaker: stops calling a dependency that keeps failing',
  category: 'breaker',
  states: CIRCUIT_STATES,
  gauges: GAUGES,
  counters: COUNTERS,
});

/** The descriptor of `sharedCircuitBreaker` components (bulwark/redis). */
export const SHARED_CIRCUIT_BREAKER_DESCRIPTOR: ComponentDescriptor = Object.freeze({
  kind: 'sharedCircuitBreaker',
  help: 'A circuit breaker whose state is shared by every instance through Redis',
  category: 'breaker',
  states: CIRCUIT_STATES,
  gauges: Object.freeze({
    ...GAUGES,
    fallback: '1 while Redis fails and this instance decides alone, else 0',
  }),
  counters: Object.freeze({
    ...COUNTERS,
    remoteChanges: 'State changes heard from other instances (pub/sub or the shared key)',
    redisErrors: 'Redis commands that failed or timed out',
  }),
});

// Deliberate repetition: a class of counters starting at 0, as other per-object tallies (the gateway's
// outlier state, the reference model in tests) are: the same shape, other figures.
/** The running totals of a breaker (counters of its snapshot). @internal */
export class BreakerCounters {
  successes = 0;
  failures = 0;
  excluded = 0;
  slowCalls = 0;
  rejections = 0;
  bypasses = 0;
  opens = 0;
  stateChanges = 0;

  toJSON(): Record<string, number> {
    return {
      successes: this.successes,
      failures: this.failures,
      excluded: this.excluded,
      slowCalls: this.slowCalls,
      rejections: this.rejections,
      bypasses: this.bypasses,
      opens: this.opens,
      stateChanges: this.stateChanges,
    };
  }
}

/** The figures a snapshot is made of. @internal */
export interface BreakerFigures {
  readonly kind: string;
  readonly name: string;
  readonly state: string;
  readonly calls: number;
  readonly failures: number;
  readonly slow: number;
  readonly probes: number;
  readonly retryAfterMs: number;
  readonly isolations: number;
  readonly counters: BreakerCounters;
  readonly details: Record<string, unknown>;
}

/** Builds a breaker's snapshot. @internal */
export function breakerSnapshot(f: BreakerFigures): Snapshot {
  return {
    kind: f.kind,
    name: f.name,
    state: f.state,
    gauges: {
      failureRatio: f.calls === 0 ? 0 : f.failures / f.calls,
      slowCallRatio: f.calls === 0 ? 0 : f.slow / f.calls,
      windowCalls: f.calls,
      probes: f.probes,
      retryAfterMs: f.retryAfterMs,
      isolations: f.isolations,
    },
    counters: f.counters.toJSON(),
    details: f.details,
  };
}
