/**
 * Manual overrides of health: an operator forces a check's status (say `fail`, to drain a node
 * whose dependency is flapping; or `pass`, to keep serving while a broken check is fixed) or the
 * degradation level, for a duration and with a reason. An override shows in the health+json
 * document, the snapshots and the control plane, and ends by itself when its time is up (or when
 * released). The monitor owns one `Overrides`; the control plane's operations are below.
 */

import type { Clock, TimerHandle } from '../core/clock.js';
import type { ComponentOperation } from '../core/component.js';
import { BulwarkError } from '../core/errors.js';
import { s } from '../core/schema.js';
import type { HealthStatus } from './check.js';
import { DEGRADATION_LEVELS, type DegradationLevel } from './degradation.js';

/** The target name of the degradation level's override (checks are named by their name). */
export const LEVEL_TARGET = 'degradationLevel';

/** One manual override in force. */
export interface HealthOverride {
  /** The check's name, or `degradationLevel`. */
  readonly target: string;
  /** The status (`pass`, `warn`, `fail`) or the level forced. */
  readonly value: string;
  readonly reason: string;
  /** Who forced it. */
  readonly actor: string;
  /** When it was set and when it ends (epoch ms). */
  readonly since: number;
  readonly until: number;
}

/** What a forced check reports instead of its judged status. @internal */
export interface ForcedStatus {
  readonly status: HealthStatus;
  readonly override: HealthOverride;
}

/** The longest override: 7 days (a forgotten override must end). */
export const MAX_OVERRIDE_MS = 7 * 86_400_000;

/**
 * The overrides in force, each with a timer that ends it (timers unref'd). @internal
 */
export class Overrides {
  private readonly map = new Map<string, { override: HealthOverride; timer: TimerHandle }>();

  constructor(
    private readonly clock: Clock,
    /** Called when an override ends (expired or released), after it is gone. */
    private readonly onEnd: (target: string) => void,
  ) {}

  /** Sets (or replaces) the override of `target` for `durationMs`. */
  set(target: string, value: string, durationMs: number, reason: string, actor: string): HealthOverride {
    if (!(durationMs > 0 && durationMs <= MAX_OVERRIDE_MS))
      throw new BulwarkError(
        'BAD_OVERRIDE',
        `An override lasts more than 0 and at most ${MAX_OVERRIDE_MS} ms`,
      );
    this.clear(target);
    const since = this.clock.date();
    const override: HealthOverride = { target, value, reason, actor, since, until: since + durationMs };
    const timer = this.clock.setTimeout(() => {
      this.map.delete(target);
      this.onEnd(target);
    }, durationMs);
    timer.unref();
    this.map.set(target, { override, timer });
    return override;
  }

  /** Ends the override of `target`; returns it (undefined when there was none). */
  release(target: string): HealthOverride | undefined {
    const o = this.clear(target);
    if (o !== undefined) this.onEnd(target);
    return o;
  }

  get(target: string): HealthOverride | undefined {
    return this.map.get(target)?.override;
  }

  list(): HealthOverride[] {
    return [...this.map.values()].map((e) => e.override);
  }

  /** Clears every timer (the monitor closes). */
  close(): void {
    for (const e of this.map.values()) this.clock.clearTimeout(e.timer);
    this.map.clear();
  }

  private clear(target: string): HealthOverride | undefined {
    const e = this.map.get(target);
    if (e === undefined) return undefined;
    this.clock.clearTimeout(e.timer);
    this.map.delete(target);
    return e.override;
  }
}

/** What the override operations need of a monitor. @internal */
export interface OverrideControls {
  readonly checks: readonly { readonly name: string }[];
  readonly hasDegradation: boolean;
  forceCheck(
    name: string,
    status: HealthStatus,
    o: { durationMs: number; reason: string; actor: string },
  ): HealthOverride;
  forceLevel(
    level: DegradationLevel,
    o: { durationMs: number; reason: string; actor: string },
  ): HealthOverride;
  releaseOverride(target: string): HealthOverride | undefined;
  overrides(): HealthOverride[];
}

const duration = s.duration({ positive: true, max: MAX_OVERRIDE_MS });

/**
 * The control plane's operations on a health monitor: `forceCheck`, `forceLevel`,
 * `releaseOverride` (actions) and `overrides` (a view).
 *
 * @example
 * ```ts
 * import { createHealthMonitor, customCheck } from 'bulwark/health';
 * const monitor = createHealthMonitor({ checks: [customCheck({ name: 'db', run: () => true })], autoStart: false });
 * console.log(monitor.operations().map((o) => o.name)); // [ 'overrides', 'forceCheck', 'forceLevel', 'releaseOverride' ]
 * ```
 */
export function overrideOperations(m: OverrideControls): readonly ComponentOperation[] {
  const names = m.checks.map((c) => c.name);
  const ops: ComponentOperation[] = [
    {
      name: 'overrides',
      type: 'view',
      summary: 'The manual overrides in force (target, value, reason, actor, until)',
      input: s.object({}),
      run: () => m.overrides(),
    },
  ];
  if (names.length > 0)
    ops.push({
      name: 'forceCheck',
      type: 'action',
      summary: "Force a check's status for a duration (it ends by itself); readiness and the level follow",
      input: s.object({
        check: s.oneOf(names as [string, ...string[]]),
        status: s.oneOf(['pass', 'warn', 'fail'] as const),
        durationMs: duration,
      }),
      run: (i: { check: string; status: HealthStatus; durationMs: number }, ctx) =>
        m.forceCheck(i.check, i.status, { durationMs: i.durationMs, reason: ctx.reason, actor: ctx.actor }),
    } as ComponentOperation);
  if (m.hasDegradation)
    ops.push({
      name: 'forceLevel',
      type: 'action',
      summary: 'Force the degradation level for a duration (attached shedders follow; it ends by itself)',
      input: s.object({ level: s.oneOf(DEGRADATION_LEVELS), durationMs: duration }),
      run: (i: { level: DegradationLevel; durationMs: number }, ctx) =>
        m.forceLevel(i.level, { durationMs: i.durationMs, reason: ctx.reason, actor: ctx.actor }),
    } as ComponentOperation);
  const targets = [...names, ...(m.hasDegradation ? [LEVEL_TARGET] : [])];
  if (targets.length === 0) return ops;
  ops.push({
    name: 'releaseOverride',
    type: 'action',
    summary: 'End an override now (a check name, or degradationLevel)',
    input: s.object({
      target: s.oneOf(targets as [string, ...string[]]),
    }),
    run: (i: { target: string }) => ({ released: m.releaseOverride(i.target) ?? null }),
  } as ComponentOperation);
  return ops;
}
