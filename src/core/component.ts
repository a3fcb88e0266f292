/**
 * The telemetry spine's contract. Every component — each policy and pipeline, limiter,
 * shared breaker, semaphore, queue, worker, health monitor and check, alert manager, SLO —
 * is a `Component`: a kind, a name, typed events (`onEvent`, also on the process-wide bus) and
 * a cheap `snapshot()` of its state and named figures. Metrics, logs, alerts, the control plane
 * and the gateway read components through this interface only, so a new component gets
 * metrics, logs and a dashboard tile by implementing it, with no edit anywhere else.
 */

import type { Disposer, EventSelection, Listener } from './events.js';
import type { Schema } from './schema.js';

/**
 * A cumulative histogram, as kept by a component that times its calls (a pipeline times every
 * execution while something reads its durations, with one clock read shared by its policies). `bounds` are the upper bounds in
 * seconds (ascending, without +Inf); `counts[i]` is the number of observations <= `bounds[i]`
 * that were not counted in an earlier bucket (NOT cumulative); `counts[bounds.length]` is the
 * +Inf bucket.
 */
export interface HistogramSnapshot {
  readonly bounds: readonly number[];
  readonly counts: readonly number[];
  /** Sum of the observations, in seconds. */
  readonly sum: number;
  /** Number of observations (equals the sum of `counts`). */
  readonly count: number;
}

/**
 * A point-in-time view of one component: cheap to read (no I/O, no sorting of large data), safe
 * to serialise as JSON (no key material, no payloads). Counters only grow while the component
 * lives; gauges are current values.
 *
 * Names follow docs/conventions.md: camelCase, units as suffixes (`Ms`, `Bytes`, `Ratio`),
 * `inFlight` for calls running now, `queued` for calls waiting.
 *
 * @example
 * ```ts
 * import { circuitBreaker } from 'bulwark';
 * const breaker = circuitBreaker({ name: 'payments' });
 * const snap = breaker.snapshot();
 * console.log(snap.kind, snap.name, snap.state, snap.counters);
 * ```
 */
export interface Snapshot {
  /** The component kind, e.g. `circuitBreaker`, `durableQueue`. */
  readonly kind: string;
  /** The component's name, unique per kind within a registry. */
  readonly name: string;
  /** A kind-specific state word, one of the descriptor's `states` (e.g. `closed`, `open`). */
  readonly state: string;
  /** Current values, e.g. `{ inFlight: 3, queued: 0, limit: 10 }`. */
  readonly gauges: Readonly<Record<string, number>>;
  /** Monotonic totals since creation, e.g. `{ successes: 120, failures: 4, rejections: 1 }`. */
  readonly counters: Readonly<Record<string, number>>;
  /** Timings kept by the component (e.g. `{ durationSeconds: … }` for a pipeline). */
  readonly histograms?: Readonly<Record<string, HistogramSnapshot>>;
  /**
   * JSON-serialisable details for the control plane (thresholds, settings, the last state
   * change, …). Not exported as metrics.
   */
  readonly details?: Readonly<Record<string, unknown>>;
}

/**
 * What a kind of component reports: its states and the meaning of each gauge, counter and
 * histogram. Exporters use it for metric names and help texts; the dashboard for labels.
 */
export interface ComponentDescriptor {
  /** The kind, e.g. `bulkhead`. */
  readonly kind: string;
  /** One line on what the component is. */
  readonly help: string;
  /** Every state word the component can report; the first is the healthy/idle one. */
  readonly states: readonly string[];
  /** Gauge name → help text. */
  readonly gauges: Readonly<Record<string, string>>;
  /** Counter name → help text. */
  readonly counters: Readonly<Record<string, string>>;
  /** Histogram name → help text. */
  readonly histograms?: Readonly<Record<string, string>>;
  /**
   * What the component is, for grouping on the dashboard and in the admin API
   * (`breaker`, `limiter`, `bulkhead`, `shedder`, `queue`, `health`, `alerts`, `slo`, `chaos`,
   * `audit`, `policy`, …). Default `policy`.
   */
  readonly category?: string;
}

/** Who may run an operation: every role can read; operators and admins act. */
export type OperationRole = 'viewer' | 'operator' | 'admin';

/** What an operation is given besides its input. */
export interface OperationContext {
  /** Who asked (the control plane's token name, or `api` in process). */
  readonly actor: string;
  /** Why (required for actions by the control plane). */
  readonly reason: string;
  /** For destructive actions: compute and return what would happen, change nothing. */
  readonly dryRun: boolean;
}

