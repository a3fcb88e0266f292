/**
 * The live stream: server-sent events of every registered component's events, and of everyone's
 * figures once a second, with heartbeats and `Last-Event-ID` resume. A slow client never grows
 * an unbounded buffer: while its socket is congested its events are counted as dropped and its
 * figures coalesced to the latest, sent when the socket drains.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { ComponentEvent } from '../core/component.js';
import type { Disposer } from '../core/events.js';
import type { Registry } from '../core/registry.js';

/** Options of the event stream. */
export interface EventStreamOptions {
  /** Figures (all snapshots) are sent this often. Default 1000 ms. */
  readonly figuresMs?: number;
  /** A comment line keeps idle connections open this often. Default 15 000 ms. */
  readonly heartbeatMs?: number;
  /** Events kept for `Last-Event-ID` resume. Default 2000. */
  readonly replayEvents?: number;
  /** A client whose unsent bytes exceed this is congested. Default 1 MiB. */
  readonly maxBufferedBytes?: number;
}

interface Client {
  readonly res: ServerResponse;
  congested: boolean;
  dropped: number;
  pendingFigures: boolean;
}

/** Makes any event JSON-safe: errors become `{ name, message, code }`, functions and symbols vanish. */
export function eventJson(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) => {
    if (v instanceof Error) {
      const code = (v as { code?: unknown }).code;
      return { name: v.name, message: v.message, ...(typeof code === 'string' ? { code } : {}) };
    }
    if (typeof v === 'bigint') return v.toString();
    if (typeof v === 'function' || typeof v === 'symbol') return undefined;
    return v;
  });
}

/** The SSE hub of one control plane. */
export class EventStream {
  private readonly clients = new Set<Client>();
  private readonly ring: (string | undefined)[];
  private seq = 0;
  private figures: string | null = null;
  private readonly timers: NodeJS.Timeout[] = [];
  private readonly stop: Disposer;
  private readonly maxBuffered: number;
  /** Events not written to a congested client, over the stream's life. */
  dropped = 0;

  constructor(
    private readonly registry: Registry,
    options: EventStreamOptions = {},
  ) {
    this.ring = new Array<string | undefined>(options.replayEvents ?? 2000);
    this.maxBuffered = options.maxBufferedBytes ?? 1 << 20;
    this.stop = registry.onEvent((e) => this.publish(e));
    this.timers.push(setInterval(() => this.sendFigures(), options.figuresMs ?? 1000));
    this.timers.push(setInterval(() => this.broadcastRaw(': heartbeat\n\n'), options.heartbeatMs ?? 15_000));
    for (const t of this.timers) t.unref();
  }

  /** Number of connected clients. */
  get size(): number {
    return this.clients.size;
  }

  /** The id of the last event sent. */
  get lastId(): number {
    return this.seq;
  }

  /** Serves one client; resumes after `Last-Event-ID` when those events are still kept. */
  attach(req: IncomingMessage, res: ServerResponse): void {
    res.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-store',
      connection: 'keep-alive',
      'x-accel-buffering': 'no',
    });
    res.write('retry: 2000\n\n');
    const client: Client = { res, congested: false, dropped: 0, pendingFigures: false };
    const last = Number(req.headers['last-event-id']);
    if (Number.isInteger(last) && last >= 0 && last <= this.seq) {
      const oldest = Math.max(1, this.seq - this.ring.length + 1);
      if (last + 1 < oldest) res.write(`event: gap\ndata: {"missed":${oldest - last - 1}}\n\n`);
      for (let id = Math.max(last + 1, oldest); id <= this.seq; id++) {
        const frame = this.ring[id % this.ring.length];
        if (frame !== undefined) res.write(frame);
      }
    }
    res.write(this.figuresFrame());
    this.clients.add(client);
    res.on('drain', () => {
      client.congested = false;
      if (client.pendingFigures) {
        client.pendingFigures = false;
        this.write(client, this.figuresFrame());
      }
    });
    const leave = (): void => {
      this.clients.delete(client);
    };
    res.on('close', leave);
    req.on('close', leave);
  }

  private publish(e: ComponentEvent): void {
    this.seq++;
    const frame = `id: ${this.seq}\nevent: event\ndata: ${eventJson({ ...e, time: Date.now() })}\n\n`;
    this.ring[this.seq % this.ring.length] = frame;
    for (const client of this.clients) {
      if (client.congested) {
        client.dropped++;
        this.dropped++;
      } else this.write(client, frame);
    }
  }

  private figuresFrame(): string {
    this.figures ??= `event: figures\ndata: ${eventJson({ time: Date.now(), lastEventId: this.seq, components: this.registry.snapshot() })}\n\n`;
    return this.figures;
  }

  private sendFigures(): void {
    if (this.clients.size === 0) return;
    this.figures = null;
    const frame = this.figuresFrame();
    for (const client of this.clients) {
      if (client.congested) client.pendingFigures = true;
      else this.write(client, frame);
    }
  }

  private broadcastRaw(frame: string): void {
    for (const client of this.clients) if (!client.congested) this.write(client, frame);
  }

  private write(client: Client, frame: string): void {
    if (client.res.destroyed) return;
    const ok = client.res.write(frame);
    if (!ok || client.res.writableLength > this.maxBuffered) client.congested = true;
  }

  /** Ends every client's stream and stops the timers. */
  close(): void {
    this.stop();
    for (const t of this.timers) clearInterval(t);
    for (const client of this.clients) client.res.end();
    this.clients.clear();
  }
}
