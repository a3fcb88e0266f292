/**
 * Backoffs: how long to wait before retry number n. Used by retry (delays between
 * attempts) and by the circuit breaker (a break duration that grows with repeated opens).
 *
 * A backoff is immutable and shared; `start()` makes the per-execution sequence, and is only
 * called when a first retry (or a first open) actually happens.
 */

import type { RandomSource } from './clock.js';
import type { Context } from './context.js';
import { ConfigError } from './errors.js';
import { checkEnum, checkKeys, checkObject, type Dynamic, DynamicNumber, rules } from './options.js';

/** Jitter applied to a backoff's delays. See docs/policies.md for the formulas. */
export type Jitter = 'none' | 'full' | 'equal' | 'decorrelated' | 'decorrelated-v2';

/** The delays of one execution: call `next()` before each retry. */
export interface BackoffSequence {
  /** The delay before the next retry, in ms: always >= 0 and <= the backoff's `max`. */
  next(): number;
}

/**
 * A backoff strategy.
 *
 * @example
 * ```ts
 * import { backoff } from 'bulwark';
 * const b = backoff.exponential({ initialMs: 100, maxMs: 5_000, jitter: 'full' });
 * const seq = b.start(undefined, Math.random);
 * seq.next(); // a delay in [0, 100]
 * ```
 */
export interface Backoff {
  /** Starts the sequence of delays of one execution. */
  start(ctx: Context | undefined, random: RandomSource): BackoffSequence;
}

const NO_CTX = {
  signal: undefined,
  attempt: 1,
  priority: 'normal',
  name: undefined,
  props: {},
} as unknown as Context;

function clamp(v: number, max: number): number {
  if (!(v > 0)) return 0; // also maps NaN to 0
  return v > max ? max : v;
}

/** Applies full or equal jitter to `v`. */
function jitterOf(kind: Jitter, v: number, random: RandomSource): number {
  if (kind === 'full') return random() * v;
  if (kind === 'equal') return v / 2 + (random() * v) / 2;
  return v;
}

/** Options of `backoff.constant`. */
export interface ConstantBackoffOptions {
  /** Delay in ms. */
  delayMs: Dynamic<number>;
  /** `none` (default), `full` (uniform in [0, delay]) or `equal` (uniform in [delay/2, delay]). */
  jitter?: 'none' | 'full' | 'equal';
}

class ConstantBackoff implements Backoff {
  private readonly delay: DynamicNumber;
  private readonly jitter: Jitter;
  // Deliberate repetition: each backoff validates its own option names the same way (checkKeys, then
  // DynamicNumber.of per option): the shape of option validation, not shared logic.
  constructor(options: ConstantBackoffOptions) {
    checkKeys('backoff.constant', options as unknown as Record<string, unknown>, ['delayMs', 'jitter']);
    if (options.delayMs === undefined) {
      throw new ConfigError(
        'backoff.constant.delayMs',
        'a finite number >= 0 (the delay is required)',
        undefined,
      );
    }
    this.delay = DynamicNumber.of('backoff.constant.delayMs', options.delayMs, rules.finite(0), 0);
    this.jitter = checkEnum('backoff.constant.jitter', options.jitter, ['none', 'full', 'equal'], 'none');
  }
  start(ctx: Context | undefined, random: RandomSource): BackoffSequence {
    const d = this.delay.get(ctx ?? NO_CTX);
    const jitter = this.jitter;
    return { next: () => clamp(jitterOf(jitter, d, random), d) };
  }
}

/** Options of `backoff.linear`. */
export interface LinearBackoffOptions {
  /** First delay in ms. Default 100. */
  initialMs?: Dynamic<number>;
  /** Added per retry, in ms. Default: `initialMs`. */
  stepMs?: Dynamic<number>;
  /** Largest delay in ms. Default 30 000. */
  maxMs?: Dynamic<number>;
  /** `none` (default), `full` or `equal`. */
  jitter?: 'none' | 'full' | 'equal';
}

