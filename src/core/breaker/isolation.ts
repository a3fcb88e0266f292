/** The handle `isolate()` returns (reference-counted isolation of a breaker). */

import { disposeSymbol } from '../events.js';

/** A handle returned by `isolate()`: release it to let calls through again. */
export interface IsolationHandle {
  /** Releases this isolation (idempotent). The breaker closes when the last one is released. */
  release(): void;
  dispose(): void;
  [Symbol.dispose](): void;
}

/** Wraps an (idempotent) `release` as an isolation handle (also `using`-disposable). @internal */
export function isolationHandle(release: () => void): IsolationHandle {
  return { release, dispose: release, [disposeSymbol]: release } as IsolationHandle;
}
