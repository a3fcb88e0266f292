import { readFileSync } from 'node:fs';
import { createFakeClock } from 'bulwark/testing';
import { describe, expect, it } from 'vitest';
import { faultProxy } from '../proxy/proxy.js';
import { ExperimentFileError, parseExperimentText } from './load.js';
import { readMetric, withinTolerance } from './probes.js';
import { htmlReport, textReport } from './report.js';
import { runExperiment } from './runner.js';
import { experimentJsonSchema } from './schema.js';
import { scoreOf } from './score.js';
import { fillTemplate } from './setup.js';
import { percentile, startTraffic } from './traffic.js';

/** A disabled fault proxy named `dep` on a free port (its upstream is never dialled). */
const idleProxy = () =>
  faultProxy({ name: 'dep', listen: '127.0.0.1:0', upstream: '127.0.0.1:9', enabled: false });

const base = {
  title: 't',
  durationMs: 2_000,
  load: { url: 'http://in-process.invalid', rate: 100 },
  'steady-state-hypothesis': { probes: [{ name: 'ok', type: 'successRatio', tolerance: { min: 0.99 } }] },
};

describe('open-loop load', () => {
  it('sends on schedule while answers are pending, and measures latency from the scheduled time', async () => {
    const clock = createFakeClock();
    const pending: Array<() => void> = [];
    const t = startTraffic({
      rate: 100,
      clock,
      send: () => new Promise((resolve) => pending.push(() => resolve({ ok: true, status: 200 }))),
    });
    await clock.tick(1_000);
    expect(pending.length).toBe(101); // nothing answered, yet every request left on time (t = 0 … 1000)
    for (const answer of pending.splice(0)) answer();
    const stopped = t.stop();
    await stopped;
    const w = t.recorder.window(0, 1_001);
    expect(w.requests).toBe(101);
    expect(w.latencies[0]).toBe(0); // scheduled at 1000, answered at 1000
    expect(w.latencies.at(-1)).toBe(1_000); // scheduled at 0, answered at 1000
    expect(percentile(w.latencies, 50)).toBe(500);
  });

  // Deliberate repetition: a test set-up of the same shape as another test's (other names and values);
  // each test spells out its own scenario.
  it('counts requests beyond maxInFlight as errors without sending them', async () => {
    const clock = createFakeClock();
    let sent = 0;
    const t = startTraffic({
      rate: 1_000,
      clock,
      maxInFlight: 5,
      send: () => {
        sent++;
        return new Promise(() => {});
      },
    });
    await clock.tick(100);
    expect(sent).toBe(5);
    expect(t.recorder.window(0, 1_000).errors).toBe(96);
  });
});

describe('probes, tolerance and score', () => {
  it('judges tolerances', () => {
    expect(withinTolerance(0.995, { min: 0.99 })).toBe(true);
    expect(withinTolerance(0.98, { min: 0.99 })).toBe(false);
    expect(withinTolerance(200, { equals: 200 })).toBe(true);
    expect(withinTolerance(120, { max: 100 })).toBe(false);
    expect(withinTolerance(Number.NaN, { max: 100 })).toBe(false);
    expect(withinTolerance(true, {})).toBe(true);
    expect(withinTolerance(false, {})).toBe(false);
  });

  it('reads a Prometheus sample by name and labels, summing matches', () => {
    const text = '# HELP x\nx_total{a="1",b="2"} 3\nx_total{a="1",b="3"} 4\nx_total_other 9\ny 1.5\n';
    expect(readMetric(text, 'x_total')).toBe(7);
    expect(readMetric(text, 'x_total{b="3"}')).toBe(4);
    expect(readMetric(text, 'y')).toBe(1.5);
    expect(readMetric(text, 'z')).toBeNaN();
  });

  it('scores as Litmus does: Σ wᵢpᵢ / Σ wᵢ', () => {
    const p = (weight: number, passed: boolean) =>
      ({ name: 'p', type: 'successRatio', weight, value: 1, tolerance: {}, passed }) as const;
    expect(scoreOf([p(3, true), p(9, true)])).toBe(100);
    expect(scoreOf([p(3, true), p(9, false)])).toBe(25);
    expect(scoreOf([p(0, false), p(2, true)])).toBe(100); // weight 0: informative only
    expect(scoreOf([])).toBe(0);
  });

  it('fills templates and refuses unknown names', () => {
    // biome-ignore-start lint/suspicious/noTemplateCurlyInString: the experiment format's own templates
    expect(fillTemplate('${a.b}/x?id=${seq}', { a: { b: 'http://h' } })).toBe('http://h/x?id=${seq}');
    expect(fillTemplate('${nope:-7}', {})).toBe('7');
    expect(() => fillTemplate('${nope}', {})).toThrow(/unknown template value \$\{nope\}/);
    // biome-ignore-end lint/suspicious/noTemplateCurlyInString: the experiment format's own templates
  });
});

