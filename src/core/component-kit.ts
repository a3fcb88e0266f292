/**
 * What the components of `bulwark/metrics` and `bulwark/health` share: the fields every event
 * carries. @internal
 */

import type { EventBase } from './events.js';

/** The fields of an event that is not about a call (`priority` normal, attempt 0). @internal */
export function eventBase<K extends string>(kind: K, name: string): EventBase & { readonly kind: K } {
  return { kind, name, priority: 'normal', operation: undefined, attempt: 0 };
}

/** A state change, as every component reports it (logs show these at info). @internal */
export interface StateChange<S extends string> {
  readonly event: 'stateChange';
  readonly from: S;
  readonly to: S;
}