/**
 * Something an operator can do to (an `action`) or ask of (a `view`) a component through the
 * control plane: force a breaker open, redrive dead letters, list a queue's items. The
 * component describes its own operations, so the control plane and the dashboard know no kind.
 *
 * @example
 * ```ts
 * import { type ComponentOperation, s } from 'bulwark';
 * const reset: ComponentOperation<Record<string, never>, { ok: boolean }> = {
 *   name: 'reset', type: 'action', summary: 'Close the breaker and clear its window',
 *   role: 'operator', input: s.object({}), run: () => ({ ok: true }),
 * };
 * ```
 */
export interface ComponentOperation<I = unknown, O = unknown> {
  /** camelCase name, unique per component, e.g. `forceOpen`, `deadLetters`. */
  readonly name: string;
  /** `view`: reads only (any role); `action`: changes state (audited). */
  readonly type: 'view' | 'action';
  /** One line for the dashboard and the OpenAPI document. */
  readonly summary: string;
  /** The least role that may run it (views: `viewer`; actions: default `operator`). */
  readonly role?: OperationRole;
  /** Destructive actions support `dryRun` and ask for a typed confirmation on the dashboard. */
  readonly destructive?: boolean;
  /** The input's schema (validated by the control plane; published in its OpenAPI document). */
  readonly input: Schema<I>;
  run(input: I, context: OperationContext): O | Promise<O>;
}

/**
 * An event any component emits: `kind` and `name` say who, `event` what. Policy events add the
 * call's priority, operation and attempt (`EventBase`).
 */
export interface ComponentEvent {
  readonly kind: string;
  readonly name: string;
  readonly event: string;
}

/**
 * A component of the telemetry spine.
 *
 * @example
 * ```ts
 * import { type Component, createRegistry, bulkhead } from 'bulwark';
 * const registry = createRegistry();
 * const component: Component = bulkhead({ name: 'db', limit: 10 });
 * registry.register(component);
 * ```
 */
export interface Component {
  readonly kind: string;
  readonly name: string;
  /** The kind's descriptor (the same object for every component of a kind). */
  readonly descriptor: ComponentDescriptor;
  /** The current state and figures. */
  snapshot(): Snapshot;
  /**
   * Subscribes to this component's events: all of them, the named ones, or `'notable'` (all but
   * the per-call ones, see `PER_CALL_EVENTS`; a component without per-call events may ignore
   * the selection). Returns a disposer.
   */
  onEvent(listener: Listener<ComponentEvent>, only?: EventSelection): Disposer;
  /** The operations the control plane may offer on this component (none when absent). */
  operations?(): readonly ComponentOperation[];
}

/** True when `value` implements `Component`. */
export function isComponent(value: unknown): value is Component {
  return (
    typeof value === 'object' &&
    value !== null &&
    typeof (value as Component).snapshot === 'function' &&
    typeof (value as Component).onEvent === 'function' &&
    typeof (value as Component).kind === 'string' &&
    typeof (value as Component).name === 'string' &&
    typeof (value as Component).descriptor === 'object'
  );
}

/**
 * Freezes a descriptor (and its tables), for the one descriptor object of a kind.
 *
 * @example
 * ```ts
 * import { defineDescriptor } from 'bulwark';
 * const DESCRIPTOR = defineDescriptor({
 *   kind: 'myLimiter',
 *   help: 'Admits calls while tokens last.',
 *   states: ['ready'],
 *   gauges: { tokens: 'Tokens left now.' },
 *   counters: { rejections: 'Calls refused.' },
 * });
 * ```
 */
export function defineDescriptor(d: ComponentDescriptor): ComponentDescriptor {
  const frozen: ComponentDescriptor = Object.freeze({
    ...d,
    states: Object.freeze([...d.states]),
    gauges: Object.freeze({ ...d.gauges }),
    counters: Object.freeze({ ...d.counters }),
    ...(d.histograms !== undefined ? { histograms: Object.freeze({ ...d.histograms }) } : {}),
  });
  descriptors.set(d.kind, frozen);
  return frozen;
}

const descriptors = new Map<string, ComponentDescriptor>();

/**
 * The descriptor defined for `kind` (by `defineDescriptor`), or a generic one for a kind that
 * reports no figures. @internal
 */
export function descriptorOf(kind: string): ComponentDescriptor {
  return (
    descriptors.get(kind) ??
    defineDescriptor({ kind, help: `A ${kind} component.`, states: ['ready'], gauges: {}, counters: {} })
  );
}

/** What a component's `_figures()` returns: its snapshot without kind and name. @internal */
export type Figures = Partial<Omit<Snapshot, 'kind' | 'name'>>;
