/**
 * Store spec strings, as the CLI and the crash harness take them: `sqlite:PATH` (also
 * `sqlite://PATH` and a bare path ending in `.db`/`.sqlite`) or `postgres://…` / `postgresql://…`.
 * @module
 */

import { BulwarkDurableError } from './errors.js';
import { postgresStore } from './postgres-store.js';
import { sqliteStore } from './sqlite-store.js';
import type { QueueStore } from './store.js';

/**
 * Opens the store a spec string names (not yet initialised; `openQueue` or `init()` does that).
 *
 * @example
 * ```ts
 * import { storeFromSpec } from 'bulwark/durable';
 * const store = storeFromSpec('sqlite::memory:');
 * await store.init();
 * console.log(store.description); // sqlite::memory:
 * await store.close();
 * ```
 */
export function storeFromSpec(spec: string): QueueStore {
  if (spec.startsWith('postgres://') || spec.startsWith('postgresql://')) {
    return postgresStore({ connectionString: spec });
  }
  const path = sqlitePathOf(spec);
  if (path === undefined) {
    throw new BulwarkDurableError(
      'INVALID_STORE_SPEC',
      `Unknown store "${spec.replace(/:[^:@/]*@/, ':***@')}": use sqlite:PATH (e.g. sqlite:./data/bulwark.db) or postgres://user@host/db`,
    );
  }
  return sqliteStore({ path });
}

/**
 * The file a SQLite spec names (`sqlite:PATH`, `sqlite://PATH`, or a bare path ending in
 * `.db`/`.sqlite`/`.sqlite3`; `:memory:` for `sqlite::memory:`), or undefined when `spec` names
 * none. @internal
 *
 * @example
 * ```ts nocheck
 * sqlitePathOf('sqlite:./data/app.db'); // './data/app.db'
 * sqlitePathOf('postgres://localhost/db'); // undefined
 * ```
 */
export function sqlitePathOf(spec: string): string | undefined {
  let path: string | undefined;
  if (spec.startsWith('sqlite://')) path = spec.slice('sqlite://'.length);
  else if (spec.startsWith('sqlite:')) path = spec.slice('sqlite:'.length);
  else if (/\.(db|sqlite3?)$/i.test(spec)) path = spec;
  return path === '' ? undefined : path;
}
