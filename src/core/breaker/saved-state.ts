/**
 * A breaker's state saved by `toJSON()` (for example across a serverless cold start) and read
 * back through the `initialState` option. Fields a `toJSON()` could not have produced (NaN,
 * Infinity, unknown states) are ignored, so a corrupt saved state never holds a breaker open.
 */

import { ConfigError } from '../errors.js';

/** The states of a circuit breaker. */
export type CircuitState = 'closed' | 'open' | 'half-open' | 'isolated' | 'forced-open' | 'disabled';

/** Every state word, the healthy one first. @internal */
export const CIRCUIT_STATES: readonly CircuitState[] = Object.freeze([
  'closed',
  'open',
  'half-open',
  'isolated',
  'forced-open',
  'disabled',
]);

/** What `toJSON()` returns and `initialState` accepts. */
export interface SavedCircuitState {
  readonly v: 1;
  readonly state: CircuitState;
  /** Wall-clock ms when the state was saved. */
  readonly savedAt: number;
  /** For `open`: ms of the break left when saved. */
  readonly openRemainingMs: number;
  /** Opens since the last close (drives a growing break duration). */
  readonly openCount: number;
  /** The failure window's counts. */
  readonly window: unknown;
}

/** What a breaker restores from a saved state. @internal */
export interface RestoredState {
  /** `open` (with `openRemainingMs` left), `forced-open` (an isolation restored), `closed` or `disabled`. */
  readonly state: CircuitState;
  readonly openRemainingMs: number;
  readonly openCount: number;
  /** The window's saved counts with their age (`ageMs`), or null. */
  readonly window: object | null;
}

function isFiniteNumber(v: unknown): v is number {
  return typeof v === 'number' && Number.isFinite(v);
}

/**
 * Reads a saved state at `path` (throws `ConfigError` when it is not one), `nowDate` being the
 * wall-clock time now. @internal
 */
export function readSavedState(saved: unknown, path: string, nowDate: number): RestoredState {
  const s = saved as Partial<Record<keyof SavedCircuitState, unknown>> | null;
  if (
    typeof s !== 'object' ||
    s === null ||
    s.v !== 1 ||
    typeof s.state !== 'string' ||
    !CIRCUIT_STATES.includes(s.state as CircuitState)
  ) {
    throw new ConfigError(path, 'a value returned by toJSON() (v: 1)', saved);
  }
  const age = isFiniteNumber(s.savedAt) ? Math.max(0, nowDate - s.savedAt) : 0;
  const openCount = isFiniteNumber(s.openCount) && s.openCount >= 0 ? Math.floor(s.openCount) : 0;
  const window = typeof s.window === 'object' && s.window !== null ? { ...s.window, ageMs: age } : null;
  const state = s.state as CircuitState;
  if (state === 'open' || state === 'half-open') {
    const left = state === 'open' && isFiniteNumber(s.openRemainingMs) ? s.openRemainingMs - age : 0;
    return { state: 'open', openRemainingMs: Math.max(0, left), openCount, window };
  }
  // Isolation handles do not survive a restart: restore as forced open (reset() releases it).
  return { state: state === 'isolated' ? 'forced-open' : state, openRemainingMs: 0, openCount, window };
}
