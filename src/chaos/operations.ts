/** The control plane's switches for an in-process chaos strategy: enable, disable, set the rate. */
import type { ComponentOperation } from '../core/component.js';
import { s } from '../core/schema.js';
import type { ChaosControl } from './chaos.js';

/**
 * The operations of a chaos strategy.
 *
 * @example
 * ```ts
 * import { chaos } from 'bulwark';
 * const fault = chaos.fault({ error: () => new Error('injected'), rate: 0.1 });
 * console.log(fault.operations().map((o) => o.name)); // [ 'enable', 'disable', 'setRate' ]
 * ```
 */
export function chaosOperations(control: ChaosControl): readonly ComponentOperation[] {
  const none = s.object({});
  return [
    { name: 'enable', type: 'action', summary: 'Start injecting', input: none, run: () => control.enable() },
    {
      name: 'disable',
      type: 'action',
      summary: 'Stop injecting (the policy leaves its pipelines)',
      input: none,
      run: () => control.disable(),
    },
    {
      name: 'setRate',
      type: 'action',
      summary: 'Share of eligible calls to inject into, in [0, 1]',
      input: s.object({ rate: s.ratio({ zero: true }) }),
      run: (i: { rate: number }) => control.setRate(i.rate),
    } as ComponentOperation,
  ];
}
