/**
 * Small fake components implementing the `Component` contract, for the metrics tests: a
 * breaker-like one with states, a limiter-like one with gauges, a pipeline-like one with a
 * duration histogram. They prove the exporters generic (nothing in src/metrics knows them).
 */

import type {
  Component,
  ComponentDescriptor,
  ComponentEvent,
  HistogramSnapshot,
  Snapshot,
} from '../src/core/component.js';
import { type Disposer, Emitter, type Listener } from '../src/core/events.js';

/** A component whose figures the test sets directly. */
export class FakeComponent implements Component {
  state: string;
  readonly gauges: Record<string, number> = {};
  readonly counters: Record<string, number> = {};
  histograms: Record<string, HistogramSnapshot> | undefined;
  private readonly events = new Emitter<ComponentEvent>();

  constructor(
    readonly descriptor: ComponentDescriptor,
    readonly name: string,
  ) {
    this.state = descriptor.states[0]!;
    for (const g of Object.keys(descriptor.gauges)) this.gauges[g] = 0;
    for (const c of Object.keys(descriptor.counters)) this.counters[c] = 0;
  }

  get kind(): string {
    return this.descriptor.kind;
  }

  snapshot(): Snapshot {
    return {
      kind: this.kind,
      name: this.name,
      state: this.state,
      gauges: { ...this.gauges },
      counters: { ...this.counters },
      ...(this.histograms === undefined ? {} : { histograms: this.histograms }),
    };
  }

  onEvent(listener: Listener<ComponentEvent>): Disposer {
    return this.events.on(listener);
  }

  /** Moves to `to`, emitting `stateChange` as every component does. */
  setState(to: string): void {
    const from = this.state;
    this.state = to;
    this.events.emit({ kind: this.kind, name: this.name, event: 'stateChange', from, to } as ComponentEvent);
  }

  /** Emits any event. */
  emit(event: string, fields: Record<string, unknown> = {}): void {
    this.events.emit({ kind: this.kind, name: this.name, event, ...fields } as ComponentEvent);
  }
}

export const FAKE_BREAKER: ComponentDescriptor = {
  kind: 'fakeBreaker',
  help: 'A breaker-like fake.',
  states: ['closed', 'open', 'half-open'],
  gauges: {},
  counters: {
    successes: 'Calls that succeeded.',
    failures: 'Calls that failed.',
    rejections: 'Calls refused while open.',
  },
};

export const FAKE_LIMITER: ComponentDescriptor = {
  kind: 'fakeLimiter',
  help: 'A limiter-like fake.',
  states: ['idle', 'busy', 'full'],
  gauges: { inFlight: 'Calls running now.', queued: 'Calls waiting.', limit: 'The concurrency limit.' },
  counters: { rejections: 'Calls refused when full.' },
};

export const FAKE_PIPELINE: ComponentDescriptor = {
  kind: 'fakePipeline',
  help: 'A pipeline-like fake with a duration histogram.',
  states: ['idle', 'busy'],
  gauges: { inFlight: 'Calls running now.' },
  counters: {
    successes: 'Calls that succeeded.',
    failures: 'Calls that failed.',
    rejections: 'Calls refused.',
    timeouts: 'Calls timed out.',
  },
  histograms: { durationSeconds: 'Duration of calls, seconds.' },
};

/** A histogram of `values` (seconds) over `bounds`. */
export function histogramOf(bounds: readonly number[], values: readonly number[]): HistogramSnapshot {
  const counts = new Array<number>(bounds.length + 1).fill(0);
  let sum = 0;
  for (const v of values) {
    let i = 0;
    while (i < bounds.length && v > bounds[i]!) i++;
    counts[i]!++;
    sum += v;
  }
  return { bounds, counts, sum, count: values.length };
}
