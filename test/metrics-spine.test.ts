/**
 * Acceptance of the telemetry spine: for EVERY component registered in a registry, its state and
 * each counter, gauge and histogram of its descriptor show up in the Prometheus exposition and in
 * an OpenTelemetry in-memory reader, and its state changes show up in the logs — with no
 * component-specific code in src/metrics. `promtool check metrics` accepts the exposition.
 *
 * To cover a new component kind, add ONE entry to `KINDS`: how to make one (registered in the
 * given registry) and how to drive it so that its state changes and its figures move.
 */

import {
  adaptiveConcurrency,
  adaptiveThrottle,
  adaptiveTimeout,
  backoff,
  bulkhead,
  cache,
  chaos,
  circuitBreaker,
  coalesce,
  createRegistry,
  fallback,
  hedge,
  loadShedder,
  pipeline,
  rateLimit,
  rateLimiter,
  retry,
  retryBudget,
  timeout,
} from 'bulwark';
import { memoryAudit } from 'bulwark/server';
import { createFakeClock } from 'bulwark/testing';
import { describe, it } from 'vitest';
import { createHealthMonitor, customCheck } from '../src/health/index.js';
import { createAlerts, createMetrics, sloTracker } from '../src/metrics/index.js';
import { FAKE_BREAKER, FAKE_LIMITER, FAKE_PIPELINE, FakeComponent, histogramOf } from './metrics-fakes.js';
import { type KindCase, verifySpine } from './support/spine-check.js';

/** Kinds with several states that this test does not drive through a change (their own tests do). */
const SINGLE_STATE_IN_TEST = new Set([
  'hedge',
  'bulkhead',
  'adaptiveConcurrency',
  'adaptiveThrottle',
  'loadShedder',
]);

const fail = () => {
  throw new Error('down');
};
/** Runs `n` calls through `policy`, ignoring their outcomes. */
async function calls(
  policy: { execute(fn: () => unknown): Promise<unknown> },
  n: number,
  fn: () => unknown = () => 1,
) {
  for (let i = 0; i < n; i++) await policy.execute(fn).catch(() => {});
}

