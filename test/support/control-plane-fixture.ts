/**
 * Components for control-plane tests: a breaker, a limiter and a queue with dead letters, each
 * with its views and actions, built on the Component contract only (the real components expose
 * the same operations).
 */
import {
  type Component,
  type ComponentDescriptor,
  type ComponentEvent,
  type ComponentOperation,
  createRegistry,
  type Registry,
  type Snapshot,
  s,
} from 'bulwark';
import { Emitter } from '../../src/core/events.js';

abstract class Fake implements Component {
  abstract readonly kind: string;
  abstract readonly descriptor: ComponentDescriptor;
  protected readonly emitter = new Emitter<ComponentEvent>();
  constructor(readonly name: string) {}
  abstract snapshot(): Snapshot;
  abstract operations(): readonly ComponentOperation[];
  onEvent(listener: (e: ComponentEvent) => void) {
    return this.emitter.on(listener);
  }
  protected emit(event: string, extra: Record<string, unknown> = {}): void {
    this.emitter.emit({ kind: this.kind, name: this.name, event, ...extra } as ComponentEvent);
  }
}

const op = <I>(o: ComponentOperation<I, unknown>): ComponentOperation => o as ComponentOperation;

export class FakeBreaker extends Fake {
  readonly kind = 'circuitBreaker';
  readonly descriptor: ComponentDescriptor = {
    kind: 'circuitBreaker',
    help: 'A test breaker',
    category: 'breaker',
    states: ['closed', 'open', 'half-open', 'isolated', 'forced-open'],
    gauges: { failureRatio: 'failure ratio' },
    counters: { successes: 'ok', failures: 'failed', rejections: 'refused' },
  };
  state = 'closed';
  successes = 0;
  failures = 0;
  rejections = 0;
  set(state: string, reason = 'test'): void {
    const from = this.state;
    this.state = state;
    this.emit('stateChange', { from, to: state, reason });
  }
  call(ok: boolean): void {
    if (this.state !== 'closed') this.rejections++;
    else if (ok) this.successes++;
    else this.failures++;
  }
  snapshot(): Snapshot {
    const total = this.successes + this.failures;
    return {
      kind: this.kind,
      name: this.name,
      state: this.state,
      gauges: { failureRatio: total === 0 ? 0 : this.failures / total },
      counters: { successes: this.successes, failures: this.failures, rejections: this.rejections },
    };
  }
  operations(): readonly ComponentOperation[] {
    const none = s.object({});
    return [
      op({
        name: 'forceOpen',
        type: 'action',
        summary: 'Open until reset',
        input: none,
        run: () => this.set('forced-open', 'operator'),
      }),
      op({
        name: 'isolate',
        type: 'action',
        summary: 'Isolate',
        input: none,
        run: () => this.set('isolated', 'operator'),
      }),
      op({
        name: 'reset',
        type: 'action',
        summary: 'Close and clear',
        input: none,
        run: () => this.set('closed', 'operator'),
      }),
    ];
  }
}

export class FakeLimiter extends Fake {
  readonly kind = 'rateLimit';
  readonly descriptor: ComponentDescriptor = {
    kind: 'rateLimit',
    help: 'A test limiter',
    category: 'limiter',
    states: ['ok'],
    gauges: { limit: 'limit', inFlight: 'in flight' },
    counters: { rejections: 'refused' },
  };
  limit = 10;
  snapshot(): Snapshot {
    return {
      kind: this.kind,
      name: this.name,
      state: 'ok',
      gauges: { limit: this.limit, inFlight: 3 },
      counters: { rejections: 0 },
    };
  }
  operations(): readonly ComponentOperation[] {
    return [
      op<{ limit: number }>({
        name: 'setLimit',
        type: 'action',
        role: 'admin',
        summary: 'Change the limit at run time',
        input: s.object({ limit: s.int({ min: 1, max: 1_000_000 }) }),
        run: (i) => {
          this.limit = i.limit;
          return { limit: i.limit };
        },
      }),
    ];
  }
}

