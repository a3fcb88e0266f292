/**
 * Every public constructor of `bulwark/metrics` and `bulwark/health` validates its options through
 * the core's one validator and throws `ConfigError` naming the dotted option, for wrong types,
 * out-of-range values and unknown keys (with "did you mean").
 */

import { ConfigError, createRegistry } from 'bulwark';
import { describe, expect, it } from 'vitest';
import {
  breakerCheck,
  createDegradation,
  createHealthMonitor,
  customCheck,
  eventLoopCheck,
  expressHealth,
  fastifyHealth,
  GracefulShutdown,
  gracefulShutdown,
  Hysteresis,
  healthHandler,
  httpCheck,
  LatencyWindow,
  postgresCheck,
  queueCheck,
  redisCheck,
  tcpCheck,
} from '../src/health/index.js';
import {
  createAlerts,
  createLogs,
  createMetrics,
  defaultAlertRules,
  logNotifier,
  otelMetrics,
  prometheusExporter,
  RollingWindow,
  registerPrometheus,
  sloTracker,
  webhookNotifier,
} from '../src/metrics/index.js';
import { FAKE_PIPELINE, FakeComponent } from './metrics-fakes.js';

const registry = createRegistry();
const metrics = createMetrics({ registry });
const source = new FakeComponent(FAKE_PIPELINE, 'src');
const run = () => true;
const monitor = createHealthMonitor({ checks: [], autoStart: false });

interface Case {
  /** What is called. */
  readonly what: string;
  readonly call: () => unknown;
  /** The dotted option the error must name. */
  readonly option: string;
  readonly code?: 'INVALID_OPTION' | 'UNKNOWN_OPTION';
  /** For an unknown option: the suggestion. */
  readonly suggestion?: string;
}