class LinearBackoff implements Backoff {
  private readonly initial: DynamicNumber;
  private readonly step: DynamicNumber | null;
  private readonly max: DynamicNumber;
  private readonly jitter: Jitter;
  // Deliberate repetition: each backoff validates its own option names the same way (checkKeys, then
  // DynamicNumber.of per option): the shape of option validation, not shared logic.
  constructor(options: LinearBackoffOptions) {
    checkKeys('backoff.linear', options as Record<string, unknown>, [
      'initialMs',
      'stepMs',
      'maxMs',
      'jitter',
    ]);
    this.initial = DynamicNumber.of('backoff.linear.initialMs', options.initialMs, rules.finite(0), 100);
    this.step =
      options.stepMs === undefined
        ? null
        : DynamicNumber.of('backoff.linear.stepMs', options.stepMs, rules.finite(0), 0);
    this.max = DynamicNumber.of('backoff.linear.maxMs', options.maxMs, rules.atLeast(0), 30_000);
    this.jitter = checkEnum('backoff.linear.jitter', options.jitter, ['none', 'full', 'equal'], 'none');
  }
  start(ctx: Context | undefined, random: RandomSource): BackoffSequence {
    const c = ctx ?? NO_CTX;
    const initial = this.initial.get(c);
    const step = this.step === null ? initial : this.step.get(c);
    const max = this.max.get(c);
    const jitter = this.jitter;
    let n = 0;
    return {
      next: () => {
        const v = Math.min(max, initial + step * n++);
        return clamp(jitterOf(jitter, v, random), max);
      },
    };
  }
}

/** Options of `backoff.exponential`. */
export interface ExponentialBackoffOptions {
  /** First delay in ms (the AWS formulas' `base`). Default 100. */
  initialMs?: Dynamic<number>;
  /** Largest delay in ms (the `cap`). Default 30 000. */
  maxMs?: Dynamic<number>;
  /** Growth factor per retry. Default 2. */
  factor?: Dynamic<number>;
  /**
   * Jitter. Default `full`: uniform in [0, min(max, initial·factor^n)], which does the least
   * total work under contention. `decorrelated-v2` (Polly's V2) spreads retries smoothly
   * around an exponential median with no spike; like any capped exponential, it sits at `max`
   * once its growth passes it. Plain `decorrelated` (AWS) has the clamping defect: its clamped
   * delay feeds the next draw, so once at `max` about 2/3 of its next delays are exactly `max`
   * again (clients re-synchronise there) while the rest scatter back towards `initial`.
   */
  jitter?: Jitter;
}

const V2_P_FACTOR = 4.0;
const V2_RP_SCALING = 1 / 1.4;

