import {
  AggregationTemporality,
  DataPointType,
  InMemoryMetricExporter,
  MeterProvider,
  PeriodicExportingMetricReader,
} from '@opentelemetry/sdk-metrics';
import { circuitBreaker, pipeline, retry } from 'bulwark';
import { describe, expect, it } from 'vitest';
import { createMetrics, otelMetrics, otelName } from './index.js';

describe('otelMetrics', () => {
  it('names instruments after the Prometheus families', () => {
    expect(otelName('bulwark_calls_total')).toBe('bulwark.calls');
    expect(otelName('bulwark_call_duration_seconds')).toBe('bulwark.call.duration');
  });

  it('exports the sink through an SDK MeterProvider with an in-memory reader', async () => {
    const exporter = new InMemoryMetricExporter(AggregationTemporality.CUMULATIVE);
    const reader = new PeriodicExportingMetricReader({ exporter, exportIntervalMillis: 3_600_000 });
    const provider = new MeterProvider({ readers: [reader] });
    const metrics = createMetrics({ sampleEvery: 1, buckets: [0.001, 1] });
    const stop = await otelMetrics({ metrics, meter: provider.getMeter('bulwark') });
    const p = metrics.track(pipeline(retry({ name: 'r' }), circuitBreaker({ name: 'cb' })), 'api');
    for (let i = 0; i < 5; i++) await p.execute(() => i);
    await p.execute(() => Promise.reject(new Error('x'))).catch(() => {});
    await Promise.resolve();
    await reader.forceFlush();
    const all = exporter.getMetrics().flatMap((rm) => rm.scopeMetrics.flatMap((s) => s.metrics));
    const find = (name: string) => all.filter((m) => m.descriptor.name === name).at(-1)!;
    const calls = find('bulwark.calls');
    const ok = calls.dataPoints.find(
      (d) => d.attributes.outcome === 'success' && d.attributes.name === 'api',
    );
    expect(ok?.value).toBe(5);
    const state = find('bulwark.circuit.state');
    expect(state.dataPoints.find((d) => d.attributes.state === 'closed')?.value).toBe(1);
    const h = find('bulwark.call.duration');
    expect(h.dataPointType).toBe(DataPointType.HISTOGRAM);
    const hp = h.dataPoints[0]!.value as {
      count: number;
      buckets: { boundaries: number[]; counts: number[] };
    };
    expect(hp.count).toBe(6);
    expect(hp.buckets.boundaries).toEqual([0.001, 1]);
    // A second collection replays only the new calls (cumulative total grows by them).
    await p.execute(() => 1);
    await Promise.resolve();
    await reader.forceFlush();
    const again = exporter.getMetrics().flatMap((rm) => rm.scopeMetrics.flatMap((s) => s.metrics));
    const h2 = again.filter((m) => m.descriptor.name === 'bulwark.call.duration').at(-1)!;
    expect((h2.dataPoints[0]!.value as { count: number }).count).toBe(7);
    stop();
    await provider.shutdown();
  });
});

describe('otelMetrics twice (review regression)', () => {
  it('a second call for the same sink and meter shares the first export: nothing counted twice', async () => {
    const exporter = new InMemoryMetricExporter(AggregationTemporality.CUMULATIVE);
    const reader = new PeriodicExportingMetricReader({ exporter, exportIntervalMillis: 3_600_000 });
    const provider = new MeterProvider({ readers: [reader] });
    const meter = provider.getMeter('bulwark');
    const metrics = createMetrics({ sampleEvery: 1 });
    const api = metrics.track(pipeline(retry({ maxAttempts: 1 })), 'api');
    const stop1 = await otelMetrics({ metrics, meter });
    const stop2 = await otelMetrics({ metrics, meter });
    for (let i = 0; i < 5; i++) await api.execute(() => 1);
    await Promise.resolve();
    const histogramCount = async () => {
      await reader.forceFlush();
      const all = exporter.getMetrics().flatMap((rm) => rm.scopeMetrics.flatMap((s) => s.metrics));
      const h = all.filter((m) => m.descriptor.name === 'bulwark.call.duration').at(-1)!;
      expect(h.dataPointType).toBe(DataPointType.HISTOGRAM);
      return (h.dataPoints[0]!.value as { count: number }).count;
    };
    expect(await histogramCount()).toBe(5);
    stop1();
    await api.execute(() => 1);
    await Promise.resolve();
    expect(await histogramCount()).toBe(6); // still exported: stop2 not called yet
    stop2();
    await provider.shutdown();
  });
});
