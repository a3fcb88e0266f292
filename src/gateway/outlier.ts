/**
 * Outlier detection with Envoy's semantics and defaults, as a pure state machine over injected
 * time (the group calls `record` per response and `sweep` every `intervalMs`):
 *
 * - consecutive 5xx (5) and consecutive gateway errors (connect errors, resets, 502/503/504; 5)
 *   eject at once;
 * - success-rate outliers (below mean − 1.9 σ, only with >= 5 endpoints of >= 100 requests in
 *   the interval) eject at the sweep;
 * - an ejection lasts `baseEjectionTimeMs` × the endpoint's ejection count, capped by
 *   `maxEjectionTimeMs`; the count decreases after an interval without ejection;
 * - at most `maxEjectionPercent` of the endpoints are ejected at once, but one can always be.
 *
 * Every ejection keeps its reason and counters, so the admin API can explain it.
 * @module
 */

import type { OutlierConfig } from './config.js';

/** Why an endpoint was ejected. */
export type EjectionReason =
  | 'consecutive5xx'
  | 'consecutiveGatewayErrors'
  | 'successRate'
  | 'activeHealthCheck';

/** The outcome of one response, as outlier detection counts it. */
export type Outcome = 'success' | 'error5xx' | 'gatewayError';

/** Per-endpoint detection state (held by the endpoint). */
// Deliberate repetition: counter fields declared one per line, as the endpoint's and the breaker
// descriptor's are; the names differ in meaning, only the shape repeats.
export class OutlierState {
  consecutive5xx = 0;
  consecutiveGatewayErrors = 0;
  /** Requests and successes in the current interval (success-rate analysis). */
  intervalRequests = 0;
  intervalSuccesses = 0;
  ejections = 0;
  /** Multiplier of the next ejection time. */
  ejectionCount = 0;
  ejectedAt = -1;
  ejectedUntil = -1;
  reason: EjectionReason | null = null;
  /** Counters at the moment of the last ejection (for the admin API). */
  lastEjection: {
    reason: EjectionReason;
    at: number;
    untilMs: number;
    consecutive5xx: number;
    consecutiveGatewayErrors: number;
    successRate?: number;
  } | null = null;

  ejected(now: number): boolean {
    return this.ejectedUntil > now;
  }
}

/** What a detector needs of an endpoint. */
export interface Detectable {
  readonly name: string;
  readonly outlier: OutlierState;
}

/** A change the detector made. */
export interface EjectionChange<E> {
  readonly type: 'ejected' | 'returned';
  readonly endpoint: E;
  readonly reason: EjectionReason | null;
  /** For `ejected`: how long, in ms. */
  readonly durationMs: number;
}

/**
 * The detector of one upstream group.
 *
 * @example
 * ```ts
 * import { OutlierDetector, OutlierState, outlierDefaults } from 'bulwark/gateway';
 * const a = { name: 'a', outlier: new OutlierState() };
 * const b = { name: 'b', outlier: new OutlierState() };
 * const d = new OutlierDetector({ ...outlierDefaults, maxEjectionPercent: 50 }, [a, b]);
 * for (let i = 0; i < 5; i++) d.record(a, 'error5xx', 0);
 * console.log(a.outlier.ejected(1), a.outlier.reason); // true consecutive5xx
 * ```
 */
export class OutlierDetector<E extends Detectable> {
  constructor(
    private readonly config: OutlierConfig,
    private endpoints: readonly E[],
    private readonly onChange: (change: EjectionChange<E>) => void = () => {},
  ) {}

  /** Replaces the endpoint list (a reload). */
  setEndpoints(endpoints: readonly E[]): void {
    this.endpoints = endpoints;
  }

  private ejectedCount(now: number): number {
    let n = 0;
    for (const e of this.endpoints) if (e.outlier.ejected(now)) n++;
    return n;
  }

  private mayEject(now: number): boolean {
    const n = this.ejectedCount(now);
    if (n === 0) return true; // at least one host can always be ejected
    return ((n + 1) / this.endpoints.length) * 100 <= this.config.maxEjectionPercent;
  }

  /** Ejects `e` now (if the cap allows). Returns true when it did. */
  eject(e: E, reason: EjectionReason, now: number, successRate?: number): boolean {
    const o = e.outlier;
    if (o.ejected(now) || !this.mayEject(now)) return false;
    o.ejectionCount++;
    o.ejections++;
    const ms = Math.min(
      this.config.baseEjectionTimeMs * o.ejectionCount,
      Math.max(this.config.maxEjectionTimeMs, this.config.baseEjectionTimeMs),
    );
    o.ejectedAt = now;
    o.ejectedUntil = now + ms;
    o.reason = reason;
    o.lastEjection = {
      reason,
      at: now,
      untilMs: ms,
      consecutive5xx: o.consecutive5xx,
      consecutiveGatewayErrors: o.consecutiveGatewayErrors,
      ...(successRate !== undefined ? { successRate } : {}),
    };
    o.consecutive5xx = 0;
    o.consecutiveGatewayErrors = 0;
    this.onChange({ type: 'ejected', endpoint: e, reason, durationMs: ms });
    return true;
  }

  /** Counts one response of `e`. */
  record(e: E, outcome: Outcome, now: number): void {
    const o = e.outlier;
    o.intervalRequests++;
    if (outcome === 'success') {
      o.intervalSuccesses++;
      o.consecutive5xx = 0;
      o.consecutiveGatewayErrors = 0;
      return;
    }
    o.consecutive5xx++;
    if (outcome === 'gatewayError') o.consecutiveGatewayErrors++;
    else o.consecutiveGatewayErrors = 0;
    const c = this.config;
    if (c.consecutiveGatewayErrors > 0 && o.consecutiveGatewayErrors >= c.consecutiveGatewayErrors) {
      this.eject(e, 'consecutiveGatewayErrors', now);
    } else if (c.consecutive5xx > 0 && o.consecutive5xx >= c.consecutive5xx) {
      this.eject(e, 'consecutive5xx', now);
    }
  }

  /** The interval's work: returns endpoints whose time is up and runs success-rate analysis. */
  sweep(now: number): void {
    for (const e of this.endpoints) {
      const o = e.outlier;
      if (o.reason !== null && !o.ejected(now)) {
        const reason = o.reason;
        o.reason = null;
        this.onChange({ type: 'returned', endpoint: e, reason, durationMs: 0 });
      } else if (o.reason === null && o.ejectionCount > 0 && now - o.ejectedUntil >= this.config.intervalMs) {
        o.ejectionCount--;
      }
    }
    const c = this.config;
    const volume = this.endpoints.filter((e) => e.outlier.intervalRequests >= c.successRateRequestVolume);
    if (volume.length >= c.successRateMinHosts) {
      const rates = volume.map((e) => e.outlier.intervalSuccesses / e.outlier.intervalRequests);
      const mean = rates.reduce((a, b) => a + b, 0) / rates.length;
      const sd = Math.sqrt(rates.reduce((a, r) => a + (r - mean) ** 2, 0) / rates.length);
      const floor = mean - c.successRateStdevFactor * sd;
      volume.forEach((e, i) => {
        if (rates[i]! < floor) this.eject(e, 'successRate', now, rates[i]);
      });
    }
    for (const e of this.endpoints) {
      e.outlier.intervalRequests = 0;
      e.outlier.intervalSuccesses = 0;
    }
  }
}
