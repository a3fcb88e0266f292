/**
 * A route's per-client limit as a component of the gateway's registry (`gatewayClientLimit`),
 * so the control plane lists it and an operator can look a client up (`peek`), give one client
 * its full allowance back (`reset`), or clear every client's state (`clear`). A limit shared
 * through Redis (the fleet's) has no per-client operations here: its state lives in Redis, and
 * this component reports its settings only.
 * @module
 */

// Deliberate repetition: the component types this file implements (an import list).
import {
  type Component,
  type ComponentEvent,
  type ComponentOperation,
  defineDescriptor,
  type Snapshot,
} from '../core/component.js';
import { type Disposer, Emitter, type Listener } from '../core/events.js';
import { s } from '../core/schema.js';
import { RateLimiter } from '../limits/rate-limiter.js';
import type { ClientLimit, Route } from './route.js';

const descriptor = defineDescriptor({
  kind: 'gatewayClientLimit',
  help: 'A per-client rate limit of a gateway route',
  category: 'limiter',
  states: ['active'],
  gauges: {
    clients: 'clients with state in the limiter now',
    limit: 'requests allowed per window and client',
    windowMs: 'the window, ms',
  },
  counters: {},
});

/**
 * The component of one client limit of a route.
 *
 * @example
 * ```ts nocheck
 * const c = new ClientLimitComponent(route, route.limits[0], 'per-ip');
 * registry.register(c); // listed as gatewayClientLimit/<route>/per-ip
 * ```
 */
export class ClientLimitComponent implements Component {
  readonly kind = 'gatewayClientLimit';
  readonly descriptor = descriptor;
  readonly name: string;
  private readonly events = new Emitter<ComponentEvent>();

  constructor(
    private readonly route: Route,
    private readonly limit: ClientLimit,
    /** Unique among the route's limits. */
    name: string,
  ) {
    this.name = `${route.name}/${name}`;
  }

  /** The limiter's key of a client (the key kind, then the client's value). */
  private keyOf(client: string): string {
    return `${this.limit.key}\u0000${client}`;
  }

  onEvent(listener: Listener<ComponentEvent>): Disposer {
    return this.events.on(listener);
  }

  /** The in-memory limiter, or null for one shared through Redis. */
  private get local(): RateLimiter | null {
    return this.limit.limiter instanceof RateLimiter ? this.limit.limiter : null;
  }

  operations(): readonly ComponentOperation[] {
    const mem = this.local;
    if (mem === null) return [];
    const client = s.object({ client: s.string() });
    return [
      {
        name: 'peek',
        type: 'view',
        summary: "A client's allowance now (client: its address, header value, API key or claim)",
        input: client,
        run: (i: { client: string }) => {
          const d = mem.peek(this.keyOf(i.client), 1);
          return { allowed: d.allowed, remaining: d.remaining, retryAfterMs: d.retryAfterMs };
        },
      } as ComponentOperation,
      {
        name: 'reset',
        type: 'action',
        summary: 'Give one client its full allowance back',
        input: client,
        run: (i: { client: string }) => {
          mem.reset(this.keyOf(i.client));
          this.emit('reset', { client: i.client });
          return { ok: true };
        },
      } as ComponentOperation,
      {
        name: 'clear',
        type: 'action',
        summary: "Forget every client's state (all allowances full again)",
        role: 'admin',
        destructive: true,
        input: s.object({}),
        run: (_i: unknown, ctx) => {
          const clients = mem.size;
          if (!ctx.dryRun) {
            mem.clear();
            this.emit('clear', { clients });
          }
          return { clients };
        },
      } as ComponentOperation,
    ];
  }

  private emit(event: string, extra: Record<string, unknown>): void {
    if (this.events.size !== 0)
      this.events.emit({ kind: this.kind, name: this.name, event, ...extra } as ComponentEvent);
  }

  snapshot(): Snapshot {
    const mem = this.local;
    return {
      kind: this.kind,
      name: this.name,
      state: 'active',
      gauges: { clients: mem?.size ?? Number.NaN, limit: this.limit.limit, windowMs: this.limit.windowMs },
      counters: {},
      details: { route: this.route.name, key: this.limit.key, shared: mem === null },
    };
  }
}
