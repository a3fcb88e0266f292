/**
 * Option schemas shared by `bulwark/metrics` and `bulwark/health` (all on the core's one
 * validator, `s` of src/core/schema.ts, so every bad option is a `ConfigError`). @internal
 */

import type { Clock } from './clock.js';
import { type Component, isComponent } from './component.js';
import type { Registry } from './registry.js';
import { type Schema, s } from './schema.js';

/** An object whose named members are all functions. @internal */
export function duck<T>(rule: string, methods: readonly string[]): Schema<T> {
  return s.custom<T>(rule, (v, path) => {
    if (typeof v !== 'object' || v === null) return s.fail(path, rule, v);
    for (const m of methods)
      if (typeof (v as Record<string, unknown>)[m] !== 'function') return s.fail(path, rule, v);
    return v as T;
  });
}

/** A `Clock` (`now`, `date`, `setTimeout`, `clearTimeout`). @internal */
export const clockSchema: Schema<Clock> = duck<Clock>('a Clock (now, date, setTimeout, clearTimeout)', [
  'now',
  'date',
  'setTimeout',
  'clearTimeout',
]);

/** A `Registry` (from `createRegistry()`). @internal */
export const registrySchema: Schema<Registry> = duck<Registry>('a Registry (from createRegistry())', [
  'register',
  'unregister',
  'list',
  'onEvent',
  'watch',
]);

/** A `Component` (kind, name, descriptor, snapshot(), onEvent()). @internal */
export const componentSchema: Schema<Component> = s.custom<Component>(
  'a Component (kind, name, descriptor, snapshot(), onEvent())',
  (v, path) =>
    isComponent(v) ? v : s.fail(path, 'a Component (kind, name, descriptor, snapshot(), onEvent())', v),
);

/** The longest delay a Node.js timer honours (2^31 - 1 ms); longer ones fire at once. @internal */
export const MAX_TIMER_MS = 2_147_483_647;

/** Milliseconds from 0 to `MAX_TIMER_MS`. @internal */
export const ms: Schema<number> = s.duration({ max: MAX_TIMER_MS });
/** Milliseconds from 1 to `MAX_TIMER_MS` (an interval, a timeout, a deadline). @internal */
export const positiveMs: Schema<number> = s.number({ min: 1, max: MAX_TIMER_MS });
/** A component name: a non-empty string. @internal */
export const nameSchema: Schema<string> = s.string({ maxLength: 200 });
/** A string → string map (labels, headers). @internal */
export const stringMap: Schema<Record<string, string>> = s.record(s.string({ minLength: 0 }));
