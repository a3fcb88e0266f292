/**
 * A bounded in-memory audit trail: what the control plane records its actions in when no
 * `bulwark/audit` log is given. It is a component (category `audit`), so the dashboard lists it
 * like the durable log; it keeps the newest `capacity` entries only and says so.
 */

import type { AuditRecord, AuditSink } from '../core/audit-sink.js';
import type {
  Component,
  ComponentDescriptor,
  ComponentEvent,
  ComponentOperation,
  Snapshot,
} from '../core/component.js';
import { type Disposer, Emitter, type Listener } from '../core/events.js';
import { s } from '../core/schema.js';

/** What the control plane appends, and where (the `bulwark/audit` log's `append` takes the same shape). */
export type { AuditRecord, AuditSink } from '../core/audit-sink.js';

/** One kept entry. */
export interface MemoryAuditEntry extends AuditRecord {
  readonly seq: number;
  readonly time: string;
}

const DESCRIPTOR: ComponentDescriptor = Object.freeze({
  kind: 'adminAudit',
  help: 'The control plane audit trail kept in memory (no durable audit log configured)',
  category: 'audit',
  states: ['memory'],
  gauges: { kept: 'Entries kept' },
  counters: { appends: 'Entries appended', evicted: 'Entries dropped past the capacity' },
});

/**
 * Creates a bounded in-memory audit trail.
 *
 * @example
 * ```ts
 * import { memoryAudit } from 'bulwark/server';
 * const audit = memoryAudit({ capacity: 100 });
 * await audit.append({ actor: 'alice', action: 'circuitBreaker.forceOpen', resource: 'circuitBreaker/payments' });
 * console.log(audit.entries().length); // 1
 * ```
 */
export function memoryAudit(options: { capacity?: number; name?: string } = {}): MemoryAudit {
  return new MemoryAudit(options.capacity ?? 1000, options.name ?? 'admin');
}

/** See `memoryAudit()`. */
export class MemoryAudit implements AuditSink, Component {
  readonly kind = 'adminAudit';
  readonly descriptor = DESCRIPTOR;
  private readonly list: MemoryAuditEntry[] = [];
  private seq = 0;
  private evicted = 0;
  private readonly emitter = new Emitter<ComponentEvent>();

  constructor(
    private readonly capacity: number,
    readonly name: string,
  ) {}

  async append(entry: AuditRecord): Promise<MemoryAuditEntry> {
    const kept: MemoryAuditEntry = { ...entry, seq: ++this.seq, time: new Date().toISOString() };
    this.list.push(kept);
    if (this.list.length > this.capacity) {
      this.list.shift();
      this.evicted++;
    }
    if (this.emitter.size !== 0) this.emitter.emit({ kind: this.kind, name: this.name, event: 'append' });
    return kept;
  }

  /** The kept entries, oldest first. */
  entries(): readonly MemoryAuditEntry[] {
    return this.list;
  }

  snapshot(): Snapshot {
    return {
      kind: this.kind,
      name: this.name,
      state: 'memory',
      gauges: { kept: this.list.length },
      counters: { appends: this.seq, evicted: this.evicted },
    };
  }

  onEvent(listener: Listener<ComponentEvent>): Disposer {
    return this.emitter.on(listener);
  }

  operations(): readonly ComponentOperation[] {
    // Deliberate repetition: an operation descriptor is data (name, type, summary, input, run); this
    // log's inputs differ from the audit log's.
    const list: ComponentOperation<{ limit: number; actor?: string; action?: string }, MemoryAuditEntry[]> = {
      name: 'list',
      type: 'view',
      summary: 'The newest entries, filtered by actor and action',
      input: s.object({
        limit: s.optional(s.int({ min: 1, max: 1000 }), 100),
        actor: s.optional(s.string()),
        action: s.optional(s.string()),
      }),
      run: (q) =>
        this.list
          .filter(
            (e) =>
              (q.actor === undefined || e.actor === q.actor) &&
              (q.action === undefined || e.action.includes(q.action)),
          )
          .slice(-q.limit)
          .reverse(),
    };
    return [list as ComponentOperation];
  }
}
