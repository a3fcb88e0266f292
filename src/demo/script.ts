/**
 * The demo's failure script: what breaks when (seconds on a 30-second timeline, scaled to the
 * run's duration), and how each event is narrated once its effect is visible.
 * @module
 */

import type { Mode } from './upstreams.js';

/** One scripted event. */
export interface ScriptEvent {
  /** Seconds from the start on the 30 s timeline. */
  readonly at: number;
  readonly upstream: string;
  readonly mode: Mode;
  /** What happened, e.g. `payments-eu down`. */
  readonly what: string;
  /** What the gateway should do about it, e.g. `failover to payments-us`. */
  readonly expect: string;
}

/** The script: latency spikes, 503 with Retry-After, a region outage, a hard kill and return. */
export const SCRIPT: readonly ScriptEvent[] = [
  {
    at: 3,
    upstream: 'inventory-1',
    mode: 'slow',
    what: 'inventory-1 latency spike (600-1000 ms)',
    expect: 'per-try timeout → retry on inventory-2, least-latency shifts traffic',
  },
  {
    at: 7,
    upstream: 'inventory-1',
    mode: 'ok',
    what: 'inventory-1 recovered',
    expect: 'traffic spreads again',
  },
  {
    at: 8,
    upstream: 'llm-a',
    mode: 'unavailable',
    what: 'llm-a answers 503 + Retry-After: 1',
    expect: 'streams fail over to llm-b before the first token',
  },
  {
    at: 12,
    upstream: 'payments-eu',
    mode: 'down',
    what: 'payments-eu down (region outage)',
    expect: 'failover to payments-us',
  },
  {
    at: 13,
    upstream: 'llm-a',
    mode: 'ok',
    what: 'llm-a healthy again',
    expect: 'priority tier 0 takes traffic back',
  },
  {
    at: 16,
    upstream: 'payments-us',
    mode: 'down',
    what: 'payments-us down too (no payment region left)',
    expect: 'writes kept and answered 202 (store-and-forward)',
  },
  {
    at: 20,
    upstream: 'payments-us',
    mode: 'ok',
    what: 'payments-us back',
    expect: 'queued writes delivered, each once',
  },
  {
    at: 22,
    upstream: 'payments-eu',
    mode: 'ok',
    what: 'payments-eu back',
    expect: 'ejection ends, tier 0 serves again',
  },
  {
    at: 24,
    upstream: 'inventory-2',
    mode: 'down',
    what: 'inventory-2 hard kill',
    expect: 'connect errors retried on inventory-1, inventory-2 ejected',
  },
  {
    at: 27,
    upstream: 'inventory-2',
    mode: 'ok',
    what: 'inventory-2 returns on the same port',
    expect: 'back in rotation after its ejection',
  },
];

/** The demo's gateway configuration (YAML), for upstream URLs by name. */
export function demoConfig(
  urls: Record<string, string>,
  dataDir: string,
  listen: string,
  admin: string,
): string {
  return `# The bulwark demo's gateway configuration (written by \`bulwark demo\`).
listen: ${listen}
admin: ${admin}
dataDir: ${dataDir}
accessLog: false
upstreams:
  payments:
    strategy: priority
    endpoints:
      - { url: ${urls['payments-eu']}, priority: 0, region: eu }
      - { url: ${urls['payments-us']}, priority: 1, region: us }
    breaker: { threshold: 5, halfOpenAfterMs: 2000 }
    outlierDetection: { baseEjectionTimeMs: 3000, maxEjectionPercent: 50 }
  llm:
    strategy: priority
    endpoints:
      - { url: ${urls['llm-a']}, priority: 0 }
      - { url: ${urls['llm-b']}, priority: 1 }
    outlierDetection: { baseEjectionTimeMs: 3000, maxEjectionPercent: 50 }
  inventory:
    strategy: least-latency
    endpoints:
      - { url: ${urls['inventory-1']} }
      - { url: ${urls['inventory-2']} }
    outlierDetection: { baseEjectionTimeMs: 3000, maxEjectionPercent: 50 }
routes:
  - name: payments
    match: { path: /pay }
    upstream: payments
    timeoutMs: 3000
    retry: { maxAttempts: 3 }
    storeAndForward: true
    priority: { shedAt: 200 }
  - name: llm
    match: { path: /v1 }
    upstream: llm
    retry: { maxAttempts: 3, methods: [POST] }
    idleTimeoutMs: 10000
  - name: inventory
    match: { path: /inventory }
    upstream: inventory
    timeoutMs: 2000
    perTryTimeoutMs: 400
    retry: { maxAttempts: 3 }
    limits: [{ name: per-client, key: "header:x-client", limit: 1000, windowMs: 10000 }]
    priority: { shedAt: 100 }
    hedge: { quantile: 0.95, initialDelayMs: 150, minDelayMs: 20, maxDelayMs: 300 }
    coalesce: { keyHeaders: [x-client, accept] }
    chaos: { enabled: false, latencyMs: 300, rate: 0.2 }   # switch it on from the dashboard
`;
}
