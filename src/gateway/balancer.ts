/**
 * Load-balancing strategies over an upstream group's endpoints. Pure: each picks from the
 * endpoints it is given (the group filters out ejected, open-breaker and unhealthy ones first,
 * and handles panic mode), with injected randomness.
 *
 * - `round-robin`: in turn.
 * - `weighted`: nginx's smooth weighted round-robin (a weight-5 endpoint is not picked 5 times in a row).
 * - `least-request`: power of two choices on in-flight requests (Envoy's default P2C).
 * - `least-latency`: power of two choices on peak EWMA latency × (in-flight + 1) (Finagle).
 * - `priority`: tiers by `priority` with Envoy's overprovisioning factor (1.4); inside a tier, round-robin.
 * @module
 */

import type { RandomSource } from '../core/clock.js';

/** What a strategy reads of an endpoint. */
export interface Pickable {
  readonly weight: number;
  readonly priority: number;
  /** Requests in flight now. */
  readonly inFlight: number;
  /** Peak-EWMA latency estimate in ms (0 when unknown). */
  readonly latencyMs: number;
  /** Smooth weighted round-robin state. @internal */
  currentWeight: number;
}

/** A strategy: picks one of `candidates` (non-empty). */
export interface Strategy<E extends Pickable> {
  pick(candidates: readonly E[], all: readonly E[], healthy: (e: E) => boolean): E;
}

class RoundRobin<E extends Pickable> implements Strategy<E> {
  private next = 0;
  pick(candidates: readonly E[]): E {
    const e = candidates[this.next % candidates.length]!;
    this.next = (this.next + 1) % 1_000_000_007;
    return e;
  }
}

class SmoothWeighted<E extends Pickable> implements Strategy<E> {
  pick(candidates: readonly E[]): E {
    let total = 0;
    let best: E = candidates[0]!;
    for (const c of candidates) {
      c.currentWeight += c.weight;
      total += c.weight;
      if (c.currentWeight > best.currentWeight) best = c;
    }
    best.currentWeight -= total;
    return best;
  }
}

class TwoChoices<E extends Pickable> implements Strategy<E> {
  constructor(
    private readonly random: RandomSource,
    private readonly cost: (e: E) => number,
  ) {}
  pick(candidates: readonly E[]): E {
    const n = candidates.length;
    if (n === 1) return candidates[0]!;
    const i = Math.floor(this.random() * n) % n;
    let j = Math.floor(this.random() * (n - 1)) % (n - 1);
    if (j >= i) j++;
    const a = candidates[i]!;
    const b = candidates[j]!;
    const ca = this.cost(a) / a.weight;
    const cb = this.cost(b) / b.weight;
    return cb < ca ? b : a;
  }
}

/**
 * Envoy's priority load: tier i takes min(1, healthy_i / total_i × overprovisioning) of what the
 * tiers before it left. Candidates are the healthy endpoints given; `all` is the whole group.
 */
class PriorityTiers<E extends Pickable> implements Strategy<E> {
  private readonly inner = new RoundRobin<E>();
  constructor(
    private readonly random: RandomSource,
    private readonly overprovisioning: number,
  ) {}
  pick(candidates: readonly E[], all: readonly E[], healthy: (e: E) => boolean): E {
    const tiers = new Map<number, { total: number; up: E[] }>();
    for (const e of all) {
      let t = tiers.get(e.priority);
      if (t === undefined) {
        t = { total: 0, up: [] };
        tiers.set(e.priority, t);
      }
      t.total++;
    }
    for (const e of candidates) tiers.get(e.priority)?.up.push(e);
    const order = [...tiers.keys()].sort((a, b) => a - b);
    let left = 1;
    const loads: [E[], number][] = [];
    for (const p of order) {
      const t = tiers.get(p)!;
      const upCount = t.up.filter(healthy).length;
      const h = Math.min(1, (upCount / t.total) * this.overprovisioning);
      const share = Math.min(left, h);
      if (share > 0 && t.up.length > 0) loads.push([t.up, share]);
      left -= share;
      if (left <= 0) break;
    }
    if (loads.length === 0) return this.inner.pick(candidates);
    const sum = loads.reduce((a, [, s]) => a + s, 0);
    let r = this.random() * sum;
    for (const [tier, share] of loads) {
      if (r < share) return this.inner.pick(tier);
      r -= share;
    }
    return this.inner.pick(loads[loads.length - 1]![0]);
  }
}

/** The strategy names of `upstreams.<name>.strategy`. */
export type StrategyName = 'priority' | 'round-robin' | 'weighted' | 'least-request' | 'least-latency';

/**
 * Makes a strategy.
 *
 * @example
 * ```ts
 * import { makeStrategy } from 'bulwark/gateway';
 * const a = { weight: 1, priority: 0, inFlight: 3, latencyMs: 0, currentWeight: 0 };
 * const b = { weight: 1, priority: 0, inFlight: 0, latencyMs: 0, currentWeight: 0 };
 * makeStrategy('least-request', Math.random).pick([a, b], [a, b], () => true) === b; // true
 * ```
 */
export function makeStrategy<E extends Pickable>(
  name: StrategyName,
  random: RandomSource,
  overprovisioning = 1.4,
): Strategy<E> {
  switch (name) {
    case 'priority':
      return new PriorityTiers<E>(random, overprovisioning);
    case 'weighted':
      return new SmoothWeighted<E>();
    case 'least-request':
      return new TwoChoices<E>(random, (e) => e.inFlight);
    case 'least-latency':
      return new TwoChoices<E>(random, (e) => (e.latencyMs + 1) * (e.inFlight + 1));
    default:
      return new RoundRobin<E>();
  }
}

/**
 * Peak EWMA of latencies (Finagle): a sample above the estimate replaces it at once (peaks are
 * believed), lower samples decay it with time constant `tauMs`.
 *
 * @example
 * ```ts
 * import { PeakEwma } from 'bulwark/gateway';
 * const e = new PeakEwma(10_000);
 * e.observe(50, 0); e.observe(10, 1_000);
 * console.log(Math.round(e.value)); // 46
 * ```
 */
export class PeakEwma {
  value = 0;
  private at = -1;
  constructor(private readonly tauMs: number) {}
  observe(ms: number, now: number): void {
    if (this.at < 0 || ms > this.value) {
      this.value = ms;
    } else {
      const w = Math.exp(-(now - this.at) / this.tauMs);
      this.value = this.value * w + ms * (1 - w);
    }
    this.at = now;
  }
}
