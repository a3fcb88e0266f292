/**
 * A hybrid logical clock (Kulkarni, Demirbas et al. 2014): stamps that follow the wall clock,
 * never go backwards (even when the wall clock jumps back), order causally related events, and
 * stay within `maxDriftMs` of the wall clock. Stamps are strings that sort in time order:
 * `<ms: 12 hex>-<counter: 4 hex>-<node>`; last-writer-wins compares them as strings.
 * @module
 */

import { type Clock, systemClock } from '../core/clock.js';
import type { Component, ComponentDescriptor, Snapshot } from '../core/component.js';
import { type Disposer, type Listener, PolicyEmitter } from '../core/events.js';
import type { Registry } from '../core/registry.js';
import { joinRegistry } from '../core/registry.js';
import { s } from '../core/schema.js';
import { BulwarkSyncError, ClockDriftError } from './errors.js';
import { eventBase, type HybridClockEvent } from './events.js';

/** The parts of a stamp. */
export interface HlcParts {
  /** Logical wall-clock part, ms since the epoch. */
  readonly ms: number;
  /** Counter within one `ms` (0..65535). */
  readonly counter: number;
  /** The node (device or server) that made the stamp. */
  readonly node: string;
}

const MAX_COUNTER = 0xffff;
const STAMP = /^([0-9a-f]{12})-([0-9a-f]{4})-(.+)$/;
const NODE = /^[A-Za-z0-9_.:@-]{1,64}$/;

/**
 * Formats stamp parts as a sortable string.
 *
 * @example
 * ```ts
 * import { formatHlc } from 'bulwark/sync';
 * formatHlc({ ms: 1_700_000_000_000, counter: 1, node: 'phone' }); // '018bcfe56800-0001-phone'
 * ```
 */
export function formatHlc(parts: HlcParts): string {
  return `${parts.ms.toString(16).padStart(12, '0')}-${parts.counter.toString(16).padStart(4, '0')}-${parts.node}`;
}

/**
 * Parses a stamp made by `formatHlc`/`hybridClock`; throws `INVALID_HLC` otherwise.
 *
 * @example
 * ```ts
 * import { parseHlc } from 'bulwark/sync';
 * parseHlc('018bcfe56800-0001-phone'); // { ms: 1700000000000, counter: 1, node: 'phone' }
 * ```
 */
export function parseHlc(text: string): HlcParts {
  const m = typeof text === 'string' ? STAMP.exec(text) : null;
  if (m === null || !NODE.test(m[3]!)) {
    throw new BulwarkSyncError(
      'INVALID_HLC',
      `Not a clock stamp: ${JSON.stringify(text)} (expected <12 hex>-<4 hex>-<node>)`,
    );
  }
  return { ms: Number.parseInt(m[1]!, 16), counter: Number.parseInt(m[2]!, 16), node: m[3]! };
}

/** True when `text` is a well-formed stamp. */
export function isHlc(text: unknown): text is string {
  if (typeof text !== 'string') return false;
  const m = STAMP.exec(text);
  return m !== null && NODE.test(m[3]!);
}

/**
 * Orders two stamps: negative, 0 or positive (by time, then counter, then node).
 *
 * @example
 * ```ts
 * import { compareHlc } from 'bulwark/sync';
 * compareHlc('018bcfe56800-0000-a', '018bcfe56800-0001-a') < 0; // true
 * ```
 */
