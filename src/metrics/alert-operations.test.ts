import { describe, expect, it } from 'vitest';
import { live, setup } from '../../test/support/alerts-harness.js';
import type { ComponentOperation } from '../core/component.js';
import { BulwarkError, ConfigError } from '../core/errors.js';

const CTX = { actor: 'alice', reason: 'known incident INC-42', dryRun: false };

function run(ops: readonly ComponentOperation[], name: string, input: unknown, ctx = CTX) {
  const o = ops.find((x) => x.name === name)!;
  return o.run(o.input.parse(input, 'body.input'), ctx);
}

function fieldOf(ops: readonly ComponentOperation[], name: string, input: unknown): string | undefined {
  try {
    ops.find((x) => x.name === name)!.input.parse(input, 'body.input');
  } catch (error) {
    if (error instanceof ConfigError) return error.option;
    throw error;
  }
  return undefined;
}

const DOWN = { kind: 'value', metric: 'bulwark_svc_up', op: '==', threshold: 0 } as const;

describe('alert rules through operations', () => {
  it('creates, replaces and deletes rules; an expression is validated before it is stored', async () => {
    let up = 0;
    const { registry, alerts, notes } = setup([]);
    live(registry, 'svc', 'api', () => ({ up }));
    const ops = alerts.operations();
    expect(
      await run(ops, 'putRule', { rule: { name: 'Down', expr: DOWN, severity: 'critical' } }),
    ).toMatchObject({
      created: true,
    });
    expect(fieldOf(ops, 'putRule', { rule: { name: 'Bad', expr: { ...DOWN, op: '=>' } } })).toBe(
      'body.input.rule.expr.op',
    );
    expect(fieldOf(ops, 'putRule', { rule: { name: 'has space', expr: DOWN } })).toBe('body.input.rule.name');
    expect(fieldOf(ops, 'putRule', { rule: { name: 'X', expr: { kind: 'sql' } } })).toBe(
      'body.input.rule.expr.kind',
    );
    expect(alerts.rules.map((r) => r.name)).toEqual(['Down']);
    await alerts.evaluate();
    expect(await run(ops, 'alerts', { state: 'firing' })).toHaveLength(1);
    expect(notes.map((n) => n.status)).toEqual(['firing']);
    // Replace: the alert carries on, judged by the new expression.
    expect(
      await run(ops, 'putRule', { rule: { name: 'Down', expr: { ...DOWN, threshold: 5, op: '>' } } }),
    ).toMatchObject({ created: false });
    await alerts.evaluate();
    expect(notes.map((n) => n.status)).toEqual(['firing', 'resolved']);
    up = 0;
    await run(ops, 'putRule', { rule: { name: 'Down', expr: DOWN } });
    await alerts.evaluate();
    expect(alerts.alerts()[0]!.state).toBe('firing');
    // Delete: a dry run changes nothing; then the firing alert is resolved and notified.
    expect(await run(ops, 'deleteRule', { name: 'Down' }, { ...CTX, dryRun: true })).toMatchObject({
      alertsResolved: 1,
      dryRun: true,
    });
    expect(alerts.rules).toHaveLength(1);
    await run(ops, 'deleteRule', { name: 'Down' });
    expect(alerts.rules).toHaveLength(0);
    expect(notes.map((n) => n.status)).toEqual(['firing', 'resolved', 'firing', 'resolved']);
    expect(alerts.snapshot().state).toBe('ok');
    await expect(async () => run(ops, 'deleteRule', { name: 'Down' })).rejects.toBeInstanceOf(BulwarkError);
  });
});

describe('silences', () => {
  it('a silenced alert is shown as silenced, not notified; notified once the silence ends', async () => {
    const { registry, alerts, notes, clock } = setup([{ name: 'Down', expr: DOWN }]);
    live(registry, 'svc', 'api', () => ({ up: 0 }));
    live(registry, 'svc', 'db', () => ({ up: 0 }));
    const ops = alerts.operations();
    const silence = (await run(ops, 'silence', {
      matchers: [{ name: 'name', value: 'api' }],
      durationMs: 60_000,
    })) as { id: string; createdBy: string; comment: string };
    expect(silence).toMatchObject({ createdBy: 'alice', comment: 'known incident INC-42' });
    await alerts.evaluate();
    const firing = (await run(ops, 'alerts', {})) as { labels: { name: string }; silencedBy?: string[] }[];
    expect(firing.map((a) => [a.labels.name, a.silencedBy ?? []])).toEqual([
      ['api', [silence.id]],
      ['db', []],
    ]);
    expect(await run(ops, 'alerts', { silenced: true })).toHaveLength(1);
    expect(notes.map((n) => n.alert.labels.name)).toEqual(['db']);
    expect(alerts.snapshot().counters.silencedNotifications).toBe(1);
    expect(alerts.snapshot().gauges.silences).toBe(1);
    await clock.tick(60_000);
    await alerts.evaluate();
    expect(notes.map((n) => n.alert.labels.name)).toEqual(['db', 'api']);
    expect(((await run(ops, 'silences', {})) as { state: string }[])[0]!.state).toBe('expired');
  });

  it('regex and negative matchers; expire ends a silence; bad matchers are 400s naming the field', async () => {
    const { registry, alerts, notes } = setup([{ name: 'Down', expr: DOWN }]);
    live(registry, 'svc', 'api-1', () => ({ up: 0 }));
    live(registry, 'svc', 'web', () => ({ up: 0 }));
    const ops = alerts.operations();
    const s = (await run(ops, 'silence', {
      matchers: [
        { name: 'name', value: 'api-.*', op: '=~' },
        { name: 'alertname', value: 'Other', op: '!=' },
      ],
      durationMs: 3_600_000,
    })) as { id: string };
    await alerts.evaluate();
    expect(notes.map((n) => n.alert.labels.name)).toEqual(['web']);
    await run(ops, 'expireSilence', { id: s.id });
    await alerts.evaluate();
    expect(notes.map((n) => n.alert.labels.name)).toEqual(['web', 'api-1']);
    expect(fieldOf(ops, 'silence', { matchers: [], durationMs: 1 })).toBe('body.input.matchers');
    expect(fieldOf(ops, 'silence', { matchers: [{ name: 'a b', value: 'x' }], durationMs: 1 })).toBe(
      'body.input.matchers[0].name',
    );
    expect(fieldOf(ops, 'silence', { matchers: [{ name: 'a', value: 'x' }], durationMs: 0 })).toBe(
      'body.input.durationMs',
    );
    await expect(async () =>
      run(ops, 'silence', { matchers: [{ name: 'a', value: '(', op: '=~' }], durationMs: 1_000 }),
    ).rejects.toMatchObject({ option: 'body.input.matchers[0].value' });
    await expect(async () =>
      run(ops, 'silence', { matchers: [{ name: 'a', value: '(a+)+', op: '=~' }], durationMs: 1_000 }),
    ).rejects.toBeInstanceOf(ConfigError);
    await expect(async () => run(ops, 'expireSilence', { id: 'nope' })).rejects.toBeInstanceOf(BulwarkError);
  });
});
