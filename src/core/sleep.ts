/**
 * An abortable delay on an injected clock. @internal
 */

import type { Clock, TimerHandle } from './clock.js';
import type { ExecutionContext } from './context.js';

/** Node's longest timer: a longer one fires after 1 ms (with a TimeoutOverflowWarning). */
const MAX_TIMER_MS = 2_147_483_647;

/**
 * Resolves after `ms` (any length: longer than Node's ~24.8-day timer limit, or Infinity, the
 * wait is chained), or rejects with the abort reason as soon as `ctx` is aborted
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
    let remaining = ms;
    const arm = () => {
      const step = remaining > MAX_TIMER_MS ? MAX_TIMER_MS : remaining;
      remaining -= step;
      timer = clock.setTimeout(() => {
        timer = null;
        if (remaining > 0) return arm();
        if (source !== null) source.removeEventListener('abort', onAbort);
        resolve();
      }, step);
    };
    arm();
    if (source !== null) source.addEventListener('abort', onAbort, { once: true });
  });
}
