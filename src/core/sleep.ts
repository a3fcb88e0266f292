/**
 * An abortable delay on an injected clock. @internal
 */

import { type Clock, MAX_TIMER_MS, type TimerHandle } from './clock.js';
import type { ExecutionContext } from './context.js';

/** Runs `fn` in a macrotask (after pending I/O and timers get their turn), not on the clock. */
const yieldMacrotask: (fn: () => void) => void =
  typeof setImmediate === 'function' ? (fn) => setImmediate(fn) : (fn) => setTimeout(fn, 0);

/**
 * Resolves after `ms` (any length: longer than Node's ~24.8-day timer limit, or Infinity, the
 * wait is chained), or rejects with the abort reason as soon as `ctx` is aborted (leaving no
 * listener and no timer behind either way). A wait of 0 ms uses no timer but still yields to
 * the event loop (a macrotask), so that timers (an enclosing timeout) and aborts get their turn. Watching the context for aborts
 * creates no AbortController.
 */
export function sleep(clock: Clock, ms: number, ctx: ExecutionContext): Promise<void> {
  if (ctx._isAborted) return Promise.reject(ctx._abortReason);
  return new Promise<void>((resolve, reject) => {
    const watching = ctx._canAbort;
    let timer: TimerHandle | null = null;
    let done = false;
    const onAbort = () => {
      if (done) return;
      done = true;
      if (timer !== null) clock.clearTimeout(timer);
      timer = null;
      reject(ctx._abortReason);
    };
    const finish = () => {
      if (done) return;
      done = true;
      if (watching) ctx._unwatch(onAbort);
      if (ctx._isAborted) reject(ctx._abortReason);
      else resolve();
    };
    if (watching) {
      ctx._watch(onAbort); // may abort at once (an enclosing context already aborted)
      if (done) return;
    }
    if (!(ms > 0)) {
      yieldMacrotask(finish);
      return;
    }
    let remaining = ms;
    const arm = () => {
      const step = remaining > MAX_TIMER_MS ? MAX_TIMER_MS : remaining;
      remaining -= step;
      timer = clock.setTimeout(() => {
        timer = null;
        if (remaining > 0) arm();
        else finish();
      }, step);
    };
    arm();
  });
}
