/**
 * Scheduled key rotation: every `everyMs` (for example 30 days) a new random key is saved
 * (`save`, before it is used), made current, the rotation is written to the audit log (key ids
 * only, never material), and the rewrap targets (queues, audit logs, subject keys) re-wrap their
 * data keys in the background, in batches. Old keys stay in the keyring for decryption.
 * @module
 */

import { randomBytes } from 'node:crypto';

/** Where rotations are recorded: a `bulwark/audit` log (or anything with its `append`). */
interface AuditLog {
  append(entry: {
    actor: string;
    action: string;
    resource: string;
    outcome?: 'success' | 'failure' | 'denied';
    tags?: readonly string[];
    payload?: unknown;
  }): Promise<unknown>;
}

import { type Clock, MAX_TIMER_MS, systemClock, type TimerHandle } from '../core/clock.js';
import type { Component, ComponentDescriptor, ComponentEvent, Snapshot } from '../core/component.js';
import { type Disposer, Emitter, type Listener } from '../core/events.js';
import { joinRegistry, type Registry } from '../core/registry.js';
import { s } from '../core/schema.js';
import type { Keyring } from '../durable/encryption.js';

/** A rewrap job: re-wraps everything it owns with the current key; resolves with how many failed. */
export type RewrapTarget = { readonly name: string; run(): Promise<{ failed: number }> };

/** Options of `scheduleRotation`. */
export interface RotationOptions {
  readonly keyring: Keyring;
  /** Rotate every this many ms (e.g. `30 * 86_400_000`). */
  readonly everyMs: number;
  /** Persists a new key (id, base64) before it becomes current, e.g. `keyFileSaver(path)`. */
  readonly save: (id: string, keyBase64: string) => Promise<void>;
  /** Re-wrap jobs run after each rotation, e.g. `{ name: 'queue:payments', run: () => rewrapAll(q) }`. */
  readonly targets?: readonly RewrapTarget[];
  /** Every rotation is recorded here (action `keyring.rotate`). */
  readonly audit?: AuditLog;
  /** When the current key was made (epoch ms); default: read from ids `k-<epochMs>`, else now. */
  readonly currentSince?: number;
  readonly name?: string;
  readonly registry?: Registry;
  readonly clock?: Clock;
}

const optionsSchema = s.object({
  keyring: s.unknown(),
  everyMs: s.duration({ positive: true }),
  save: s.fn(),
  targets: s.optional(s.array(s.unknown())),
  audit: s.optional(s.unknown()),
  currentSince: s.optional(s.int({ min: 0 })),
  name: s.optional(s.string(), 'keyring'),
  registry: s.optional(s.unknown()),
  clock: s.optional(s.unknown()),
});

// Deliberate repetition: a component descriptor is data (kind, help, category, states, gauges,
// counters); every component writes its own, alike in shape only.
const DESCRIPTOR: ComponentDescriptor = {
  kind: 'keyRotation',
  help: 'Scheduled key rotation with background rewrap',
  category: 'audit',
  states: ['idle', 'rotating', 'failed', 'stopped'],
  gauges: { nextInMs: 'milliseconds until the next rotation' },
  counters: {
    rotations: 'keys rotated',
    rewrapFailures: 'items a rewrap could not re-wrap',
    failures: 'rotations that failed',
  },
};

/** The scheduler; `rotateNow()` rotates at once. */
export class KeyRotation implements Component {
  // Deliberate repetition: the Component fields every component declares (kind, name, descriptor).
  readonly kind = 'keyRotation';
  readonly name: string;
  readonly descriptor = DESCRIPTOR;
  readonly #o: RotationOptions;
  readonly #clock: Clock;
  readonly #events = new Emitter<ComponentEvent>();
  #since: number;
  #timer: TimerHandle | undefined;
  #state: 'idle' | 'rotating' | 'failed' | 'stopped' = 'idle';
  #running: Promise<string> | undefined;
  readonly #counters = { rotations: 0, rewrapFailures: 0, failures: 0 };

