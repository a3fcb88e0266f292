import { circuitBreaker, pipeline, retry } from 'bulwark';
import { Counter, Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { createMetrics, prometheusExporter, registerPrometheus } from './index.js';

describe('prometheusExporter', () => {
  it('serves the exposition format with the documented names and labels', async () => {
    const metrics = createMetrics({ sampleEvery: 1 });
    const p = metrics.track(pipeline(retry({ name: 'r' }), circuitBreaker({ name: 'payments' })), 'api');
    await p.execute(() => 1);
    await p.execute(() => Promise.reject(new Error('x'))).catch(() => {});
    await Promise.resolve();
    const exporter = prometheusExporter({ metrics });
    const { contentType, body } = await exporter();
    expect(contentType).toMatch(/^text\/plain; version=0\.0\.4/);
    expect(body).toContain('# TYPE bulwark_calls_total counter');
    expect(body).toContain('bulwark_calls_total{policy="pipeline",name="api",outcome="success"} 1');
    expect(body).toContain('bulwark_calls_total{policy="pipeline",name="api",outcome="failure"} 1');
    expect(body).toContain('# TYPE bulwark_call_duration_seconds histogram');
    expect(body).toContain('bulwark_call_duration_seconds_bucket{policy="pipeline",name="api",le="+Inf"} 2');
    expect(body).toContain('bulwark_call_duration_seconds_count{policy="pipeline",name="api"} 2');
    expect(body).toContain('bulwark_circuit_state{name="payments",state="closed"} 1');
    expect(body).toContain('bulwark_circuit_state{name="payments",state="open"} 0');
    expect(body).toContain('bulwark_retries_total{name="r"} 2');
    // A second scrape sees new calls.
    await p.execute(() => 1);
    await Promise.resolve();
    expect((await exporter()).body).toContain(
      'bulwark_calls_total{policy="pipeline",name="api",outcome="success"} 2',
    );
  });

  it('shares a user registry with the user’s own metrics, reading the sink once per scrape', async () => {
    const registry = new Registry();
    const mine = new Counter({ name: 'app_requests_total', help: 'requests', registers: [registry] });
    mine.inc(3);
    const metrics = createMetrics();
    let reads = 0;
    const collect = metrics.collect.bind(metrics);
    metrics.collect = () => {
      reads++;
      return collect();
    };
    registerPrometheus(metrics, registry);
    const text = await registry.metrics();
    expect(text).toContain('app_requests_total 3');
    expect(text).toContain('# TYPE bulwark_ready gauge');
    expect(reads).toBe(1);
    const exporter = prometheusExporter({ metrics: createMetrics(), registry: new Registry() });
    expect((await exporter()).body).toContain('bulwark_calls_total');
  });

  it('rejects a missing sink', () => {
    expect(() => prometheusExporter({} as never)).toThrow(TypeError);
  });
});

describe('prom-client registries (review regressions)', () => {
  it('an OpenMetrics registry gets every counter (prom-client renames metric.name in place)', async () => {
    const metrics = createMetrics({ sampleEvery: 1 });
    const p = metrics.track(pipeline(retry({ name: 'r', maxAttempts: 2 })), 'api');
    await p.execute(() => 1);
    await Promise.resolve();
    const registry = new Registry<typeof Registry.OPENMETRICS_CONTENT_TYPE>();
    registry.setContentType(Registry.OPENMETRICS_CONTENT_TYPE);
    registerPrometheus(metrics, registry as never);
    for (let i = 0; i < 2; i++) {
      const body = await registry.metrics();
      expect(body).toContain('bulwark_calls_total{policy="pipeline",name="api",outcome="success"} 1');
      expect(body).toContain('bulwark_retries_total{name="r"} 0');
    }
  });

  it('registry.resetMetrics() works and leaves the values (they live in the sink)', async () => {
    const metrics = createMetrics({ sampleEvery: 1 });
    const p = metrics.track(pipeline(retry({ name: 'r' })), 'api');
    await p.execute(() => 1);
    await Promise.resolve();
    const registry = new Registry();
    registerPrometheus(metrics, registry as never);
    expect(() => registry.resetMetrics()).not.toThrow();
    expect(await registry.metrics()).toContain(
      'bulwark_calls_total{policy="pipeline",name="api",outcome="success"} 1',
    );
  });
});
