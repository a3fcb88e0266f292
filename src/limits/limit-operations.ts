/**
 * What an operator can change at run time on the load shedder and the adaptive concurrency
 * limit, through the control plane (the bulkhead and the rate limit describe theirs beside their
 * setters). Each change takes effect on the next call and is answered with the settings before
 * and after (the control plane audits it with the reason given).
 */

import type { ComponentOperation } from '../core/component.js';
import { s } from '../core/schema.js';
import { settingsOperation } from '../core/settings-operation.js';
import type { ShedLevel } from './shed.js';

/** The controls of a load shedder the operations use. @internal */
export interface ShedderControls {
  setCapacity(capacity: number): void;
  setLevel(level: ShedLevel): void;
  setEnabled(on: boolean): void;
}

const LEVELS = ['normal', 'limited', 'critical-only', 'offline'] as const;

/**
 * The operations of a load shedder: `setLimits` (capacity), `setLevel`, `setEnabled`.
 *
 * @example
 * ```ts
 * import { loadShedder } from 'bulwark';
 * console.log(loadShedder({ capacity: 10 }).operations().map((o) => o.name)); // [ 'setLimits', 'setLevel', 'setEnabled' ]
 * ```
 */
export function shedderOperations(
  shedder: ShedderControls,
  read: () => Record<string, unknown>,
): readonly ComponentOperation[] {
  return [
    settingsOperation<{ capacity?: number }>({
      name: 'setLimits',
      summary: 'Change the capacity (executions in flight at full pressure) for the next calls',
      input: s.object({ capacity: s.optional(s.int({ min: 1, max: 10_000_000 })) }),
      read,
      apply: (i) => {
        if (i.capacity !== undefined) shedder.setCapacity(i.capacity);
      },
    }),
    // Deliberate repetition: rows of data, one settings operation each (name, summary, input, apply).
    settingsOperation<{ level?: ShedLevel }>({
      name: 'setLevel',
      summary: 'Set the degradation level: normal, limited, critical-only or offline',
      input: s.object({ level: s.optional(s.oneOf(LEVELS)) }),
      read,
      apply: (i) => {
        if (i.level !== undefined) shedder.setLevel(i.level);
      },
    }),
    // Deliberate repetition: rows of data, one settings operation each (name, summary, input, apply).
    settingsOperation<{ enabled?: boolean }>({
      name: 'setEnabled',
      summary: 'Switch shedding on or off (off: every call passes)',
      input: s.object({ enabled: s.optional(s.boolean()) }),
      read,
      apply: (i) => {
        if (i.enabled !== undefined) shedder.setEnabled(i.enabled);
      },
    }),
  ];
}

/** The controls of an adaptive concurrency limit the operations use. @internal */
export interface AdaptiveControls {
  readonly limit: number;
  readonly bounds: { readonly minLimit: number; readonly maxLimit: number };
  setBounds(bounds: { minLimit?: number; maxLimit?: number }): void;
}

/**
 * The operation of an adaptive concurrency limit: `setBounds` (minLimit, maxLimit).
 *
 * @example
 * ```ts
 * import { adaptiveConcurrency } from 'bulwark';
 * console.log(adaptiveConcurrency().operations().map((o) => o.name)); // [ 'setBounds' ]
 * ```
 */
export function adaptiveOperations(limiter: AdaptiveControls): readonly ComponentOperation[] {
  return [
    settingsOperation<{ minLimit?: number; maxLimit?: number }>({
      name: 'setBounds',
      summary: 'Change the bounds the adaptive limit moves within (the limit is brought within them at once)',
      input: s.object({
        minLimit: s.optional(s.int({ min: 1, max: 1_000_000 })),
        maxLimit: s.optional(s.int({ min: 1, max: 1_000_000 })),
      }),
      check: (i, path) => {
        const min = i.minLimit ?? limiter.bounds.minLimit;
        const max = i.maxLimit ?? limiter.bounds.maxLimit;
        if (min > max)
          s.fail(
            i.maxLimit !== undefined ? `${path}.maxLimit` : `${path}.minLimit`,
            `minLimit <= maxLimit (now ${limiter.bounds.minLimit}..${limiter.bounds.maxLimit})`,
            i.maxLimit ?? i.minLimit,
          );
      },
      read: () => ({ ...limiter.bounds, limit: limiter.limit }),
      apply: (i) => limiter.setBounds(i),
    }),
  ];
}
