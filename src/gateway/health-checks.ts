/**
 * Active health checks of an upstream group, through `bulwark/health`: one `httpCheck` per
 * endpoint (GET `path`, `timeoutMs`, the expected statuses), run by a health monitor every
 * `intervalMs`. `unhealthyThreshold` failures in a row take the endpoint out of the rotation;
 * `healthyThreshold` passes in a row bring it back (and end an outlier ejection, as in Envoy).
 * The monitor and its checks are components of the gateway's registry (the dashboard shows them;
 * the admin API lists them at /admin/health).
 * @module
 */

import type { ComponentEvent } from '../core/component.js';
import type { Registry } from '../core/registry.js';
import { createHealthMonitor, type HealthCheck, type HealthMonitor, httpCheck } from '../health/index.js';
import type { UpstreamConfig } from './config.js';
import type { Endpoint, Upstream } from './upstream.js';

/** The check name of an endpoint (health check names allow letters, digits, `_ . - /`). */
function checkName(e: Endpoint): string {
  return `${e.name.replace(/[^A-Za-z0-9_.\-/]/g, '_')}`;
}

/**
 * The active health checks of one upstream group (one monitor, one check per endpoint).
 *
 * @example
 * ```ts nocheck
 * const health = new UpstreamHealth(upstream, upstream.config.healthCheck!, registry);
 * await health.close();
 * ```
 */
export class UpstreamHealth {
  readonly monitor: HealthMonitor;
  private readonly checks: HealthCheck[];
  private readonly stops: (() => void)[] = [];

  constructor(
    readonly upstream: Upstream,
    config: NonNullable<UpstreamConfig['healthCheck']>,
    private readonly registry: Registry,
  ) {
    this.checks = upstream.endpoints.map((e) => {
      const check = httpCheck({
        name: checkName(e),
        url: `${e.url}${config.path}`,
        intervalMs: config.intervalMs,
        timeoutMs: config.timeoutMs,
        expectStatus: config.expectStatus,
        failureThreshold: config.unhealthyThreshold,
        successThreshold: config.healthyThreshold,
        critical: false,
      });
      this.stops.push(
        check.onEvent((ev) => {
          if (ev.event !== 'stateChange') return;
          const healthy = ev.to !== 'fail';
          if (healthy === e.healthy) return;
          e.healthy = healthy;
          const now = performance.now();
          // A passing check ends an outlier ejection (Envoy).
          if (healthy && e.outlier.ejected(now)) e.outlier.ejectedUntil = 0;
          e.emit({
            kind: e.kind,
            name: e.name,
            event: healthy ? 'healthy' : 'unhealthy',
            output: ev.output ?? null,
          } as ComponentEvent);
        }),
      );
      return check;
    });
    this.monitor = createHealthMonitor({
      checks: this.checks,
      name: `upstream/${upstream.name}`,
      degradation: false,
      registry,
    });
  }

  /** Stops the checks and leaves the registry. */
  async close(): Promise<void> {
    for (const s of this.stops) s();
    this.registry.unregister(this.monitor);
    for (const c of this.checks) this.registry.unregister(c);
    await this.monitor.close();
  }
}
