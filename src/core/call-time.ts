/**
 * One clock read per execution, shared. A pipeline that times its executions reads its clock
 * once when an execution starts and publishes that time here for as long as the execution's
 * synchronous first pass runs (every policy's admission, up to the first `await`). A policy
 * that needs "now" at admission (a timeout's deadline, a breaker's slow-call start) calls
 * `nowOf(clock)`: the published time when it was read from the same clock, else a fresh read.
 * Anything that runs later (a retry's next attempt, a call leaving a queue) finds nothing
 * published and reads its clock. @internal
 */

import type { Clock } from './clock.js';

/** The time published by the pipeline whose first pass is running, or clock null. @internal */
export const callTime: { clock: Clock | null; ms: number } = { clock: null, ms: 0 };

/** `clock.now()`, or the time the running pipeline already read from `clock`. @internal */
export function nowOf(clock: Clock): number {
  return callTime.clock === clock ? callTime.ms : clock.now();
}