  constructor(options: RotationOptions) {
    optionsSchema.parse(options, 'scheduleRotation');
    this.#o = options;
    this.name = options.name ?? 'keyring';
    this.#clock = options.clock ?? systemClock;
    const fromId = /^k-(\d{10,})$/.exec(options.keyring.currentKeyId)?.[1];
    this.#since = options.currentSince ?? (fromId === undefined ? this.#clock.date() : Number(fromId));
    this.#arm();
    joinRegistry(options.registry, this);
  }

  #arm(): void {
    if (this.#state === 'stopped') return;
    const due = Math.max(0, this.#since + this.#o.everyMs - this.#clock.date());
    this.#timer = this.#clock.setTimeout(
      () => {
        if (due > MAX_TIMER_MS) this.#arm();
        else this.rotateNow().catch(() => {});
      },
      Math.min(due, MAX_TIMER_MS),
    );
    this.#timer.unref();
  }

  /** Rotates now: save, make current, audit, rewrap. Resolves with the new key id. */
  rotateNow(): Promise<string> {
    this.#running ??= this.#rotate().finally(() => {
      this.#running = undefined;
      if (this.#timer !== undefined) this.#clock.clearTimeout(this.#timer);
      this.#arm();
    });
    return this.#running;
  }

  async #rotate(): Promise<string> {
    const ring = this.#o.keyring;
    const from = ring.currentKeyId;
    const now = this.#clock.date();
    const id = `k-${now}`;
    const key = randomBytes(32);
    this.#state = 'rotating';
    try {
      await this.#o.save(id, key.toString('base64'));
      ring.add(id, key, { current: true });
    } catch (error) {
      this.#state = 'failed';
      this.#counters.failures++;
      this.#emit('failed');
      throw error;
    } finally {
      key.fill(0);
    }
    this.#since = now;
    this.#counters.rotations++;
    await this.#o.audit?.append({
      actor: 'system',
      action: 'keyring.rotate',
      resource: `keyring:${this.name}`,
      tags: ['security'],
      payload: { from, to: id },
    });
    const results: Record<string, number> = {};
    for (const t of this.#o.targets ?? []) {
      const { failed } = await t.run().catch(() => ({ failed: -1 }));
      results[t.name] = failed;
      if (failed !== 0) this.#counters.rewrapFailures += Math.max(1, failed);
    }
    if ((this.#o.targets ?? []).length > 0) {
      await this.#o.audit?.append({
        actor: 'system',
        action: 'keyring.rewrap',
        resource: `keyring:${this.name}`,
        tags: ['security'],
        payload: { key: id, failed: results },
      });
    }
    this.#state = 'idle';
    this.#emit('rotated');
    return id;
  }

  #emit(event: string): void {
    if (this.#events.size !== 0) this.#events.emit({ kind: this.kind, name: this.name, event });
  }

  snapshot(): Snapshot {
    return {
      kind: this.kind,
      name: this.name,
      state: this.#state,
      gauges: { nextInMs: Math.max(0, this.#since + this.#o.everyMs - this.#clock.date()) },
      counters: { ...this.#counters },
      details: { currentKeyId: this.#o.keyring.currentKeyId, keys: this.#o.keyring.ids().length },
    };
  }

  onEvent(listener: Listener<ComponentEvent>): Disposer {
    return this.#events.on(listener);
  }

  /** Stops the schedule (a rotation in progress finishes). */
  stop(): void {
    this.#state = 'stopped';
    if (this.#timer !== undefined) this.#clock.clearTimeout(this.#timer);
  }
}

/**
 * Rotates the keyring on a schedule, saving each new key first, auditing every rotation and
 * re-wrapping the targets' data keys in the background.
 *
 * @example
 * ```ts
 * import { randomBytes } from 'node:crypto';
 * import { keyring } from 'bulwark/durable';
 * import { scheduleRotation } from 'bulwark/keyring';
 * const ring = keyring([{ id: 'k1', key: randomBytes(32) }]);
 * const rotation = scheduleRotation({ keyring: ring, everyMs: 30 * 86_400_000, save: async () => {} });
 * console.log(await rotation.rotateNow() === ring.currentKeyId); // true
 * rotation.stop();
 * ```
 */
export function scheduleRotation(options: RotationOptions): KeyRotation {
  return new KeyRotation(options);
}
