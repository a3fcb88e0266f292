/**
 * A narrated tour of Bulwark: `npm start`.
 *
 * A flaky "payments API" is protected by one pipeline. Over a few seconds you see retries with
 * backoff, the breaker opening and half-opening, the fallback answering, the bulkhead
 * rejecting, and a timeout abandoning a hung call — each printed with the reason.
 */

import {
  BrokenCircuitError,
  BulkheadRejectedError,
  backoff,
  bulkhead,
  circuitBreaker,
  fallback,
  handle,
  pipeline,
  retry,
  TimeoutError,
  timeout,
} from 'bulwark';

const color = process.stdout.isTTY && !process.env.NO_COLOR;
const paint = (code: number) => (s: string) => (color ? `\x1b[${code}m${s}\x1b[0m` : s);
const bold = paint(1);
const dim = paint(2);
const red = paint(31);
const green = paint(32);
const yellow = paint(33);
const cyan = paint(36);

const t0 = performance.now();
const stamp = () => dim(`[${((performance.now() - t0) / 1000).toFixed(2)}s]`);
const say = (s: string) => console.log(`${stamp()} ${s}`);
const chapter = (n: number, title: string, why: string) => {
  console.log(`\n${bold(`${n}. ${title}`)}\n   ${dim(why)}`);
};
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

// ---------------------------------------------------------------------------------------------
// The dependency: a payments API we can make healthy, flaky, down or hung.
type Mode = 'healthy' | 'flaky' | 'down' | 'slow' | 'hung';
let mode: Mode = 'healthy';
let flakyFailuresLeft = 0;
let calls = 0;

class UpstreamError extends Error {
  constructor(readonly status: number) {
    super(`payments API answered ${status}`);
  }
}

async function chargeCard(signal: AbortSignal, amount: number): Promise<string> {
  calls++;
  if (mode === 'hung') {
    await new Promise<void>((_, reject) => signal.addEventListener('abort', () => reject(signal.reason)));
  }
  if (mode === 'slow') await sleep(100);
  else await sleep(5);
  if (mode === 'down') throw new UpstreamError(503);
  if (mode === 'flaky' && flakyFailuresLeft > 0) {
    flakyFailuresLeft--;
    throw Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' });
  }
  return `charged $${amount}`;
}

// ---------------------------------------------------------------------------------------------
// The protection: one pipeline, outermost first.
const breaker = circuitBreaker({
  name: 'payments',
  breaker: { kind: 'consecutive', threshold: 3 },
  halfOpenAfterMs: 600,
});
const retries = retry({
  name: 'payments-retry',
  maxAttempts: 3,
  backoff: backoff.exponential({ initialMs: 50, maxMs: 400, jitter: 'full' }),
  handle: handle.transient(),
});
const pool = bulkhead({ name: 'payments-pool', limit: 2, queue: 2 });

const policy = pipeline(
  fallback((outcome) => `queued for later (${'error' in outcome ? describe(outcome.error) : 'bad result'})`, {
    name: 'payments-fallback',
  }),
  timeout({ timeoutMs: 2_000, name: 'overall' }),
  retries,
  breaker,
  timeout({ timeoutMs: 300, strategy: 'abandon', name: 'per-attempt' }),
  pool,
);

function describe(error: unknown): string {
  if (error instanceof BrokenCircuitError) return `breaker ${error.state}`;
  if (error instanceof BulkheadRejectedError) return 'bulkhead full';
  if (error instanceof TimeoutError) return `timed out after ${error.timeoutMs} ms`;
  return error instanceof Error ? error.message : String(error);
}

// Narrate what the policies do, from their events.
retries.onRetry((e) =>
  say(
    yellow(
      `  ↻ retry: attempt ${e.attempt} failed (${describe(e.error)}); waiting ${Math.round(e.delayMs)} ms`,
    ),
  ),
);
retries.onGiveUp((e) => say(red(`  ✗ retry gave up after attempt ${e.attempt} (${e.reason})`)));
breaker.onStateChange((e) => {
  const why = e.reason ? ` — ${e.reason}` : '';
  const paintState = e.to === 'open' ? red : e.to === 'closed' ? green : cyan;
  say(
    paintState(
      `  ⚡ breaker ${e.from} → ${e.to}${why}${e.breakMs !== undefined ? `; probing in ${e.breakMs} ms` : ''}`,
    ),
  );
});
pool.onEvent((e) => {
  if (e.event === 'reject')
    say(red(`  ⛔ bulkhead rejected a call: ${e.inFlight} running, ${e.queued} queued`));
});

async function charge(amount: number): Promise<void> {
  let attempts = 0;
  const started = performance.now();
  const result = await policy.execute(({ signal, attempt }) => {
    attempts = attempt;
    return chargeCard(signal, amount);
  });
  const ms = Math.round(performance.now() - started);
  const paintResult = result.startsWith('charged') ? green : yellow;
  say(`  → $${amount}: ${paintResult(result)} ${dim(`(${attempts} attempt(s) reached the API, ${ms} ms)`)}`);
}

// ---------------------------------------------------------------------------------------------
console.log(bold('Bulwark tour'));
console.log(
  dim(
    'A payments call protected by: fallback > timeout 2 s > retry ×3 (exp. backoff, full jitter) > breaker (3 failures, 600 ms) > timeout 300 ms per attempt > bulkhead (2 + 2 queued)',
  ),
);

chapter(1, 'A healthy dependency', 'On the success path every policy is nearly free: one call, no retries.');
await charge(10);

chapter(
  2,
  'A flaky dependency: retries with backoff',
  'ECONNRESET is transient, so the retry policy tries again after a jittered, growing delay.',
);
mode = 'flaky';
flakyFailuresLeft = 2;
await charge(20);

chapter(
  3,
  'The dependency goes down: the breaker opens',
  '503s are transient, so they are retried; after 3 consecutive failures the breaker opens and later calls fail fast — the fallback answers instead.',
);
mode = 'down';
await charge(30);
await charge(40);
say(dim(`  breaker state: ${breaker.state}; upstream calls so far: ${calls}`));

chapter(
  4,
  'Half-open: probing for recovery',
  'After the break the next call is let through as a probe; its success closes the breaker.',
);
mode = 'healthy';
await sleep(650);
await charge(50);
say(dim(`  breaker state: ${breaker.state}`));

chapter(
  5,
  'Overload: the bulkhead rejects',
  'Only 2 calls run at once and 2 may wait; the other 4 of 8 concurrent calls are rejected at once, and the fallback answers them.',
);
mode = 'slow';
await Promise.all([60, 61, 62, 63, 64, 65, 66, 67].map((amount) => charge(amount)));
say(
  dim(
    `  bulkhead now: ${pool.inFlight} running, ${pool.queued} queued, ${pool.snapshot().counters.rejections} rejected in total`,
  ),
);

chapter(
  6,
  'A hung dependency: timeouts',
  'Each attempt is abandoned after 300 ms even though the call never returns; the overall 2 s timeout bounds everything.',
);
mode = 'hung';
await charge(70);

console.log(
  `\n${bold('Done.')} ${dim(`${calls} upstream calls in ${((performance.now() - t0) / 1000).toFixed(1)} s.`)} Read docs/policies.md next.`,
);
