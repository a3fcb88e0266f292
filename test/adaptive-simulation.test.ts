/**
 * Acceptance 2: each adaptive concurrency algorithm against a simulated server on the fake
 * clock. The server's latency is base 10 ms up to a knee of 20 concurrent calls, then grows
 * linearly with concurrency (queueing: 10 ms × n / 20), with ±10 % seeded noise. 60 closed-loop
 * clients keep the limiter saturated (they wait in its unbounded queue). Each limit must settle
 * near the knee, fall during an injected ×5 latency spike, and come back after it.
 *
 * Tolerance: the mean limit over the 2 s before the spike and over the last 2 s of the run
 * lies in [0.8, 2] × knee = [16, 40]; the lowest limit during the spike is below 0.75 × the
 * limit before it. Measured (seed 42/7): aimd 22.5 → 1 → 33.4; vegas 23.1 → 9 → 24.3;
 * gradient2 33.5 → 18 → 35.3. Delay-based algorithms settle where latency has grown by their
 * tolerance (gradient2: rttTolerance 1.5 → ~34, the theory gives 34 for this server). Gradient2's
 * long RTT average follows a lasting latency, so in this closed loop its limit keeps creeping
 * up slowly (~0.1 per second: 41 at 90 s, 50 at 200 s): it is checked 25 s after the spike.
 * The simulations use minLimit 1 (the defaults' floor of 20 would hide the reaction to the
 * spike) and initialLimit 5 (so the limit has to climb to the knee); aimd uses timeout 15 ms
 * (1.5 × base latency) as its drop signal, since this server never fails.
 */
import { describe, expect, it } from 'vitest';
import { type AdaptiveConcurrencyOptions, adaptiveConcurrency } from '../src/limits/adaptive-concurrency.js';
import { createFakeClock, seededRandom } from '../src/testing/index.js';

const BASE = 10;
const KNEE = 20;
const CLIENTS = 60;

interface Trace {
  at(ms: number): number;
  mean(fromMs: number, toMs: number): number;
  min(fromMs: number, toMs: number): number;
}

async function simulate(
  options: AdaptiveConcurrencyOptions,
  spikeFrom: number,
  spikeTo: number,
  endMs: number,
): Promise<Trace> {
  const clock = createFakeClock();
  const rnd = seededRandom(42);
  const limiter = adaptiveConcurrency({
    ...options,
    clock,
    random: seededRandom(7),
    queue: Number.POSITIVE_INFINITY,
  });
  let serverInflight = 0;
  const server = () => {
    serverInflight++;
    const n = serverInflight;
    const spike = clock.now() >= spikeFrom && clock.now() < spikeTo ? 5 : 1;
    const latency = BASE * Math.max(1, n / KNEE) * spike * (0.9 + 0.2 * rnd());
    return new Promise<void>((resolve) =>
      clock.setTimeout(() => {
        serverInflight--;
        resolve();
      }, latency),
    );
  };
  let running = true;
  const worker = async () => {
    while (running) await limiter.execute(server);
  };
  const workers = Array.from({ length: CLIENTS }, worker);
  // the limit sampled every 100 ms
  const samples: number[] = [];
  for (let t = 0; t < endMs; t += 100) {
    samples.push(limiter.limit);
    await clock.tick(100);
  }
  running = false;
  await clock.runAll(100_000);
  await Promise.all(workers);
  const idx = (ms: number) => Math.min(samples.length - 1, Math.floor(ms / 100));
  const slice = (a: number, b: number) => samples.slice(idx(a), idx(b));
  return {
    at: (ms) => samples[idx(ms)] ?? Number.NaN,
    mean: (a, b) => {
      const s = slice(a, b);
      return s.reduce((x, y) => x + y, 0) / s.length;
    },
    min: (a, b) => Math.min(...slice(a, b)),
  };
}

describe('adaptive concurrency against a simulated server (knee at 20)', () => {
  it.each([
    ['aimd', { algorithm: 'aimd', initialLimit: 5, minLimit: 1, timeoutMs: 15 }, 5_000, 10_000, 20_000],
    ['vegas', { algorithm: 'vegas', initialLimit: 5 }, 5_000, 10_000, 20_000],
    ['gradient2', { algorithm: 'gradient2', initialLimit: 5, minLimit: 1 }, 40_000, 50_000, 75_000],
  ] as const)(
    '%s converges near the knee and recovers after a latency spike',
    async (_name, options, spikeFrom, spikeTo, end) => {
      const trace = await simulate(options, spikeFrom, spikeTo, end);
      const before = trace.mean(spikeFrom - 2_000, spikeFrom);
      const during = trace.min(spikeFrom, spikeTo);
      const after = trace.mean(end - 2_000, end);
      if (process.env.SIM_TRACE) for (let t = 0; t < end; t += 5_000) console.log(t, trace.at(t));
      console.log(
        `${_name}: before ${before.toFixed(1)}, min during spike ${during}, after ${after.toFixed(1)}`,
      );
      // converged: within [0.8, 2] × knee (delay-based algorithms settle where latency has grown
      // by their tolerance, i.e. a little above the knee)
      expect(before).toBeGreaterThanOrEqual(0.8 * KNEE);
      expect(before).toBeLessThanOrEqual(2 * KNEE);
      // reacted to the spike
      expect(during).toBeLessThan(0.75 * before);
      // recovered
      expect(after).toBeGreaterThanOrEqual(0.8 * KNEE);
      expect(after).toBeLessThanOrEqual(2 * KNEE);
    },
    60_000,
  );
});
