/**
 * The telemetry spine's acceptance check, shared by test/metrics-spine.test.ts (in-process kinds)
 * and test/metrics-spine-servers.test.ts (kinds that need Redis, PostgreSQL, SQLite files or
 * sockets): for every component of a registry, its state, counters, gauges and histograms are in
 * the Prometheus exposition and an OpenTelemetry in-memory reader, its state changes are logged,
 * and `promtool check metrics` accepts the exposition — with no component-specific code.
 */

import { execFileSync, spawnSync } from 'node:child_process';
import {
  AggregationTemporality,
  InMemoryMetricExporter,
  MeterProvider,
  PeriodicExportingMetricReader,
} from '@opentelemetry/sdk-metrics';
import type { Component, Registry } from 'bulwark';
import type { FakeClock } from 'bulwark/testing';
import { pino } from 'pino';
import { expect } from 'vitest';
import {
  createLogs,
  createMetrics,
  metricName,
  otelMetrics,
  otelName,
  prometheusExporter,
} from '../../src/metrics/index.js';
import { isMs } from '../../src/metrics/recorder.js';

export interface Made {
  /** The component under test (already registered). */
  readonly component: Component;
  /** Moves it to another state and makes its figures move. */
  drive(): Promise<void> | void;
  /** Releases what it holds (timers, monitors, connections). */
  close?(): Promise<void> | void;
}

export interface KindCase {
  readonly kind: string;
  make(registry: Registry, clock: FakeClock): Made | Promise<Made>;
}

/** `name{labels} value` lines of an exposition, by series. */
function parseExposition(body: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of body.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const i = line.lastIndexOf(' ');
    out.set(line.slice(0, i), Number(line.slice(i + 1)));
  }
  return out;
}

/** prom-client's label order: the component's labels as given, `le` last. */
const series = (name: string, labels: Record<string, string>) =>
  `${name}{${Object.entries(labels)
    .map(([k, v]) => `${k}="${v}"`)
    .join(',')}}`;

const exported = (field: string, v: number) => (isMs(field) ? v / 1000 : v);

function promtool(): string | undefined {
  const found = spawnSync('sh', ['-c', 'command -v promtool'], { encoding: 'utf8' });
  return found.status === 0 ? found.stdout.trim() : undefined;
}

/**
 * Makes one component of each kind in `registry`, drives them, and checks every one of them in
 * the Prometheus exposition, an OpenTelemetry reader and the logs; then runs `promtool check
 * metrics` on the exposition (FAILS under CI when promtool is missing). Closes what it made.
 */