describe('experiment files', () => {
  it('points at file:line:col with the dotted path', async () => {
    const text = `title: t\ndurationMs: 1000\nsteady-state-hypothesis:\n  probes:\n    - { name: ok, type: successRatio, tolerance: { min: 0.9 } }\nmethod:\n  - type: toxic\n    proxy: redis\n    toxic: { type: latency, toxicity: 2 }\n`;
    const err = await parseExperimentText(text, 'e.yaml').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ExperimentFileError);
    expect((err as Error).message).toMatch(/^e\.yaml:9:\d+ method\[0\]\.toxic\.toxicity: /);
    const typo = await parseExperimentText(text.replace('durationMs', 'duratonMs'), 'e.yaml').catch(
      (e: Error) => e.message,
    );
    expect(typo).toMatch(/^e\.yaml:2:1 duratonMs: .*durationMs/);
  });

  it('reads JSON too, and applies the ci overrides only when asked', async () => {
    const json = JSON.stringify({
      ...base,
      method: [{ type: 'sleep', durationMs: 1 }],
      ci: { durationMs: 300 },
    });
    expect((await parseExperimentText(json, 'e.json')).durationMs).toBe(2_000);
    expect((await parseExperimentText(json, 'e.json', { ci: true })).durationMs).toBe(300);
  });

  it('publishes the JSON Schema it validates with (docs/chaos-experiment.schema.json is current)', () => {
    const published = JSON.parse(
      readFileSync(new URL('../../../docs/chaos-experiment.schema.json', import.meta.url), 'utf8'),
    );
    expect(published).toEqual(JSON.parse(JSON.stringify(experimentJsonSchema())));
  });
});