export function compareHlc(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** Options of `hybridClock()`. */
export interface HybridClockOptions {
  /** This node's id (1-64 of `A-Za-z0-9_.:@-`); a tie between two nodes goes to the larger id. */
  node: string;
  /** Largest allowed lead of a stamp over the wall clock, ms. Default 60 000. */
  maxDriftMs?: number;
  /** The last stamp this node issued before a restart, so stamps stay monotonic across restarts. */
  last?: string;
  /** Source of wall-clock time (`date()`). Default the system clock. */
  clock?: Clock;
  /** Component name. Default: the node id. */
  name?: string;
  /** Registry to join. */
  registry?: Registry;
}

const optionsSchema = s.object({
  node: s.string({ pattern: NODE, patternRule: 'a node id of 1-64 characters A-Za-z0-9_.:@-' }),
  maxDriftMs: s.optional(s.duration({ positive: true }), 60_000),
  last: s.optional(s.custom('a clock stamp', (v, path) => (isHlc(v) ? v : s.fail(path, 'a clock stamp', v)))),
  clock: s.optional(s.unknown()),
  name: s.optional(s.string()),
  registry: s.optional(s.unknown()),
});

// Deliberate repetition: a component descriptor is data (kind, help, category, states, gauges,
// counters); every component writes its own, alike in shape only.
const DESCRIPTOR: ComponentDescriptor = {
  kind: 'hybridClock',
  help: 'A hybrid logical clock: monotonic stamps near the wall clock',
  category: 'sync',
  states: ['ok'],
  gauges: { leadMs: 'How far the last stamp is ahead of the wall clock, ms (0 when behind)' },
  counters: {
    stamps: 'Stamps issued for local events',
    received: 'Remote stamps merged',
    driftRejections: 'Remote stamps refused as too far ahead of the wall clock',
  },
};

/**
 * A hybrid logical clock. `now()` stamps a local event; `receive(stamp)` merges a remote stamp
 * (so the next local stamp orders after it). Both keep the logical time within `maxDriftMs` of
 * the wall clock and throw `ClockDriftError` rather than exceed it. The wall clock is read as the
 * highest value seen so far: when it is stepped back, stamps stay monotonic (they lead the
 * stepped-back clock until it catches up) and the bound still holds against that highest value.
 */
export class HybridClock implements Component {
  // Deliberate repetition: the Component fields every component declares (kind, name, descriptor).
  readonly kind = 'hybridClock';
  readonly name: string;
  readonly descriptor = DESCRIPTOR;
  /** This node's id. */
  readonly node: string;
  readonly maxDriftMs: number;
  private readonly clock: Clock;
  private readonly events = new PolicyEmitter<HybridClockEvent>();
  private l = 0;
  private c = 0;
  /** The highest wall-clock reading so far: the drift bound is measured against it. */
  private wall = 0;
  // Deliberate repetition: zeroed counters, then the options parsed by this component's own schema
  // (the shape every component's constructor has).
  private stamps = 0;
  private received = 0;
  private rejections = 0;

  constructor(options: HybridClockOptions) {
    const o = optionsSchema.parse(options, 'hybridClock');
    this.node = o.node;
    this.maxDriftMs = o.maxDriftMs;
    this.clock = (o.clock as Clock | undefined) ?? systemClock;
    this.name = o.name ?? o.node;
    if (o.last !== undefined) {
      const p = parseHlc(o.last);
      this.l = p.ms;
      this.c = p.counter;
    }
  }

  /** The last stamp issued or merged (serialise it and pass it back as `last` after a restart). */
  get last(): string {
    return formatHlc({ ms: this.l, counter: this.c, node: this.node });
  }

  /**
   * A new stamp for a local event: greater than every stamp issued or received before.
   * Throws `ClockDriftError` when the counter has run so far ahead that the logical time would
   * lead the wall clock by more than `maxDriftMs` (more than 65 536 stamps per ms for that long).
   */
  now(): string {
    const pt = this.read();
    if (pt > this.l) {
      this.l = pt;
      this.c = 0;
    } else if (this.c < MAX_COUNTER) {
      this.c++;
    } else {
      this.check(this.l + 1 - pt, pt);
      this.l++;
      this.c = 0;
    }
    this.stamps++;
    return this.last;
  }

  /**
   * Merges a remote stamp: later local stamps order after it. Throws `ClockDriftError` (and
   * changes nothing) when the stamp leads this node's wall clock by more than `maxDriftMs`;
   * `INVALID_HLC` for text that is not a stamp.
   */
  receive(stamp: string): void {
    const r = parseHlc(stamp);
    const pt = this.read();
    if (r.ms - pt > this.maxDriftMs) this.reject(r.ms - pt);
    const l0 = this.l;
    const l = Math.max(l0, r.ms, pt);
    let c: number;
    if (l === l0 && l === r.ms) c = Math.max(this.c, r.counter) + 1;
    else if (l === l0) c = this.c + 1;
    else if (l === r.ms) c = r.counter + 1;
    else c = 0;
    if (c > MAX_COUNTER) {
      this.check(l + 1 - pt, pt);
      this.l = l + 1;
      this.c = 0;
    } else {
      this.l = l;
      this.c = c;
    }
    this.received++;
  }

  /**
   * The wall clock, never below its highest reading: a clock stepped back (NTP, a user changing
   * the time) neither makes stamps go back nor makes correct remote stamps look like drift.
   */
  private read(): number {
    const pt = this.clock.date();
    if (pt > this.wall) this.wall = pt;
    return this.wall;
  }

  private check(leadMs: number, _pt: number): void {
    if (leadMs > this.maxDriftMs) this.reject(leadMs);
  }

  private reject(driftMs: number): never {
    this.rejections++;
    if (this.events.active) {
      this.events.emit({ ...eventBase('hybridClock', this.name), event: 'driftRejected', driftMs });
    }
    throw new ClockDriftError(driftMs, this.maxDriftMs);
  }

  snapshot(): Snapshot {
    return {
      kind: this.kind,
      name: this.name,
      state: 'ok',
      gauges: { leadMs: Math.max(0, this.l - Math.max(this.wall, this.clock.date())) },
      counters: { stamps: this.stamps, received: this.received, driftRejections: this.rejections },
      details: { node: this.node, maxDriftMs: this.maxDriftMs, last: this.last },
    };
  }

  onEvent(listener: Listener<HybridClockEvent>): Disposer {
    return this.events.on(listener);
  }

  /** The clock's state as JSON: `{ node, last }`. */
  toJSON(): { node: string; last: string } {
    return { node: this.node, last: this.last };
  }
}

/**
 * Makes a hybrid logical clock.
 *
 * @example
 * ```ts
 * import { hybridClock } from 'bulwark/sync';
 * const phone = hybridClock({ node: 'phone', maxDriftMs: 60_000 });
 * const a = phone.now();
 * const b = phone.now();
 * console.log(a < b); // true: stamps sort in the order they were made
 * const restarted = hybridClock({ node: 'phone', last: phone.last }); // monotonic across restarts
 * ```
 */
export function hybridClock(options: HybridClockOptions): HybridClock {
  const clock = new HybridClock(options);
  return joinRegistry(options.registry, clock);
}