const CASES: Case[] = [
  // bulwark/metrics
  {
    what: 'createMetrics registry',
    call: () => createMetrics({ registry: {} as never }),
    option: 'createMetrics.registry',
  },
  {
    what: 'createMetrics typo',
    call: () => createMetrics({ regsitry: registry } as never),
    option: 'createMetrics.regsitry',
    code: 'UNKNOWN_OPTION',
    suggestion: 'registry',
  },
  {
    what: 'createMetrics clock',
    call: () => createMetrics({ clock: 5 as never }),
    option: 'createMetrics.clock',
  },
  {
    what: 'prometheusExporter metrics',
    call: () => prometheusExporter({ metrics: {} as never }),
    option: 'prometheusExporter.metrics',
  },
  {
    what: 'prometheusExporter typo',
    call: () => prometheusExporter({ metrics, registry } as never),
    option: 'prometheusExporter.registry',
    code: 'UNKNOWN_OPTION',
  },
  {
    what: 'registerPrometheus',
    call: () => registerPrometheus({} as never, {} as never),
    option: 'registerPrometheus.metrics',
  },
  {
    what: 'otelMetrics meter',
    call: () => otelMetrics({ metrics, meter: {} as never }),
    option: 'otelMetrics.meter',
  },
  {
    what: 'createAlerts metrics',
    call: () => createAlerts({ metrics: undefined as never }),
    option: 'createAlerts.metrics',
  },
  {
    what: 'createAlerts intervalMs',
    call: () => createAlerts({ metrics, intervalMs: 0 }),
    option: 'createAlerts.intervalMs',
  },
  {
    what: 'createAlerts typo',
    call: () => createAlerts({ metrics, interval: 5 } as never),
    option: 'createAlerts.interval',
    code: 'UNKNOWN_OPTION',
    suggestion: 'intervalMs',
  },
  {
    what: 'createAlerts rule forMs',
    call: () =>
      createAlerts({
        metrics,
        rules: [{ name: 'a', expr: { kind: 'value', metric: 'm', op: '>', threshold: 1 }, forMs: -1 }],
      }),
    option: 'createAlerts.rules[0].forMs',
  },
  {
    what: 'createAlerts rule for (not forMs)',
    call: () =>
      createAlerts({
        metrics,
        rules: [{ name: 'a', expr: { kind: 'value', metric: 'm', op: '>', threshold: 1 }, for: 5 } as never],
      }),
    option: 'createAlerts.rules[0].for',
    code: 'UNKNOWN_OPTION',
    suggestion: 'forMs',
  },
  {
    what: 'createAlerts expr kind',
    call: () => createAlerts({ metrics, rules: [{ name: 'a', expr: { kind: 'nope' } as never }] }),
    option: 'createAlerts.rules[0].expr.kind',
  },
  {
    what: 'createAlerts expr op',
    call: () =>
      createAlerts({
        metrics,
        rules: [{ name: 'a', expr: { kind: 'value', metric: 'm', op: '=~' as never, threshold: 1 } }],
      }),
    option: 'createAlerts.rules[0].expr.op',
  },
  {
    what: 'createAlerts notifier',
    call: () => createAlerts({ metrics, notifiers: [{} as never] }),
    option: 'createAlerts.notifiers[0]',
  },
  {
    what: 'createAlerts registry',
    call: () => createAlerts({ metrics, registry: 1 as never }),
    option: 'createAlerts.registry',
  },
  {
    what: 'defaultAlertRules ratio',
    call: () => defaultAlertRules({ saturationRatio: 2 }),
    option: 'defaultAlertRules.saturationRatio',
  },
  {
    what: 'defaultAlertRules typo',
    call: () => defaultAlertRules({ bulkheadUse: 0.5 } as never),
    option: 'defaultAlertRules.bulkheadUse',
    code: 'UNKNOWN_OPTION',
  },
  {
    what: 'createLogs logger',
    call: () => createLogs({ registry: false, logger: {} as never }),
    option: 'createLogs.logger',
  },
  {
    what: 'createLogs events',
    call: () => createLogs({ registry: false, events: { stateChange: 'loud' as never } }),
    option: 'createLogs.events.stateChange',
  },
  {
    what: 'createLogs registry',
    call: () => createLogs({ registry: 'x' as never }),
    option: 'createLogs.registry',
  },
  {
    what: 'sloTracker source',
    call: () => sloTracker({ source: {} as never, objective: 0.9 }),
    option: 'sloTracker.source',
  },
  {
    what: 'sloTracker objective',
    call: () => sloTracker({ source, objective: 1 }),
    option: 'sloTracker.objective',
  },
  {
    what: 'sloTracker latency',
    call: () => sloTracker({ source, objective: 0.9, latency: { thresholdMs: 0, objective: 0.9 } }),
    option: 'sloTracker.latency.thresholdMs',
  },
  {
    what: 'sloTracker typo',
    call: () => sloTracker({ source, objective: 0.9, window: 5 } as never),
    option: 'sloTracker.window',
    code: 'UNKNOWN_OPTION',
    suggestion: 'windowMs',
  },
  { what: 'RollingWindow', call: () => new RollingWindow(0, 10), option: 'RollingWindow.bucketMs' },
  {
    what: 'webhookNotifier url',
    call: () => webhookNotifier({ url: 'not a url' }),
    option: 'webhookNotifier.url',
  },
  {
    what: 'webhookNotifier timeoutMs',
    call: () => webhookNotifier({ url: 'http://a', timeoutMs: 0 }),
    option: 'webhookNotifier.timeoutMs',
  },
  {
    what: 'webhookNotifier typo',
    call: () => webhookNotifier({ url: 'http://a', timeout: 5 } as never),
    option: 'webhookNotifier.timeout',
    code: 'UNKNOWN_OPTION',
    suggestion: 'timeoutMs',
  },
  {
    what: 'logNotifier logger',
    call: () => logNotifier({ logger: {} as never }),
    option: 'logNotifier.logger',
  },
  // bulwark/health
  { what: 'customCheck name', call: () => customCheck({ name: 'a:b', run }), option: 'customCheck.name' },
  {
    what: 'customCheck run',
    call: () => customCheck({ name: 'a', run: 5 as never }),
    option: 'customCheck.run',
  },
  {
    what: 'customCheck intervalMs',
    call: () => customCheck({ name: 'a', run, intervalMs: 0 }),
    option: 'customCheck.intervalMs',
  },
  {
    what: 'customCheck historySize (renamed)',
    call: () => customCheck({ name: 'a', run, historySize: 5 } as never),
    option: 'customCheck.historySize',
    code: 'UNKNOWN_OPTION',
  },
  {
    what: 'customCheck typo',
    call: () => customCheck({ name: 'a', run, timeoutMS: 5 } as never),
    option: 'customCheck.timeoutMS',
    code: 'UNKNOWN_OPTION',
    suggestion: 'timeoutMs',
  },
  {
    what: 'customCheck registry',
    call: () => customCheck({ name: 'a', run, registry: {} as never }),
    option: 'customCheck.registry',
  },
  { what: 'httpCheck url', call: () => httpCheck({ url: 'ftp://x' }), option: 'httpCheck.url' },
  {
    what: 'httpCheck liveness',
    call: () => httpCheck({ url: 'http://x', liveness: true }),
    option: 'httpCheck.liveness',
  },
  { what: 'tcpCheck port', call: () => tcpCheck({ port: 70_000 }), option: 'tcpCheck.port' },
  {
    what: 'postgresCheck client',
    call: () => postgresCheck({ client: 5 as never }),
    option: 'postgresCheck.client',
  },
  { what: 'redisCheck client', call: () => redisCheck({ client: {} as never }), option: 'redisCheck.client' },
  { what: 'breakerCheck breaker', call: () => breakerCheck({} as never), option: 'breakerCheck.breaker' },
  { what: 'queueCheck queue', call: () => queueCheck({} as never), option: 'queueCheck.queue' },
  {
    what: 'queueCheck onDeadGrowth',
    call: () =>
      queueCheck({ stats: async () => ({ pending: 0, dead: 0 }) } as never, {
        onDeadGrowth: 'explode' as never,
      }),
    option: 'queueCheck.onDeadGrowth',
  },
  {
    what: 'eventLoopCheck failMs',
    call: () => eventLoopCheck({ failMs: 0 }),
    option: 'eventLoopCheck.failMs',
  },
  {
    what: 'createHealthMonitor checks',
    call: () => createHealthMonitor({ checks: [{ name: 'x' } as never] }),
    option: 'healthMonitor.checks[0]',
  },
  {
    what: 'createHealthMonitor group',
    call: () => createHealthMonitor({ checks: [], groups: { db: ['nope'] } }),
    option: 'healthMonitor.groups.db[0]',
  },
  {
    what: 'createHealthMonitor typo',
    call: () => createHealthMonitor({ checks: [], autostart: false } as never),
    option: 'healthMonitor.autostart',
    code: 'UNKNOWN_OPTION',
    suggestion: 'autoStart',
  },
  {
    what: 'createHealthMonitor registry',
    call: () => createHealthMonitor({ checks: [], registry: 5 as never }),
    option: 'healthMonitor.registry',
  },
  {
    what: 'createHealthMonitor check owned twice',
    call: () => {
      const c = customCheck({ name: 'x', run });
      createHealthMonitor({ checks: [c], autoStart: false });
      return createHealthMonitor({ checks: [c], autoStart: false });
    },
    option: 'healthMonitor.checks[0]',
  },
  {
    what: 'createDegradation recoverAfterMs',
    call: () => createDegradation({ recoverAfterMs: -1 }),
    option: 'degradation.recoverAfterMs',
  },
  {
    what: 'createDegradation initial',
    call: () => createDegradation({ initial: 'panic' as never }),
    option: 'degradation.initial',
  },
  {
    what: 'Hysteresis options',
    call: () => new Hysteresis('normal', 0, { degradeAfterMs: -1, recoverAfterMs: 0 }),
    option: 'Hysteresis.options.degradeAfterMs',
  },
  {
    what: 'LatencyWindow windowMs',
    call: () => new LatencyWindow(0, undefined as never),
    option: 'LatencyWindow.windowMs',
  },
  { what: 'healthHandler monitor', call: () => healthHandler({} as never), option: 'healthHandler.monitor' },
  {
    what: 'healthHandler paths',
    call: () => healthHandler(monitor, { paths: { health: 'health' } }),
    option: 'healthHandler.paths.health',
  },
  {
    what: 'healthHandler details',
    call: () => healthHandler(monitor, { details: 'sometimes' as never }),
    option: 'healthHandler.details',
  },
  {
    what: 'expressHealth typo',
    call: () => expressHealth(monitor, { cachecontrol: 'x' } as never),
    option: 'healthHandler.cachecontrol',
    code: 'UNKNOWN_OPTION',
    suggestion: 'cacheControl',
  },
  {
    what: 'fastifyHealth monitor',
    call: () => fastifyHealth({} as never, { monitor: undefined as never }),
    option: 'fastifyHealth.monitor',
  },
  {
    what: 'gracefulShutdown signals',
    call: () => gracefulShutdown({ signals: ['SIGKILL'], exit: false, logger: false }),
    option: 'gracefulShutdown.signals[0]',
  },
  {
    what: 'GracefulShutdown deadlineMs',
    call: () => new GracefulShutdown({ deadlineMs: 0, signals: [] }),
    option: 'gracefulShutdown.deadlineMs',
  },
  {
    what: 'gracefulShutdown typo',
    call: () => gracefulShutdown({ deadline: 5 } as never),
    option: 'gracefulShutdown.deadline',
    code: 'UNKNOWN_OPTION',
    suggestion: 'deadlineMs',
  },
];

async function thrown(call: () => unknown): Promise<unknown> {
  try {
    await call();
  } catch (error) {
    return error;
  }
  return undefined;
}

describe('bulwark/metrics and bulwark/health: one validation path → ConfigError', () => {
  it.each(CASES.map((c) => [c.what, c] as const))('%s', async (_what, c) => {
    const error = await thrown(c.call);
    expect(error).toBeInstanceOf(ConfigError);
    const e = error as ConfigError;
    expect(e.option).toBe(c.option);
    expect(e.code).toBe(c.code ?? 'INVALID_OPTION');
    if (c.suggestion !== undefined) expect(e.suggestion).toBe(c.suggestion);
    expect(e.rule).not.toBe('');
  });
});
