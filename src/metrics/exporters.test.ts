import {
  AggregationTemporality,
  InMemoryMetricExporter,
  MeterProvider,
  PeriodicExportingMetricReader,
} from '@opentelemetry/sdk-metrics';
import { createRegistry } from 'bulwark';
import { Counter, type OpenMetricsContentType, Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import {
  FAKE_BREAKER,
  FAKE_LIMITER,
  FAKE_PIPELINE,
  FakeComponent,
  histogramOf,
} from '../../test/metrics-fakes.js';
import {
  collectFamilies,
  createMetrics,
  metricName,
  otelMetrics,
  prometheusExporter,
  snakeCase,
} from './index.js';
import { replayValues } from './otel.js';

// Deliberate repetition: the end of this file's import list and its first describe/it match other test
// files by shape only (names differ); there is no shared logic to extract.
describe('names', () => {
  it('turns camelCase kinds and fields into Prometheus names', () => {
    expect(snakeCase('circuitBreaker')).toBe('circuit_breaker');
    expect(snakeCase('inFlight')).toBe('in_flight');
    expect(snakeCase('latencyP99Ms')).toBe('latency_p99_ms');
    expect(metricName('healthCheck', 'gauge', 'latencyP99Ms')).toBe(
      'bulwark_health_check_latency_p99_seconds',
    );
    expect(metricName('queue', 'counter', 'waitedMs')).toBe('bulwark_queue_waited_seconds_total');
    expect(snakeCase('burnRate1h')).toBe('burn_rate1h');
    expect(metricName('bulkhead', 'counter', 'rejections')).toBe('bulwark_bulkhead_rejections_total');
    expect(metricName('pipeline', 'histogram', 'durationSeconds')).toBe('bulwark_pipeline_duration_seconds');
  });
});

describe('replayValues', () => {
  it('keeps each value in its bucket and makes the sum exact when it can', () => {
    const bounds = [0.1, 0.5, 1];
    const n = [2, 1, 0, 1];
    const v = replayValues(bounds, n, 0.1 + 0.3 + 2);
    expect(v[0]).toBeGreaterThan(0);
    expect(v[0]).toBeLessThanOrEqual(0.1);
    expect(v[1]).toBeGreaterThan(0.1);
    expect(v[1]).toBeLessThanOrEqual(0.5);
    expect(v[3]).toBeGreaterThan(1);
    const total = v.reduce((a, x, i) => a + x * n[i]!, 0);
    expect(total).toBeCloseTo(2.4, 9);
  });
});

function fixture() {
  const registry = createRegistry();
  const breaker = registry.register(new FakeComponent(FAKE_BREAKER, 'payments'));
  const limiter = registry.register(new FakeComponent(FAKE_LIMITER, 'db'));
  const pipe = registry.register(new FakeComponent(FAKE_PIPELINE, 'checkout'));
  breaker.setState('open');
  breaker.counters.failures = 5;
  limiter.gauges.inFlight = 3;
  limiter.gauges.limit = 10;
  pipe.counters.successes = 4;
  pipe.histograms = { durationSeconds: histogramOf([0.01, 0.1, 1], [0.005, 0.05, 0.05, 2]) };
  return { registry, breaker, limiter, pipe, metrics: createMetrics({ registry }) };
}

describe('Prometheus exporter', () => {
  it('exports state, gauges, counters and histograms of any component', async () => {
    const { metrics, registry } = fixture();
    const { body } = await prometheusExporter({ metrics })();
    expect(body).toContain('bulwark_component_state{kind="fakeBreaker",name="payments",state="open"} 1');
    expect(body).toContain('bulwark_component_state{kind="fakeBreaker",name="payments",state="closed"} 0');
    expect(body).toContain('bulwark_fake_breaker_failures_total{name="payments"} 5');
    expect(body).toContain('# HELP bulwark_fake_breaker_failures_total Calls that failed.');
    expect(body).toContain('bulwark_fake_limiter_in_flight{name="db"} 3');
    expect(body).toContain('bulwark_fake_pipeline_duration_seconds_bucket{name="checkout",le="0.1"} 3');
    expect(body).toContain('bulwark_fake_pipeline_duration_seconds_count{name="checkout"} 4');
    // A component joining later shows up at the next scrape.
    const late = registry.register(new FakeComponent(FAKE_LIMITER, 'late'));
    late.gauges.queued = 7;
    const again = await prometheusExporter({ metrics })();
    expect(again.body).toContain('bulwark_fake_limiter_queued{name="late"} 7');
  });

  it('adds to a prom-client registry of yours, OpenMetrics included, without clashing with yours', async () => {
    const { metrics } = fixture();
    const promRegistry = new Registry<OpenMetricsContentType>();
    promRegistry.setContentType(Registry.OPENMETRICS_CONTENT_TYPE);
    new Counter({ name: 'app_requests_total', help: 'Requests.', registers: [promRegistry] }).inc(3);
    const exporter = prometheusExporter({ metrics, promRegistry: promRegistry as never });
    const { contentType, body } = await exporter();
    expect(contentType).toContain('openmetrics');
    expect(body).toContain('app_requests_total 3');
    expect(body).toContain('bulwark_fake_breaker_failures_total{name="payments"} 5');
    await exporter(); // a second scrape registers nothing twice
    promRegistry.resetMetrics(); // leaves Bulwark's values alone: they live in the components
    expect((await exporter()).body).toContain('bulwark_fake_breaker_failures_total{name="payments"} 5');
  });

  it('leaves out a component whose snapshot throws, and says so', async () => {
    const { metrics, registry } = fixture();
    const bad = new FakeComponent(FAKE_LIMITER, 'broken');
    bad.snapshot = () => {
      throw new Error('boom');
    };
    registry.register(bad);
    const families = collectFamilies(registry);
    expect(families.some((f) => f.samples.some((s) => s.labels.name === 'broken'))).toBe(false);
    expect((await prometheusExporter({ metrics })()).body).toContain('name="db"');
  });
});

describe('OpenTelemetry exporter', () => {
  it('observes state, gauges and counters and replays histograms', async () => {
    const { metrics, pipe } = fixture();
    const exporter = new InMemoryMetricExporter(AggregationTemporality.CUMULATIVE);
    const reader = new PeriodicExportingMetricReader({ exporter, exportIntervalMillis: 60_000 });
    const provider = new MeterProvider({ readers: [reader] });
    const stop = await otelMetrics({ metrics, meter: provider.getMeter('bulwark') });
    await reader.forceFlush();
    const points = () => {
      const out = new Map<string, { attributes: Record<string, unknown>; value: unknown }[]>();
      for (const rm of exporter.getMetrics())
        for (const sm of rm.scopeMetrics)
          for (const m of sm.metrics)
            out.set(
              m.descriptor.name,
              m.dataPoints.map((p) => ({ attributes: p.attributes, value: p.value })),
            );
      return out;
    };
    let p = points();
    expect(p.get('bulwark.component.state')).toContainEqual({
      attributes: { kind: 'fakeBreaker', name: 'payments', state: 'open' },
      value: 1,
    });
    expect(p.get('bulwark.fake_breaker.failures')).toContainEqual({
      attributes: { name: 'payments' },
      value: 5,
    });
    expect(p.get('bulwark.fake_limiter.in_flight')).toContainEqual({ attributes: { name: 'db' }, value: 3 });
    const h = p.get('bulwark.fake_pipeline.duration')![0]!.value as {
      count: number;
      sum: number;
      buckets: { counts: number[] };
    };
    expect(h.count).toBe(4);
    expect(h.sum).toBeCloseTo(2.105, 6);
    expect(h.buckets.counts).toEqual([1, 2, 0, 1]);
    // Only the new observations are replayed at the next collection.
    pipe.histograms = { durationSeconds: histogramOf([0.01, 0.1, 1], [0.005, 0.05, 0.05, 2, 0.5]) };
    exporter.reset();
    await reader.forceFlush();
    p = points();
    const h2 = p.get('bulwark.fake_pipeline.duration')![0]!.value as { count: number; sum: number };
    expect(h2.count).toBe(5);
    expect(h2.sum).toBeCloseTo(2.605, 6);
    stop();
    await provider.shutdown();
  });
});
