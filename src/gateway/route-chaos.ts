/**
 * Chaos per route, switchable live: a `gatewayChaos` component per route that has a `chaos`
 * block, with the control plane's chaos operations (enable, disable, setRate — the same as an
 * in-process chaos strategy's). It injects latency before forwarding, a status instead of
 * forwarding, or a connection reset (an HTTP/2 stream reset on h2), at its rate.
 * @module
 */

import type { IncomingMessage, ServerResponse } from 'node:http';
import { constants as h2 } from 'node:http2';
import type { ChaosControl } from '../chaos/chaos.js';
import { chaosOperations } from '../chaos/operations.js';
import type { RandomSource } from '../core/clock.js';
// Deliberate repetition: the component types this file implements (an import list).
import {
  type Component,
  type ComponentEvent,
  type ComponentOperation,
  defineDescriptor,
  type Snapshot,
} from '../core/component.js';
import { type Disposer, Emitter, type Listener } from '../core/events.js';
import type { RouteConfig } from './config.js';

// Deliberate repetition: a component descriptor is data (kind, help, category, states, gauges,
// counters); every component writes its own, alike in shape only.
const descriptor = defineDescriptor({
  kind: 'gatewayChaos',
  help: 'Fault injection on a gateway route (latency, status, reset), switchable live',
  category: 'chaos',
  states: ['off', 'on'],
  gauges: { rate: 'share of requests injected into now', latencyMs: 'latency added to injected requests' },
  counters: {
    requests: 'requests that reached the route while chaos was on',
    injected: 'requests injected into',
  },
});

/** What chaos does to one request: nothing, or a fault. */
export type ChaosAction =
  | { readonly type: 'none' }
  | { readonly type: 'reset' }
  | { readonly type: 'fault'; readonly latencyMs: number; readonly status: number | undefined };

const NONE: ChaosAction = { type: 'none' };

/**
 * The chaos of one route. Kept across reloads while the route's configuration is unchanged, so a
 * switch made on the control plane holds until the route is edited.
 *
 * @example
 * ```ts
 * import { RouteChaos } from 'bulwark/gateway';
 * const chaos = new RouteChaos('pay', { enabled: false, rate: 0.1, status: 503 });
 * chaos.control.enable();
 * console.log(chaos.snapshot().state, chaos.operations().map((o) => o.name)); // on [ 'enable', 'disable', 'setRate' ]
 * ```
 */
export class RouteChaos implements Component {
  readonly kind = 'gatewayChaos';
  readonly descriptor = descriptor;
  readonly control: ChaosControl;
  private on: boolean;
  private rate: number;
  private readonly fault: ChaosAction;
  private requests = 0;
  private injected = 0;
  private readonly events = new Emitter<ComponentEvent>();

  constructor(
    readonly name: string,
    private readonly config: NonNullable<RouteConfig['chaos']>,
  ) {
    this.on = config.enabled;
    this.rate = config.rate;
    this.fault =
      config.reset === true
        ? { type: 'reset' }
        : { type: 'fault', latencyMs: config.latencyMs ?? 0, status: config.status };
    const self = this;
    this.control = {
      get enabled() {
        return self.on;
      },
      get rate() {
        return self.rate;
      },
      enable: () => this.switch(true),
      disable: () => this.switch(false),
      setRate: (rate: number) => {
        this.rate = rate;
        this.emit({ kind: this.kind, name: this.name, event: 'rateChange', rate } as ComponentEvent);
      },
      restart: () => {},
    };
  }

  /** True while injecting. */
  get enabled(): boolean {
    return this.on;
  }

  private switch(on: boolean): void {
    if (on === this.on) return;
    this.on = on;
    this.emit({
      kind: this.kind,
      name: this.name,
      event: 'stateChange',
      from: on ? 'off' : 'on',
      to: on ? 'on' : 'off',
    } as ComponentEvent);
  }

  /** Decides for one request (no allocation). */
  decide(random: RandomSource): ChaosAction {
    if (!this.on) return NONE;
    this.requests++;
    if (this.rate <= 0 || (this.rate < 1 && random() >= this.rate)) return NONE;
    this.injected++;
    if (this.events.size !== 0)
      this.events.emit({
        kind: this.kind,
        name: this.name,
        event: 'inject',
        fault: this.fault.type,
      } as ComponentEvent);
    return this.fault;
  }

  private emit(e: ComponentEvent): void {
    if (this.events.size !== 0) this.events.emit(e);
  }

  onEvent(listener: Listener<ComponentEvent>): Disposer {
    return this.events.on(listener);
  }

  operations(): readonly ComponentOperation[] {
    return chaosOperations(this.control);
  }

  snapshot(): Snapshot {
    return {
      kind: this.kind,
      name: this.name,
      state: this.on ? 'on' : 'off',
      gauges: { rate: this.rate, latencyMs: this.config.latencyMs ?? 0 },
      counters: { requests: this.requests, injected: this.injected },
      details: {
        route: this.name,
        status: this.config.status ?? null,
        reset: this.config.reset === true,
      },
    };
  }
}

/** Cuts a request's connection: the TCP connection on HTTP/1.1, the stream (RST_STREAM) on HTTP/2. */
export function resetRequest(req: IncomingMessage, res: ServerResponse): void {
  const stream = (res as unknown as { stream?: { close(code: number): void } }).stream;
  if (stream !== undefined) stream.close(h2.NGHTTP2_INTERNAL_ERROR);
  else req.socket.destroy();
}