/** One entry per component kind: the real policies and capabilities, and fakes that prove the exporters generic. */
const KINDS: KindCase[] = [
  {
    kind: 'circuitBreaker',
    make: (registry, clock) => {
      const c = circuitBreaker({
        name: 'spine-breaker',
        breaker: { kind: 'consecutive', threshold: 2 },
        clock,
        registry,
      });
      return { component: c, drive: () => calls(c, 3, fail) };
    },
  },
  {
    kind: 'bulkhead',
    make: (registry) => {
      const c = bulkhead({ name: 'spine-bulkhead', limit: 1, queue: 0, registry });
      return {
        component: c,
        drive: () => {
          void c.execute(() => new Promise((r) => setTimeout(r, 5)));
          void c.execute(() => 1).catch(() => {});
        },
      };
    },
  },
  {
    kind: 'pipeline',
    make: (registry, clock) => {
      const c = pipeline(
        { name: 'spine-pipeline', registry, clock },
        timeout({ timeoutMs: 1000, clock }),
        retry({ maxAttempts: 1, clock }),
      );
      return { component: c, drive: () => calls(c, 4, () => 1).then(() => calls(c, 1, fail)) };
    },
  },
  {
    kind: 'retry',
    make: (registry, clock) => ({
      component: retry({ name: 'spine-retry', maxAttempts: 2, clock, registry }),
      drive: () => undefined,
    }),
  },
  {
    kind: 'timeout',
    make: (registry, clock) => ({
      component: timeout({ name: 'spine-timeout', timeoutMs: 50, clock, registry }),
      drive: () => undefined,
    }),
  },
  {
    kind: 'fallback',
    make: (registry) => ({
      component: fallback(0, { name: 'spine-fallback', registry }),
      drive: () => undefined,
    }),
  },
  {
    kind: 'rateLimit',
    make: (registry, clock) => {
      const limiter = rateLimiter({
        limits: [{ algorithm: 'fixed-window', limit: 1, windowMs: 60_000 }],
        clock,
      });
      const c = rateLimit({ name: 'spine-ratelimit', limiter, registry });
      return { component: c, drive: () => calls(c, 3) };
    },
  },
  {
    kind: 'rateLimiter',
    make: (registry, clock) => {
      const c = rateLimiter({
        name: 'spine-limiter',
        limits: [{ algorithm: 'token-bucket', capacity: 2, refillRate: 1 }],
        clock,
        registry,
      });
      return {
        component: c,
        drive: () => {
          for (const key of ['a', 'b', 'a', 'a']) c.consume(key);
        },
      };
    },
  },
  {
    kind: 'retryBudget',
    make: (registry, clock) => {
      const budget = retryBudget.tokens({ name: 'spine-budget', capacity: 10, registry });
      const r = retry({ maxAttempts: 3, budget, backoff: backoff.constant(0), clock });
      return { component: budget, drive: () => calls(r, 2, fail) };
    },
  },
  {
    kind: 'hedge',
    make: (registry, clock) => {
      const c = hedge({ name: 'spine-hedge', delay: { quantile: 0.9 }, clock, registry });
      return { component: c, drive: () => calls(c, 3) };
    },
  },
  {
    kind: 'adaptiveConcurrency',
    make: (registry, clock) => ({
      component: adaptiveConcurrency({ name: 'spine-aimd', clock, registry }),
      drive: () => undefined,
    }),
  },
  {
    kind: 'adaptiveTimeout',
    make: (registry, clock) => ({
      component: adaptiveTimeout({ name: 'spine-at', clock, registry }),
      drive: () => undefined,
    }),
  },
  {
    kind: 'adaptiveThrottle',
    make: (registry, clock) => ({
      component: adaptiveThrottle({ name: 'spine-throttle', clock, registry }),
      drive: () => undefined,
    }),
  },
  {
    kind: 'loadShedder',
    make: (registry, clock) => ({
      component: loadShedder({ name: 'spine-shedder', clock, registry }),
      drive: () => undefined,
    }),
  },
  {
    kind: 'cache',
    make: (registry, clock) => ({
      component: cache({ name: 'spine-cache', key: () => 'k', ttlMs: 1000, clock, registry }),
      drive: () => undefined,
    }),
  },
  {
    kind: 'coalesce',
    make: (registry) => ({
      component: registry.register(coalesce({ name: 'spine-coalesce', key: () => 'k' })),
      drive: () => undefined,
    }),
  },
  {
    kind: 'chaos',
    make: (registry) => {
      const c = chaos.fault({
        name: 'spine-chaos',
        error: () => new Error('injected'),
        enabled: false,
        registry,
      });
      return { component: c, drive: () => c.control.enable() };
    },
  },
  {
    kind: 'adminAudit',
    make: (registry) => ({
      component: registry.register(memoryAudit({ name: 'spine-audit' })),
      drive: () => undefined,
    }),
  },
  {
    kind: 'fakeBreaker',
    make: (registry) => {
      const c = registry.register(new FakeComponent(FAKE_BREAKER, 'payments'));
      return {
        component: c,
        drive: () => {
          c.counters.failures = 5;
          c.counters.successes = 2;
          c.setState('open');
        },
      };
    },
  },
  {
    kind: 'fakeLimiter',
    make: (registry) => {
      const c = registry.register(new FakeComponent(FAKE_LIMITER, 'db-pool'));
      return {
        component: c,
        drive: () => {
          Object.assign(c.gauges, { inFlight: 10, queued: 4, limit: 10 });
          c.counters.rejections = 7;
          c.setState('full');
        },
      };
    },
  },
  {
    kind: 'fakePipeline',
    make: (registry) => {
      const c = registry.register(new FakeComponent(FAKE_PIPELINE, 'checkout'));
      return {
        component: c,
        drive: () => {
          c.counters.successes = 3;
          c.counters.failures = 1;
          c.histograms = { durationSeconds: histogramOf([0.01, 0.1, 1], [0.004, 0.05, 0.2, 3]) };
          c.setState('busy');
        },
      };
    },
  },
  {
    kind: 'healthCheck',
    make: (registry, clock) => {
      let up = true;
      const check = customCheck({ name: 'spine-check', registry, failureThreshold: 1, run: () => up });
      const monitor = createHealthMonitor({ clock, checks: [check], degradation: false, autoStart: false });
      return {
        component: check,
        drive: async () => {
          await monitor.runNow();
          up = false;
          await monitor.runNow();
        },
        close: () => monitor.close(),
      };
    },
  },
  {
    kind: 'healthMonitor',
    make: (registry, clock) => {
      const monitor = createHealthMonitor({
        name: 'spine',
        clock,
        registry,
        autoStart: false,
        checks: [customCheck({ name: 'spine-db', run: () => true })],
      });
      return { component: monitor, drive: () => monitor.runNow(), close: () => monitor.close() };
    },
  },
  {
    kind: 'alertManager',
    make: (registry, clock) => {
      const alerts = createAlerts({
        name: 'spine-alerts',
        registry,
        metrics: createMetrics({ registry, clock }),
        rules: [
          {
            name: 'AnyOpen',
            expr: {
              kind: 'value',
              metric: 'bulwark_component_state',
              match: { state: 'open' },
              op: '==',
              threshold: 1,
            },
          },
        ],
      });
      return { component: alerts, drive: async () => void (await alerts.evaluate()) };
    },
  },
  {
    kind: 'slo',
    make: (registry, clock) => {
      const source = new FakeComponent(FAKE_PIPELINE, 'slo-source');
      const slo = sloTracker({ name: 'spine-slo', source, objective: 0.99, clock, registry });
      return {
        component: slo,
        drive: () => {
          source.counters.successes = 50;
          source.counters.failures = 50;
          slo.status();
        },
        close: () => slo.stop(),
      };
    },
  },
];

describe('telemetry spine: every component kind in metrics (Prometheus, OpenTelemetry) and logs', () => {
  it('exports the state, counters, gauges and histograms of every registered component, and logs its state changes', async () => {
    await verifySpine(KINDS, createRegistry(), createFakeClock(), SINGLE_STATE_IN_TEST);
  });
});
