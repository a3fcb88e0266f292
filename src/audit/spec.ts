/**
 * Audit store spec strings: `sqlite:PATH` (also a bare path ending in .db/.sqlite) or
 * `postgres://…` (`?schema=NAME` picks the schema).
 * @module
 */

import { sqlitePathOf } from '../durable/store-spec.js';
import { BulwarkAuditError } from './errors.js';
import { postgresAuditStore } from './postgres-store.js';
import { sqliteAuditStore } from './sqlite-store.js';
import type { AuditStore } from './store.js';

/**
 * Opens the store a spec names (not yet initialised).
 *
 * @example
 * ```ts
 * import { auditStoreFromSpec } from 'bulwark/audit';
 * console.log(auditStoreFromSpec('sqlite::memory:').description); // sqlite::memory:
 * ```
 */
export function auditStoreFromSpec(spec: string): AuditStore {
  if (/^postgres(ql)?:\/\//.test(spec)) {
    const url = new URL(spec);
    const schema = url.searchParams.get('schema') ?? undefined;
    const table = url.searchParams.get('table') ?? undefined;
    url.searchParams.delete('schema');
    url.searchParams.delete('table');
    return postgresAuditStore({
      connectionString: url.toString(),
      ...(schema === undefined ? {} : { schema }),
      ...(table === undefined ? {} : { table }),
    });
  }
  // `sqlite:PATH` or `sqlite://PATH`, else a bare path ending in .db/.sqlite/.sqlite3.
  const path = sqlitePathOf(spec);
  if (path === undefined) {
    throw new BulwarkAuditError(
      'INVALID_STORE_SPEC',
      `Unknown audit store "${spec.replace(/:[^:@/]*@/, ':***@')}": use sqlite:PATH (e.g. sqlite:./audit.db) or postgres://user@host/db?schema=audit`,
    );
  }
  return sqliteAuditStore({ path });
}
