/** The control plane's views of an audit log: browse entries with filters, verify the chain. */
import type { ComponentOperation } from '../core/component.js';
import { s } from '../core/schema.js';
import type { AuditLog } from './log.js';

/**
 * The operations of an audit log: `entries` and `verify` (both read-only).
 *
 * @example
 * ```ts
 * import { openAuditLog } from 'bulwark/audit';
 * const log = await openAuditLog({ store: 'sqlite::memory:' });
 * console.log(log.operations().map((o) => o.name)); // [ 'entries', 'verify' ]
 * await log.close();
 * ```
 */
export function auditOperations(log: AuditLog): readonly ComponentOperation[] {
  // Deliberate repetition: operations are declared as literals of the control plane's shape (name,
  // type, summary, input schema), one per view or action, like every component's operations.
  return [
    {
      name: 'entries',
      type: 'view',
      summary: 'The newest entries, filtered by actor, action, resource, outcome and tag',
      input: s.object({
        limit: s.optional(s.int({ min: 1, max: 500 }), 100),
        actor: s.optional(s.string()),
        action: s.optional(s.string()),
        resource: s.optional(s.string()),
        outcome: s.optional(s.oneOf(['success', 'failure', 'denied'] as const)),
        tag: s.optional(s.string()),
      }),
      run: async (i: { limit: number } & Record<string, unknown>) => {
        // The newest entries: start a window before the head (filters may thin it) and keep the last.
        const seq = log.snapshot().gauges.seq ?? 0;
        const { limit, ...filter } = i;
        const rows = await log.list({
          ...filter,
          afterSeq: Math.max(0, seq - limit * 20),
          limit: limit * 20,
        });
        return rows.slice(-limit).reverse();
      },
    } as ComponentOperation,
    {
      name: 'verify',
      type: 'view',
      summary: 'Walk the whole chain and its checkpoints; names the first bad entry',
      input: s.object({}),
      run: async () => {
        const r = await log.verify();
        return {
          ok: r.ok,
          entries: r.entries,
          rootHash: r.rootHash,
          checkpoints: r.checkpoints,
          firstBad: r.firstBad ?? null,
        };
      },
    },
  ];
}
