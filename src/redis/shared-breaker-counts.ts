/**
 * Fleet-wide failure counting of a shared breaker (`aggregate`): an instance adds its outcomes
 * to Redis time buckets once per `flushMs` (not per call); the script that adds them opens the
 * breaker for everyone when the window trips.
 */
import type { Backoff } from '../core/backoff.js';
import type { Outcome } from '../core/breaker/outcome.js';
import { SUCCESS } from '../core/breaker/outcome.js';
import type { Clock, RandomSource } from '../core/clock.js';
import { reportError } from '../core/events.js';
import type { RedisLink } from './redis-link.js';
import type { SharedBreakerConfig } from './shared-breaker-options.js';
import { COUNT_SCRIPT } from './shared-breaker-scripts.js';

/** What a flush found: 1 opened now, 2 already open (with the break left and openCount), else 0. @internal */
export type FlushResult = readonly [
  opened: number,
  ms: number,
  openCount: number,
  calls: number,
  fails: number,
];

/** The counts this instance has not sent yet, and their flush timer. @internal */
export class FleetCounts {
  private successes = 0;
  private failures = 0;
  private timer: ReturnType<Clock['setTimeout']> | null = null;
  private readonly flushBound = () => this.flush();

  constructor(
    private readonly settings: NonNullable<SharedBreakerConfig['aggregate']>,
    private readonly clock: Clock,
    private readonly link: RedisLink,
    /** counts, state, probes, ok. */
    private readonly keys: readonly string[],
    /** channel, extra ttl, instance id. */
    private readonly tail: readonly string[],
    private readonly breakSetting: number | Backoff,
    private readonly random: RandomSource,
    /** False while counting must pause (the breaker is not closed, or closed for good). */
    private readonly counting: () => boolean,
    private readonly onResult: (r: FlushResult) => void,
  ) {}

  /** Adds an outcome (`SUCCESS` or `FAILURE`) to what the next flush sends. */
  add(outcome: Outcome): void {
    if (outcome === SUCCESS) this.successes++;
    else this.failures++;
    if (this.timer === null) {
      const t = this.clock.setTimeout(this.flushBound, this.settings.flushMs);
      t.unref();
      this.timer = t;
    }
  }

  /** Stops the flush timer (counts not sent are dropped). */
  stop(): void {
    if (this.timer !== null) this.clock.clearTimeout(this.timer);
    this.timer = null;
  }

  private flush(): void {
    this.timer = null;
    const a = this.settings;
    const s = this.successes;
    const f = this.failures;
    this.successes = 0;
    this.failures = 0;
    if (s + f === 0 || !this.counting()) return;
    const breakMs = Math.ceil(this.firstBreak());
    const args = [s, f, a.bucketMs, a.buckets, a.minSamples, a.failureRatio, breakMs].map(String);
    this.link.eval(COUNT_SCRIPT, this.keys, [...args, ...this.tail]).then(
      (r) => {
        if (this.counting()) this.onResult((r as unknown[]).map(Number) as unknown as FlushResult);
      },
      () => {},
    );
  }

  /** The first break duration: a fixed `halfOpenAfterMs`, or the backoff's first delay. */
  private firstBreak(): number {
    const b = this.breakSetting;
    if (typeof b === 'number') return b;
    try {
      return b.start(undefined, this.random).next();
    } catch (error) {
      reportError('sharedCircuitBreaker: the halfOpenAfterMs backoff', error);
      return 30_000;
    }
  }
}
