/** Helpers shared by the test files of one area (split by topic). */
import { createRegistry, type Registry } from 'bulwark';
import { createFakeClock } from 'bulwark/testing';
import {
  type AlertNotification,
  type AlertRule,
  type AlertTransition,
  createAlerts,
  createMetrics,
} from '../../src/metrics/index.js';
import { FakeComponent } from '../metrics-fakes.js';
/** A component of `kind` whose gauges are read from `read` at each snapshot. */
export function live(
  registry: Registry,
  kind: string,
  name: string,
  read: () => Record<string, number>,
  states: readonly string[] = ['ok'],
): FakeComponent {
  const gauges: Record<string, string> = {};
  for (const k of Object.keys(read())) gauges[k] = `${k} of ${kind}`;
  const c = new FakeComponent({ kind, help: kind, states, gauges, counters: {} }, name);
  const base = c.snapshot.bind(c);
  c.snapshot = () => ({ ...base(), gauges: read() });
  return registry.register(c);
}

export function setup(rules: AlertRule[]) {
  const clock = createFakeClock();
  const registry = createRegistry();
  const metrics = createMetrics({ registry, clock });
  const notes: AlertNotification[] = [];
  const alerts = createAlerts({ metrics, rules, notifiers: [{ notify: (n) => void notes.push(n) }] });
  const seen: AlertTransition[] = [];
  alerts.onEvent((e) => {
    if (e.event === 'alert') seen.push({ from: e.from, to: e.to, alert: e.alert, at: clock.now() });
  });
  return { clock, registry, metrics, alerts, notes, seen };
}

export const states = (ts: AlertTransition[]) => ts.map((t) => `${t.from}->${t.to}`);
