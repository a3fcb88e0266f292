/**
 * What an operator can do to a breaker through the control plane: isolate it (and release that
 * isolation), force it open, disable it, reset it. Shared by the in-process and the Redis-shared
 * breaker, which expose the same controls.
 */
import type { ComponentOperation } from '../component.js';
import { s } from '../schema.js';
import type { IsolationHandle } from './isolation.js';

/** The manual controls both breakers have. */
export interface BreakerControls {
  isolate(): IsolationHandle;
  forceOpen(): void | Promise<void>;
  disable(): void | Promise<void>;
  reset(): void | Promise<void>;
}

/** The isolation each breaker holds on the control plane's behalf (one per breaker). */
const held = new WeakMap<BreakerControls, IsolationHandle>();
const NONE = s.object({});

/**
 * The operations of a breaker: `isolate`, `release`, `forceOpen`, `disable`, `reset`.
 *
 * @example
 * ```ts
 * import { circuitBreaker } from 'bulwark';
 * const breaker = circuitBreaker({ name: 'payments' });
 * console.log(breaker.operations().map((o) => o.name)); // [ 'isolate', 'release', 'forceOpen', 'disable', 'reset' ]
 * ```
 */
export function breakerOperations(b: BreakerControls): readonly ComponentOperation[] {
  const action = (name: string, summary: string, run: () => unknown): ComponentOperation => ({
    name,
    type: 'action',
    summary,
    input: NONE,
    run: async () => {
      await run();
      return { ok: true };
    },
  });
  return [
    action(
      'isolate',
      'Refuse every call until this isolation is released (other isolations are kept)',
      () => {
        if (!held.has(b)) held.set(b, b.isolate());
      },
    ),
    action('release', "Release the control plane's isolation", () => {
      held.get(b)?.release();
      held.delete(b);
    }),
    action('forceOpen', 'Open the breaker until reset, whatever the outcomes', () => b.forceOpen()),
    action('disable', 'Let every call through and record nothing until reset', () => b.disable()),
    action('reset', 'Close the breaker and forget its window (also ends forceOpen and disable)', () => {
      held.delete(b);
      return b.reset();
    }),
  ];
}