class ExponentialBackoff implements Backoff {
  private readonly initial: DynamicNumber;
  private readonly max: DynamicNumber;
  private readonly factor: DynamicNumber;
  private readonly jitter: Jitter;
  // Deliberate repetition: each backoff validates its own option names the same way (checkKeys, then
  // DynamicNumber.of per option): the shape of option validation, not shared logic.
  constructor(options: ExponentialBackoffOptions) {
    checkKeys('backoff.exponential', options as Record<string, unknown>, [
      'initialMs',
      'maxMs',
      'factor',
      'jitter',
    ]);
    this.initial = DynamicNumber.of('backoff.exponential.initialMs', options.initialMs, rules.finite(0), 100);
    this.max = DynamicNumber.of('backoff.exponential.maxMs', options.maxMs, rules.atLeast(0), 30_000);
    this.factor = DynamicNumber.of('backoff.exponential.factor', options.factor, rules.finite(1), 2);
    this.jitter = checkEnum(
      'backoff.exponential.jitter',
      options.jitter,
      ['none', 'full', 'equal', 'decorrelated', 'decorrelated-v2'],
      'full',
    );
  }
  start(ctx: Context | undefined, random: RandomSource): BackoffSequence {
    const c = ctx ?? NO_CTX;
    const initial = this.initial.get(c);
    const max = this.max.get(c);
    const factor = this.factor.get(c);
    const jitter = this.jitter;
    let n = 0;
    if (jitter === 'decorrelated') {
      // AWS "decorrelated jitter": sleep = min(cap, U(base, 3·sleep)). Known to pile up at the cap.
      let sleep = initial;
      return {
        next: () => {
          sleep = Math.min(max, initial + random() * (sleep * 3 - initial));
          return clamp(sleep, max);
        },
      };
    }
    if (jitter === 'decorrelated-v2') {
      // Polly's DecorrelatedJitterBackoffV2: t = n + U(0,1); f(t) = factor^t · tanh(√(4t));
      // delay = (f(t) − f(t_prev)) / 1.4 · initial, capped at max.
      let prev = 0;
      return {
        next: () => {
          const t = n++ + random();
          const f = factor ** t * Math.tanh(Math.sqrt(V2_P_FACTOR * t));
          if (!Number.isFinite(f)) {
            prev = f;
            return max;
          }
          const d = (f - prev) * V2_RP_SCALING * initial;
          prev = f;
          return clamp(d, max);
        },
      };
    }
    return {
      next: () => {
        const v = Math.min(max, initial * factor ** n++);
        return clamp(jitterOf(jitter, v, random), max);
      },
    };
  }
}

class DelegateBackoff implements Backoff {
  constructor(private readonly fn: (retry: number, ctx: Context | undefined) => number) {}
  start(ctx: Context | undefined): BackoffSequence {
    let n = 0;
    const fn = this.fn;
    return {
      next: () => {
        const v = fn(++n, ctx);
        if (typeof v !== 'number' || !(v >= 0))
          throw new ConfigError('backoff.delegate(retry)', 'a number >= 0', v);
        return v;
      },
    };
  }
}

/**
 * Backoff builders.
 *
 * @example
 * ```ts
 * import { backoff, retry } from 'bulwark';
 * retry({ backoff: backoff.constant(250) });
 * retry({ backoff: backoff.linear({ initialMs: 100, stepMs: 100, maxMs: 1_000 }) });
 * retry({ backoff: backoff.exponential({ initialMs: 100, maxMs: 5_000, jitter: 'full' }) });
 * retry({ backoff: backoff.exponential({ initialMs: (ctx) => (ctx.priority === 'critical' ? 50 : 500) }) });
 * ```
 */
export const backoff = {
  /** The same delay every time: `backoff.constant(250)` or `backoff.constant({ delayMs, jitter })`. */
  constant(options: Dynamic<number> | ConstantBackoffOptions): Backoff {
    if (typeof options === 'number' || typeof options === 'function')
      return new ConstantBackoff({ delayMs: options });
    return new ConstantBackoff(checkObject('backoff.constant', options) as unknown as ConstantBackoffOptions);
  },
  /** initialMs, initialMs + stepMs, initialMs + 2·stepMs, … up to maxMs. */
  linear(options: LinearBackoffOptions = {}): Backoff {
    return new LinearBackoff(checkObject('backoff.linear', options) as LinearBackoffOptions);
  },
  /** initialMs·factor^n up to maxMs, with jitter (default `full`). */
  exponential(options: ExponentialBackoffOptions = {}): Backoff {
    return new ExponentialBackoff(checkObject('backoff.exponential', options) as ExponentialBackoffOptions);
  },
  /** Your own function of the retry number (1-based) and the context. */
  delegate(fn: (retry: number, ctx: Context | undefined) => number): Backoff {
    if (typeof fn !== 'function')
      throw new ConfigError('backoff.delegate', 'a function (retry, ctx) => ms', fn);
    return new DelegateBackoff(fn);
  },
};

/** True when `value` is a Backoff (has `start`). @internal */
export function isBackoff(value: unknown): value is Backoff {
  return typeof value === 'object' && value !== null && typeof (value as Backoff).start === 'function';
}
