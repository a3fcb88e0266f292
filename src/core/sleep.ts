/**
 * An abortable delay on an injected clock. @internal
 */

import type { Clock, TimerHandle } from './clock.js';
import type { ExecutionContext } from './context.js';

/**
 * Resolves after `ms`, or rejects with the abort reason as soon as `ctx` is aborted
 * (leaving no listener and no timer behind either way).
 */
export function sleep(clock: Clock, ms: number, ctx: ExecutionContext): Promise<void> {
  if (ctx._isAborted) return Promise.reject(ctx._abortReason);
  const source = ctx._abortSource();
  return new Promise<void>((resolve, reject) => {
    let timer: TimerHandle | null = null;
    const onAbort = () => {
      if (timer !== null) clock.clearTimeout(timer);
      timer = null;
      reject(source!.reason);
    };
    timer = clock.setTimeout(() => {
      timer = null;
      if (source !== null) source.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    if (source !== null) source.addEventListener('abort', onAbort, { once: true });
  });
}
