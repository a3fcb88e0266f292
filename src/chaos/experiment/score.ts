/**
 * The resilience score: Litmus's weighted probe success over the experiment run.
 * @module
 */

import type { ProbeResult } from './probes.js';

/** The formula, as printed in every report. */
export const SCORE_FORMULA =
  "score = Σ wᵢ·pᵢ / Σ wᵢ, where wᵢ is probe i's weight and pᵢ = 100 if its value was within tolerance over the experiment run, else 0";

/**
 * The weighted probe success, 0–100 (0 with no probe or no weight).
 *
 * @example
 * ```ts
 * import { scoreOf } from 'bulwark/chaos';
 * const probe = (weight: number, passed: boolean) =>
 *   ({ name: 'p', type: 'successRatio', weight, value: 1, tolerance: {}, passed }) as const;
 * console.log(scoreOf([probe(3, true), probe(9, true)]), scoreOf([probe(1, true), probe(3, false)])); // 100 25
 * ```
 */
export function scoreOf(probes: readonly ProbeResult[]): number {
  let weights = 0;
  let sum = 0;
  for (const p of probes) {
    weights += p.weight;
    sum += p.weight * (p.passed ? 100 : 0);
  }
  return weights === 0 ? 0 : Math.round((sum / weights) * 100) / 100;
}
