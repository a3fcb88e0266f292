/**
 * The control plane's operations on an alert manager: list the alerts (firing, pending, silenced)
 * and the rules; create, replace and delete rules (an expression is validated before it is
 * stored); silence alerts for a duration and end silences.
 */

import type { ComponentOperation } from '../core/component.js';
import { BulwarkError } from '../core/errors.js';
import { s } from '../core/schema.js';
import { type Alert, type AlertRule, ruleSchema } from './alert-types.js';
import { type Silence, type SilenceMatcher, type Silences, silenceInputSchema } from './silences.js';

/** What the operations need of an alert manager. @internal */
export interface AlertAdmin {
  readonly rules: readonly AlertRule[];
  readonly silences: Silences;
  alerts(): Alert[];
  putRule(rule: AlertRule, path?: string): boolean;
  deleteRule(name: string): boolean;
}

/** A rule as JSON (a `custom` expression's function is not sent). */
function ruleJson(r: AlertRule): Record<string, unknown> {
  return r.expr.kind === 'custom' ? { ...r, expr: { kind: 'custom' } } : { ...r };
}

/**
 * The operations of an alert manager: views `alerts`, `rules`, `silences`; actions `putRule`
 * and `deleteRule` (admin), `silence` and `expireSilence` (operator).
 *
 * @example
 * ```ts
 * import { createRegistry } from 'bulwark';
 * import { createAlerts, createMetrics } from 'bulwark/metrics';
 * const alerts = createAlerts({ metrics: createMetrics({ registry: createRegistry() }) });
 * console.log(alerts.operations().map((o) => o.name));
 * // [ 'alerts', 'rules', 'silences', 'putRule', 'deleteRule', 'silence', 'expireSilence' ]
 * ```
 */
export function alertOperations(m: AlertAdmin): readonly ComponentOperation[] {
  return [
    {
      name: 'alerts',
      type: 'view',
      summary: 'Alerts now: firing, pending (and silenced ones, marked with the silences holding them)',
      input: s.object({
        state: s.optional(s.oneOf(['all', 'firing', 'pending'] as const), 'all'),
        silenced: s.optional(s.boolean()),
      }),
      run: (i: { state: 'all' | 'firing' | 'pending'; silenced?: boolean }) =>
        m
          .alerts()
          .filter((a) => a.state === 'firing' || a.state === 'pending')
          .filter((a) => i.state === 'all' || a.state === i.state)
          .filter((a) => i.silenced === undefined || (a.silencedBy !== undefined) === i.silenced),
    } as ComponentOperation,
    {
      name: 'rules',
      type: 'view',
      summary: 'The alert rules evaluated',
      input: s.object({}),
      run: () => m.rules.map(ruleJson),
    },
    {
      name: 'silences',
      type: 'view',
      summary: 'Silences, active first (matchers, creator, comment, end)',
      input: s.object({}),
      run: (): Silence[] => m.silences.list(),
    },
    {
      name: 'putRule',
      type: 'action',
      role: 'admin',
      summary: 'Create a rule, or replace the rule of that name (the expression is checked first)',
      input: s.object({
        rule: s.custom('an alert rule', (v, path) => ruleSchema.parse(v, path), ruleShape()),
      }),
      run: (i: { rule: AlertRule }) => ({
        created: m.putRule(i.rule, 'body.input.rule'),
        rule: ruleJson(i.rule),
      }),
    } as ComponentOperation,
    {
      name: 'deleteRule',
      type: 'action',
      role: 'admin',
      destructive: true,
      summary: 'Delete a rule; its firing alerts are resolved',
      input: s.object({ name: s.string({ maxLength: 200 }) }),
      run: (i: { name: string }, ctx) => {
        const rule = m.rules.find((r) => r.name === i.name);
        if (rule === undefined)
          throw new BulwarkError(
            'UNKNOWN_RULE',
            `No alert rule "${i.name}" (the rules are ${m.rules.map((r) => r.name).join(', ') || 'none'})`,
          );
        const alerts = m.alerts().filter((a) => a.rule === i.name && a.state !== 'resolved').length;
        if (!ctx.dryRun) m.deleteRule(i.name);
        return { deleted: ruleJson(rule), alertsResolved: alerts, dryRun: ctx.dryRun };
      },
    } as ComponentOperation,
    {
      name: 'silence',
      type: 'action',
      summary: 'Silence the alerts whose labels match (=, !=, =~, !~) for a duration: shown, not notified',
      input: silenceInputSchema,
      run: (i: { matchers: SilenceMatcher[]; durationMs: number }, ctx) =>
        m.silences.add(i.matchers, i.durationMs, ctx.actor, ctx.reason, 'body.input'),
    } as ComponentOperation,
    {
      name: 'expireSilence',
      type: 'action',
      summary: 'End a silence now (its alerts are notified at the next evaluation if still firing)',
      input: s.object({ id: s.string({ maxLength: 100 }) }),
      run: (i: { id: string }) => m.silences.expire(i.id),
    } as ComponentOperation,
  ];
}

/** The JSON Schema of a rule from the API (the expression kinds that are data, not functions). */
function ruleShape(): Record<string, unknown> {
  const json = ruleSchema.json() as { properties: Record<string, unknown> };
  return {
    ...json,
    properties: {
      ...json.properties,
      expr: {
        type: 'object',
        description: 'an alert expression: kind value, rate, increase, delta or ratio (see docs/metrics.md)',
      },
    },
  };
}