export async function verifySpine(
  kinds: readonly KindCase[],
  registry: Registry,
  clock: FakeClock,
  singleState: ReadonlySet<string> = new Set(),
): Promise<void> {
  const lines: Record<string, unknown>[] = [];
  const logger = pino({ level: 'info' }, { write: (s: string) => void lines.push(JSON.parse(s)) });
  const logs = createLogs({ registry, logger });
  // Metrics are set up first (as at a service's start): they read durations, so the registry's
  // pipelines time every call from their first one.
  const metrics = createMetrics({ registry, clock });
  const made: { k: KindCase; m: Made }[] = [];
  for (const k of kinds) made.push({ k, m: await k.make(registry, clock) });
  // Every kind is covered, and only through the registry.
  expect(new Set(registry.list().map((c) => c.kind))).toEqual(new Set(kinds.map((k) => k.kind)));
  const before = new Map(registry.list().map((c) => [c, c.snapshot().state]));
  for (const { m } of made) await m.drive();

  const { body } = await prometheusExporter({ metrics })();
  const prom = parseExposition(body);

  const otelExporter = new InMemoryMetricExporter(AggregationTemporality.CUMULATIVE);
  const reader = new PeriodicExportingMetricReader({
    exporter: otelExporter,
    exportIntervalMillis: 3_600_000,
  });
  const provider = new MeterProvider({ readers: [reader] });
  const stopOtel = await otelMetrics({ metrics, meter: provider.getMeter('bulwark') });
  await reader.forceFlush();
  const otel = new Map<string, { attributes: Record<string, unknown>; value: unknown }[]>();
  for (const rm of otelExporter.getMetrics())
    for (const sm of rm.scopeMetrics)
      for (const md of sm.metrics)
        otel.set(md.descriptor.name, [
          ...(otel.get(md.descriptor.name) ?? []),
          ...md.dataPoints.map((p) => ({ attributes: p.attributes, value: p.value })),
        ]);
  const otelValue = (name: string, attributes: Record<string, string>) =>
    otel.get(name)?.find((p) => JSON.stringify(p.attributes) === JSON.stringify(attributes))?.value;

  for (const c of registry.list()) {
    const snap = c.snapshot();
    const d = c.descriptor;
    const who = `${c.kind} ${c.name}`;
    // State: 1 for the current state, 0 for the others, in both exporters.
    for (const state of d.states) {
      const v = state === snap.state ? 1 : 0;
      const labels = { kind: c.kind, name: c.name, state };
      expect(prom.get(series('bulwark_component_state', labels)), `${who} state ${state}`).toBe(v);
      expect(otelValue('bulwark.component.state', labels), `${who} OTel state ${state}`).toBe(v);
    }
    for (const [type, helps, values] of [
      ['gauge', d.gauges, snap.gauges],
      ['counter', d.counters, snap.counters],
    ] as const) {
      for (const field of Object.keys(helps)) {
        const v = values[field];
        expect(v, `${who} reports ${type} ${field}`).toBeTypeOf('number');
        const name = metricName(c.kind, type, field);
        expect(prom.get(series(name, { name: c.name })), `${who} ${name}`).toBe(exported(field, v!));
        expect(body).toContain(`# HELP ${name} ${helps[field]}`);
        const oName = otelName(c.kind, field, type);
        expect(otelValue(oName, { name: c.name }), `${who} OTel ${oName}`).toBe(exported(field, v!));
      }
    }
    for (const [field, h] of Object.entries(snap.histograms ?? {})) {
      const name = metricName(c.kind, 'histogram', field);
      expect(prom.get(series(`${name}_count`, { name: c.name })), `${who} ${name}`).toBe(h.count);
      expect(prom.get(series(`${name}_sum`, { name: c.name }))).toBeCloseTo(h.sum, 9);
      const oName = otelName(c.kind, field, 'histogram');
      expect((otelValue(oName, { name: c.name }) as { count: number }).count, `${who} OTel ${oName}`).toBe(
        h.count,
      );
    }
    // A pipeline times every call while metrics read it: `_count` is the number of calls.
    if (c.kind === 'pipeline') {
      const calls = Object.values(snap.counters).reduce((a, b) => a + b, 0);
      expect(calls, `${who} was called`).toBeGreaterThan(0);
      expect(
        prom.get(series(`${metricName(c.kind, 'histogram', 'durationSeconds')}_count`, { name: c.name })),
        `${who} _count = calls`,
      ).toBe(calls);
    }
    // Its state changes are in the logs.
    if (before.get(c) !== snap.state) {
      expect(
        lines.some(
          (l) =>
            l.kind === c.kind &&
            l.name === c.name &&
            l.event === `bulwark.${c.kind}.stateChange` &&
            l.to === snap.state &&
            l.level === 30,
        ),
        `${who} logged ${before.get(c)} → ${snap.state}`,
      ).toBe(true);
    }
  }
  // Each case's own component changed state when its kind has more than one (so the log check
  // above ran for every kind that can change state).
  for (const { k, m } of made)
    if (m.component.descriptor.states.length > 1 && !singleState.has(k.kind))
      expect(before.get(m.component), k.kind).not.toBe(m.component.snapshot().state);

  // promtool accepts the exposition (FAIL under CI when it is missing: .ci/run installs it).
  const tool = promtool();
  if (tool === undefined) {
    if (process.env.CI === 'true') throw new Error('promtool is missing: apt-get install -y prometheus');
    console.warn('promtool not installed: skipping `promtool check metrics` (apt-get install -y prometheus)');
  } else {
    let out = '';
    try {
      out = execFileSync(tool, ['check', 'metrics'], {
        input: body,
        encoding: 'utf8',
        stdio: ['pipe', 'pipe', 'pipe'],
      });
    } catch (error) {
      const e = error as { stdout?: string; stderr?: string };
      throw new Error(`promtool check metrics failed:\n${e.stdout ?? ''}${e.stderr ?? ''}`);
    }
    expect(out.trim()).toBe('');
  }

  stopOtel();
  await provider.shutdown();
  logs.close();
  for (const { m } of made) await m.close?.();
}