export interface FakeItem {
  id: string;
  state: 'pending' | 'completed' | 'dead';
  attempts: number;
  error?: string;
}

export class FakeQueue extends Fake {
  readonly kind = 'durableQueue';
  readonly descriptor: ComponentDescriptor = {
    kind: 'durableQueue',
    help: 'A test queue',
    category: 'queue',
    states: ['running'],
    gauges: { pending: 'pending', dead: 'dead' },
    counters: { completed: 'completed', redriven: 'redriven' },
  };
  items: FakeItem[] = [];
  redriven = 0;
  completed = 0;
  /** Redriven items complete after this many ms (0: at once). */
  completeAfterMs = 0;
  count(state: string): number {
    return this.items.filter((i) => i.state === state).length;
  }
  snapshot(): Snapshot {
    return {
      kind: this.kind,
      name: this.name,
      state: 'running',
      gauges: { pending: this.count('pending'), dead: this.count('dead') },
      counters: { completed: this.completed, redriven: this.redriven },
    };
  }
  operations(): readonly ComponentOperation[] {
    return [
      op<{ state?: string; limit: number }>({
        name: 'items',
        type: 'view',
        summary: 'Items by state',
        input: s.object({
          state: s.optional(s.oneOf(['pending', 'completed', 'dead'])),
          limit: s.optional(s.int({ min: 1, max: 500 }), 50),
        }),
        run: (q) => this.items.filter((i) => q.state === undefined || i.state === q.state).slice(0, q.limit),
      }),
      op<{ ids?: string[]; rate?: number }>({
        name: 'redrive',
        type: 'action',
        summary: 'Move dead letters back to pending',
        input: s.object({
          ids: s.optional(s.array(s.string(), { max: 1000 })),
          rate: s.optional(s.int({ min: 1, max: 10_000 })),
        }),
        run: (i) => {
          const picked = this.items.filter(
            (x) => x.state === 'dead' && (i.ids === undefined || i.ids.includes(x.id)),
          );
          const missing = (i.ids ?? []).filter((id) => !picked.some((x) => x.id === id));
          for (const x of picked) {
            x.state = 'pending';
            this.redriven++;
            const done = () => {
              x.state = 'completed';
              this.completed++;
              this.emit('completed', { id: x.id });
            };
            if (this.completeAfterMs === 0) done();
            else setTimeout(done, this.completeAfterMs).unref();
          }
          return { redriven: picked.map((x) => x.id), missing };
        },
      }),
      op<{ state: 'completed' | 'dead' }>({
        name: 'purge',
        type: 'action',
        destructive: true,
        role: 'admin',
        summary: 'Delete items in a terminal state',
        input: s.object({ state: s.oneOf(['completed', 'dead']) }),
        run: (i, ctx) => {
          const n = this.count(i.state);
          if (!ctx.dryRun) this.items = this.items.filter((x) => x.state !== i.state);
          return { deleted: n, dryRun: ctx.dryRun };
        },
      }),
    ];
  }
}

export const TOKENS = {
  viewer: 'viewer-token-0123456789abcdef',
  operator: 'operator-token-0123456789abcdef',
  admin: 'admin-token-0123456789abcdef',
} as const;

/** A registry with one breaker, one limiter and one queue holding two dead letters. */
export function fixture(): {
  registry: Registry;
  breaker: FakeBreaker;
  limiter: FakeLimiter;
  queue: FakeQueue;
} {
  const registry = createRegistry();
  const breaker = registry.register(new FakeBreaker('payments'));
  const limiter = registry.register(new FakeLimiter('api'));
  const queue = registry.register(new FakeQueue('orders'));
  queue.items.push(
    { id: 'a1', state: 'dead', attempts: 5, error: 'upstream 503' },
    { id: 'a2', state: 'dead', attempts: 5, error: 'timeout' },
    { id: 'a3', state: 'pending', attempts: 0 },
  );
  return { registry, breaker, limiter, queue };
}
