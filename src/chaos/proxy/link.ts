/**
 * One direction of one proxied connection: chunks read from `src` pass through the toxics active
 * for this stream (re-read for every chunk, so toxics added or removed apply to open
 * connections, as in toxiproxy) and are written to `dst` with backpressure both ways.
 */
import type { Socket } from 'node:net';
import type { Stream, Toxic } from './toxic.js';

/** What a link needs of its connection. */
export interface LinkHost {
  /** The toxics of `stream` that apply to this connection (toxicity already drawn). */
  toxics(stream: Stream): readonly Toxic[];
  /** Ends both sides with a TCP RST. */
  reset(): void;
  /** Ends both sides cleanly. */
  close(): void;
  readonly random: () => number;
}

interface Chunk {
  readonly data: Buffer;
  readonly at: number;
}

/**
 * Sleeps `ms` precisely: a timer for all but the last 1.5 ms (timers fire late, never early),
 * then `setImmediate` turns until the deadline, so an injected delay is within a fraction of a
 * millisecond of what was asked on an idle machine.
 */
export function sleep(ms: number): Promise<void> {
  if (ms <= 0) return Promise.resolve();
  const due = performance.now() + ms;
  return new Promise((resolve) => {
    const spin = (): void => {
      if (performance.now() >= due) resolve();
      else setImmediate(spin);
    };
    if (ms > 2) setTimeout(spin, ms - 1.5);
    else spin();
  });
}
const MAX_QUEUED = 64;

/** Pumps `src` → `dst` through the toxics of `stream`. */
export class Link {
  private readonly queue: Chunk[] = [];
  private running = false;
  private ended = false;
  /** Bytes written so far (for limit_data). */
  private written = 0;
  /** Bandwidth pacing: when the next byte may leave (ms). */
  private nextFree = 0;
  private timeoutArmed = false;
  private resetArmed = false;

  constructor(
    private readonly host: LinkHost,
    readonly stream: Stream,
    private readonly src: Socket,
    private readonly dst: Socket,
  ) {
    src.on('data', (data: Buffer) => {
      // Fast path: no toxic on this stream and nothing queued — relay at once, like socket.pipe.
      if (!this.running && this.queue.length === 0 && this.host.toxics(this.stream).length === 0) {
        this.written += data.length;
        if (!dst.write(data)) {
          src.pause();
          dst.once('drain', () => src.resume());
        }
        return;
      }
      this.queue.push({ data, at: performance.now() });
      if (this.queue.length >= MAX_QUEUED) src.pause();
      void this.run();
    });
    src.on('end', () => {
      if (!this.running && this.queue.length === 0 && this.host.toxics(this.stream).length === 0) {
        dst.end();
        return;
      }
      this.ended = true;
      void this.run();
    });
  }

  private async run(): Promise<void> {
    if (this.running) return;
    this.running = true;
    try {
      while (this.queue.length > 0) {
        const chunk = this.queue.shift()!;
        if (this.queue.length < MAX_QUEUED / 2 && this.src.isPaused()) this.src.resume();
        await this.process(chunk);
        if (this.dst.destroyed) return;
      }
      if (this.ended && !this.dst.destroyed) await this.finish();
    } finally {
      this.running = false;
    }
  }

  /** The source ended: end the destination, after a slow_close delay if one applies. */
  private async finish(): Promise<void> {
    this.ended = false;
    if (this.host.toxics(this.stream).some((t) => t.type === 'timeout')) return; // a black hole never closes
    const slow = this.host.toxics(this.stream).find((t) => t.type === 'slow_close') as
      | Toxic<'slow_close'>
      | undefined;
    if (slow !== undefined) await sleep(slow.attributes.delay);
    this.dst.end();
  }

  private async process(chunk: Chunk): Promise<void> {
    let pieces: Buffer[] = [chunk.data];
    let sliceDelayUs = 0;
    for (const t of this.host.toxics(this.stream)) {
      switch (t.type) {
        case 'latency': {
          const a = (t as Toxic<'latency'>).attributes;
          const jitter = a.jitter === 0 ? 0 : (this.host.random() * 2 - 1) * a.jitter;
          await sleep(chunk.at + a.latency + jitter - performance.now());
          break;
        }
        case 'timeout': {
          const a = (t as Toxic<'timeout'>).attributes;
          if (a.timeout > 0 && !this.timeoutArmed) {
            this.timeoutArmed = true;
            setTimeout(() => this.host.close(), a.timeout);
          }
          return; // the data is dropped
        }
        case 'reset_peer': {
          const a = (t as Toxic<'reset_peer'>).attributes;
          if (!this.resetArmed) {
            this.resetArmed = true;
            if (a.timeout === 0) this.host.reset();
            else setTimeout(() => this.host.reset(), a.timeout);
          }
          if (a.timeout === 0) return;
          break;
        }
        case 'slicer': {
          const a = (t as Toxic<'slicer'>).attributes;
          const out: Buffer[] = [];
          for (const p of pieces) {
            let i = 0;
            while (i < p.length) {
              const v =
                a.size_variation === 0 ? 0 : Math.round((this.host.random() * 2 - 1) * a.size_variation);
              const size = Math.max(1, a.average_size + v);
              out.push(p.subarray(i, i + size));
              i += size;
            }
          }
          pieces = out;
          sliceDelayUs = a.delay;
          break;
        }
        case 'limit_data': {
          const a = (t as Toxic<'limit_data'>).attributes;
          const left = a.bytes - this.written;
          const total = pieces.reduce((n, p) => n + p.length, 0);
          if (total >= left) {
            await this.write(Buffer.concat(pieces).subarray(0, Math.max(0, left)), 0, 0);
            this.host.close();
            return;
          }
          break;
        }
        default:
          break;
      }
    }
    const bw = this.host.toxics(this.stream).find((t) => t.type === 'bandwidth') as
      | Toxic<'bandwidth'>
      | undefined;
    const bytesPerMs = bw === undefined || bw.attributes.rate === 0 ? 0 : (bw.attributes.rate * 1024) / 1000;
    for (const piece of pieces) await this.write(piece, bytesPerMs, sliceDelayUs);
  }

  private async write(piece: Buffer, bytesPerMs: number, delayUs: number): Promise<void> {
    if (piece.length === 0 || this.dst.destroyed) return;
    if (bytesPerMs > 0) {
      const now = performance.now();
      // Pace against the schedule, not the clock, so late timers do not lower the average rate
      // (an idle gap of more than 50 ms starts a new schedule).
      const start = this.nextFree > now - 50 ? this.nextFree : now;
      this.nextFree = start + piece.length / bytesPerMs;
      await sleep(this.nextFree - now);
    }
    if (delayUs > 0) await sleep(delayUs / 1000);
    this.written += piece.length;
    if (!this.dst.write(piece)) {
      await new Promise<void>((resolve) => {
        const done = () => {
          this.dst.off('drain', done);
          this.dst.off('close', done);
          resolve();
        };
        this.dst.on('drain', done);
        this.dst.on('close', done);
      });
    }
  }
}
