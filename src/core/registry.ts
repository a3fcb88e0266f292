/**
 * The registry of named components: what metrics, logs, alerts, the control plane, the gateway
 * and the exporters read. Components join explicitly (`registry.register(c)`) or through the
 * `registry` option every constructor takes.
 */

import type { Component, ComponentEvent, Snapshot } from './component.js';
import { countDurationReader } from './durations.js';
import { BulwarkError } from './errors.js';
import { type Disposer, Emitter, type Listener, makeDisposer, PER_CALL_EVENTS } from './events.js';

/** A change in a registry's membership. */
export interface RegistryChange {
  readonly type: 'added' | 'removed';
  readonly component: Component;
}

/**
 * A set of named components, unique by kind and name.
 *
 * @example
 * ```ts
 * import { createRegistry, circuitBreaker } from 'bulwark';
 * const registry = createRegistry();
 * const breaker = circuitBreaker({ name: 'payments', registry });
 * registry.get('circuitBreaker', 'payments') === breaker; // true
 * registry.list().map((c) => c.snapshot());
 * ```
 */
export interface Registry {
  /** Adds `component` and returns it; throws `DuplicateComponentError` (`DUPLICATE_COMPONENT`) when its kind and name are taken. */
  register<C extends Component>(component: C): C;
  /** Removes `component` (no-op when absent). */
  unregister(component: Component): void;
  /** The component of `kind` named `name`, if registered. */
  get(kind: string, name: string): Component | undefined;
  /** Every component (of `kind` when given), in registration order. */
  list(kind?: string): Component[];
  /** Snapshots of every component (of `kind` when given). */
  snapshot(kind?: string): Snapshot[];
  /** Calls `listener` for each component added or removed (and, with `replay`, for each one present now). */
  watch(listener: Listener<RegistryChange>, options?: { replay?: boolean }): Disposer;
  /** Every event of every registered component. */
  onEvent(listener: Listener<ComponentEvent>): Disposer;
  /**
   * Declares that something reads the durations of this registry's components (a metrics
   * exporter, a dashboard): its pipelines, present and future, time every execution until the
   * returned disposer runs (`timing: 'auto'`, the default, times only while something reads).
   * `createMetrics({ registry })` and the control plane call it.
   */
  readDurations(): Disposer;
  /** Number of registered components. */
  readonly size: number;
}

/** Thrown when a second component of the same kind and name joins a registry. */
export class DuplicateComponentError extends BulwarkError {
  readonly kind: string;
  readonly componentName: string;
  constructor(kind: string, name: string) {
    super(
      'DUPLICATE_COMPONENT',
      `A ${kind} named "${name}" is already registered; give each component of a kind its own name (the \`name\` option), or unregister the old one first`,
    );
    this.kind = kind;
    this.componentName = name;
  }
}

class ComponentRegistry implements Registry {
  private readonly byKey = new Map<string, { component: Component; stop: Disposer }>();
  private readonly changes = new Emitter<RegistryChange>();
  private readonly events = new Emitter<ComponentEvent>();
  /** How many readers of durations (`readDurations`) are active. */
  private durationReaders = 0;

  get size(): number {
    return this.byKey.size;
  }

  register<C extends Component>(component: C): C {
    const key = `${component.kind}\u0000${component.name}`;
    const had = this.byKey.get(key);
    if (had !== undefined) {
      if (had.component === component) return component;
      throw new DuplicateComponentError(component.kind, component.name);
    }
    // The registry forwards the notable events only: per-call outcomes are in the snapshots'
    // counters and histograms, and asking for them would make every call build event objects.
    const stop = component.onEvent((e) => {
      if (this.events.size !== 0 && !PER_CALL_EVENTS.has(e.event)) this.events.emit(e);
    }, 'notable');
    this.byKey.set(key, { component, stop });
    if (this.durationReaders !== 0) countDurationReader(component, 1);
    if (this.changes.size !== 0) this.changes.emit({ type: 'added', component });
    return component;
  }

  unregister(component: Component): void {
    const key = `${component.kind}\u0000${component.name}`;
    const had = this.byKey.get(key);
    if (had === undefined || had.component !== component) return;
    this.byKey.delete(key);
    had.stop();
    if (this.durationReaders !== 0) countDurationReader(component, -1);
    if (this.changes.size !== 0) this.changes.emit({ type: 'removed', component });
  }

  get(kind: string, name: string): Component | undefined {
    return this.byKey.get(`${kind}\u0000${name}`)?.component;
  }

  list(kind?: string): Component[] {
    const out: Component[] = [];
    for (const { component } of this.byKey.values()) {
      if (kind === undefined || component.kind === kind) out.push(component);
    }
    return out;
  }

  snapshot(kind?: string): Snapshot[] {
    return this.list(kind).map((c) => c.snapshot());
  }

  watch(listener: Listener<RegistryChange>, options?: { replay?: boolean }): Disposer {
    if (options?.replay === true) {
      for (const { component } of this.byKey.values()) listener({ type: 'added', component });
    }
    return this.changes.on(listener);
  }

  onEvent(listener: Listener<ComponentEvent>): Disposer {
    return this.events.on(listener);
  }

  readDurations(): Disposer {
    if (this.durationReaders++ === 0)
      for (const { component } of this.byKey.values()) countDurationReader(component, 1);
    return makeDisposer(() => {
      if (--this.durationReaders === 0)
        for (const { component } of this.byKey.values()) countDurationReader(component, -1);
    });
  }
}

/**
 * Creates an empty registry.
 *
 * @example
 * ```ts
 * import { createRegistry } from 'bulwark';
 * const registry = createRegistry();
 * registry.watch(({ type, component }) => console.log(type, component.kind, component.name));
 * ```
 */
export function createRegistry(): Registry {
  return new ComponentRegistry();
}

/**
 * The process-wide default registry. Components join it only when asked
 * (`registry: defaultRegistry`, or `defaultRegistry.register(c)`), never implicitly.
 *
 * @example
 * ```ts
 * import { defaultRegistry, retry } from 'bulwark';
 * retry({ name: 'orders', registry: defaultRegistry });
 * defaultRegistry.list('retry');
 * ```
 */
export const defaultRegistry: Registry = createRegistry();

/** Registers `component` in `registry` when one is given (for constructors). @internal */
export function joinRegistry<C extends Component>(registry: Registry | undefined, component: C): C {
  if (registry !== undefined) registry.register(component);
  return component;
}

/** A disposer that unregisters `component`. @internal */
export function leaveOnDispose(registry: Registry, component: Component): Disposer {
  return makeDisposer(() => registry.unregister(component));
}