describe('runExperiment on a fake clock', () => {
  it('runs control then experiment, shades the fault window, removes the fault, scores 100', async () => {
    const clock = createFakeClock();
    const proxy = await idleProxy();
    const events: string[] = [];
    const running = runExperiment(
      {
        ...base,
        control: { durationMs: 1_000 },
        method: [
          {
            type: 'toxic',
            proxy: 'dep',
            toxic: { type: 'latency', attributes: { latency: 10 } },
            durationMs: 500,
            pauses: { beforeMs: 200 },
          },
        ],
      },
      {
        clock,
        proxies: { dep: proxy },
        send: async () => ({ ok: true, status: 200 }),
        onEvent: (e) => events.push(e.event === 'phase' ? e.phase : e.event),
      },
    );
    for (let i = 0; i < 60; i++) await clock.tick(100);
    const r = await running;
    expect(r.status).toBe('passed');
    expect(r.score).toBe(100);
    expect(r.control?.requests).toBeGreaterThanOrEqual(100); // 100 req/s for 1 s (the edge request is timing order)
    expect(r.control?.requests).toBeLessThanOrEqual(101);
    expect(r.experiment?.faults).toEqual([{ label: 'latency on dep', startMs: 200, endMs: 700 }]);
    expect(proxy.toxics).toEqual([]);
    expect(events).toEqual(['setup', 'control', 'experiment', 'activity', 'rollbacks', 'teardown']);
    expect(textReport(r)).toContain('PASSED');
    expect(htmlReport(r)).toContain('class="fault"');
    await proxy.close();
  });

  it('aborts on a failing abort condition: faults removed at once, rollbacks run, status aborted', async () => {
    const clock = createFakeClock();
    const proxy = await idleProxy();
    const running = runExperiment(
      {
        ...base,
        durationMs: 10_000,
        method: [
          {
            type: 'toxic',
            proxy: 'dep',
            toxic: { type: 'latency', attributes: { latency: 10 } },
            pauses: { beforeMs: 1_000 },
          },
        ],
        rollbacks: [{ type: 'sleep', name: 'rollback ran', durationMs: 0 }],
        abort: {
          probes: [{ name: 'ok now', type: 'successRatio', tolerance: { min: 0.9 } }],
          everyMs: 100,
          windowMs: 500,
        },
      },
      { clock, proxies: { dep: proxy }, send: async () => ({ ok: proxy.toxics.length === 0 }) },
    );
    for (let i = 0; i < 40; i++) await clock.tick(100);
    const r = await running;
    expect(r.status).toBe('aborted');
    expect(r.abort?.decidedAtMs).toBeGreaterThan(1_000);
    expect(r.abort?.decidedAtMs).toBeLessThan(2_500);
    expect(r.abort?.clearedAfterMs).toBe(0);
    expect(proxy.toxics).toEqual([]);
    expect(r.rollbacks).toEqual([{ label: 'rollback ran', type: 'sleep', atMs: 0, ok: true }]);
    expect(r.score).toBe(0);
    await proxy.close();
  });

  it('a stalled dependency trips a latency abort condition before any request times out', async () => {
    const clock = createFakeClock();
    let stalled = false;
    const running = runExperiment(
      {
        ...base,
        durationMs: 10_000,
        load: { url: 'http://in-process.invalid', rate: 100, timeoutMs: 5_000 },
        method: [{ type: 'sleep', durationMs: 0 }],
        abort: {
          probes: [{ name: 'p99 under 300 ms', type: 'latency', percentile: 99, tolerance: { max: 300 } }],
          everyMs: 100,
        },
      },
      {
        clock,
        send: () =>
          stalled
            ? new Promise((r) => clock.setTimeout(() => r({ ok: false }), 5_000))
            : Promise.resolve({ ok: true }),
      },
    );
    await clock.tick(1_000);
    stalled = true;
    for (let i = 0; i < 100; i++) await clock.tick(100);
    const r = await running;
    expect(r.status).toBe('aborted');
    expect(r.abort?.decidedAtMs).toBeLessThan(1_600); // the stall began at 1000 ms
  });

  it('Ctrl-C (the signal) stops the run with every fault removed: status interrupted', async () => {
    const clock = createFakeClock();
    const proxy = await idleProxy();
    const ctrlC = new AbortController();
    const running = runExperiment(
      {
        ...base,
        durationMs: 60_000,
        method: [{ type: 'toxic', proxy: 'dep', toxic: { type: 'latency', attributes: { latency: 10 } } }],
        rollbacks: [{ type: 'sleep', name: 'rollback after Ctrl-C', durationMs: 0 }],
      },
      { clock, proxies: { dep: proxy }, send: async () => ({ ok: true }), signal: ctrlC.signal },
    );
    await clock.tick(500);
    expect(proxy.toxics.length).toBe(1);
    ctrlC.abort();
    for (let i = 0; i < 5; i++) await clock.tick(100);
    const r = await running;
    expect(r.status).toBe('interrupted');
    expect(proxy.toxics).toEqual([]);
    expect(r.rollbacks.map((x) => x.label)).toEqual(['rollback after Ctrl-C']);
    await proxy.close();
  });
});
