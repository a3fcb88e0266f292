/**
 * Migration files: `<version>_<name>.sql`, the version a number (`0001`, or a timestamp as
 * `bulwark migrate create` writes), with an up part and an optional down part:
 *
 * ```sql
 * -- migrate:up
 * CREATE TABLE users (id bigint PRIMARY KEY, email text NOT NULL);
 * -- migrate:down
 * DROP TABLE users;
 * ```
 *
 * `-- migrate:up transaction:false` runs the up part outside a transaction (needed by
 * `CREATE INDEX CONCURRENTLY`, which is also detected on its own). The checksum covers the up
 * part only (line endings normalised), so fixing a down part never blocks a deploy.
 * @module
 */

import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { MigrationError } from './errors.js';

/** One migration read from its file. */
export interface Migration {
  /** The version as written (`0001`, `20260105120000`); migrations run in numeric order. */
  readonly version: string;
  /** The name part of the file name. */
  readonly name: string;
  /** `version_name`. */
  readonly id: string;
  readonly file: string;
  readonly up: string;
  /** Empty when the file has no down part. */
  readonly down: string;
  /** SHA-256 (hex) of the up part. */
  readonly checksum: string;
  /** False when the up part must run outside a transaction. */
  readonly upInTransaction: boolean;
  readonly downInTransaction: boolean;
}

const FILE = /^(\d+)_([A-Za-z0-9][A-Za-z0-9_.-]*)\.sql$/;
const MARKER = /^--\s*migrate:(up|down)\b(.*)$/;
/** Statements PostgreSQL refuses inside a transaction block. */
const NO_TX = /\b(CONCURRENTLY|ALTER\s+SYSTEM|CREATE\s+DATABASE|DROP\s+DATABASE|VACUUM)\b/i;

/** The checksum of an up part: SHA-256 of its text with CRLF turned into LF and outer blank space trimmed. */
export function checksumOf(up: string): string {
  return createHash('sha256').update(up.replace(/\r\n/g, '\n').trim()).digest('hex');
}

/**
 * Parses one migration file's text.
 *
 * @example
 * ```ts
 * import { parseMigration } from 'bulwark/postgres';
 * const m = parseMigration('0001_users.sql', '-- migrate:up\nCREATE TABLE users (id int);\n-- migrate:down\nDROP TABLE users;\n');
 * console.log(m.version, m.name, m.down); // 0001 users DROP TABLE users;
 * ```
 */
export function parseMigration(file: string, text: string): Migration {
  const m = FILE.exec(file);
  if (m === null) {
    throw new MigrationError(
      'MIGRATION_FILE_INVALID',
      file,
      `Migration file "${file}" is not named <version>_<name>.sql (e.g. 0001_create_users.sql)`,
    );
  }
  const parts: Record<'up' | 'down', string[]> = { up: [], down: [] };
  const noTx = { up: false, down: false };
  let section: 'up' | 'down' | null = null;
  for (const line of text.replace(/\r\n/g, '\n').split('\n')) {
    const marker = MARKER.exec(line.trim());
    if (marker !== null) {
      section = marker[1] as 'up' | 'down';
      if (/transaction\s*:\s*false/i.test(marker[2] ?? '')) noTx[section] = true;
      continue;
    }
    if (section !== null) parts[section].push(line);
  }
  const up = parts.up.join('\n').trim();
  if (up === '') {
    throw new MigrationError(
      'MIGRATION_FILE_INVALID',
      `${m[1]}_${m[2]}`,
      `Migration file "${file}" has no up part: start it with a line "-- migrate:up", then the SQL (and "-- migrate:down" before the SQL that undoes it)`,
    );
  }
  const down = parts.down.join('\n').trim();
  return {
    version: m[1]!,
    name: m[2]!,
    id: `${m[1]}_${m[2]}`,
    file,
    up,
    down,
    checksum: checksumOf(up),
    upInTransaction: !noTx.up && !NO_TX.test(up),
    downInTransaction: !noTx.down && !NO_TX.test(down),
  };
}

/** Compares versions numerically (`2` before `10`), then as text. */
export function compareVersions(a: string, b: string): number {
  const d = BigInt(a) - BigInt(b);
  return d < 0n ? -1 : d > 0n ? 1 : a < b ? -1 : a > b ? 1 : 0;
}

/**
 * Reads every `<version>_<name>.sql` of `dir`, in version order. Two files with one version are
 * refused.
 *
 * @example
 * ```ts
 * import { mkdtempSync, writeFileSync } from 'node:fs';
 * import { tmpdir } from 'node:os';
 * import { join } from 'node:path';
 * import { loadMigrations } from 'bulwark/postgres';
 * const dir = mkdtempSync(join(tmpdir(), 'mig-'));
 * writeFileSync(join(dir, '0001_a.sql'), '-- migrate:up\nSELECT 1;\n');
 * console.log(loadMigrations(dir).map((m) => m.id)); // ['0001_a']
 * ```
 */
export function loadMigrations(dir: string): Migration[] {
  if (!existsSync(dir)) {
    throw new MigrationError(
      'MIGRATION_FILE_INVALID',
      dir,
      `The migrations directory "${dir}" does not exist: create it (bulwark migrate create NAME --dir DIR makes the first file) or pass --dir`,
    );
  }
  const out: Migration[] = [];
  for (const file of readdirSync(dir).sort()) {
    if (!file.endsWith('.sql')) continue;
    out.push(parseMigration(file, readFileSync(join(dir, file), 'utf8')));
  }
  out.sort((a, b) => compareVersions(a.version, b.version));
  for (let i = 1; i < out.length; i++) {
    if (compareVersions(out[i]!.version, out[i - 1]!.version) === 0) {
      throw new MigrationError(
        'MIGRATION_FILE_INVALID',
        out[i]!.id,
        `Two migrations share version ${out[i]!.version} (${out[i - 1]!.file}, ${out[i]!.file}); give one a new version`,
      );
    }
  }
  return out;
}

/**
 * Writes a new migration file `<UTC timestamp>_<name>.sql` with empty up and down parts and
 * returns its path.
 *
 * @example
 * ```ts
 * import { mkdtempSync } from 'node:fs';
 * import { tmpdir } from 'node:os';
 * import { join } from 'node:path';
 * import { createMigrationFile } from 'bulwark/postgres';
 * const path = createMigrationFile(mkdtempSync(join(tmpdir(), 'mig-')), 'add_email', new Date('2026-01-05T12:00:00Z'));
 * console.log(path.endsWith('20260105120000_add_email.sql')); // true
 * ```
 */
export function createMigrationFile(dir: string, name: string, now: Date = new Date()): string {
  if (!/^[A-Za-z0-9][A-Za-z0-9_.-]*$/.test(name)) {
    throw new MigrationError(
      'MIGRATION_FILE_INVALID',
      name,
      `A migration name is letters, digits, _ . - (got "${name}"), e.g. add_users_email`,
    );
  }
  mkdirSync(dir, { recursive: true });
  const stamp = now.toISOString().replace(/[-:T]/g, '').slice(0, 14);
  const path = join(dir, `${stamp}_${name}.sql`);
  if (existsSync(path)) {
    throw new MigrationError(
      'MIGRATION_FILE_INVALID',
      name,
      `${path} exists already; wait a second or pick another name`,
    );
  }
  writeFileSync(path, `-- migrate:up\n\n\n-- migrate:down\n\n`, { flag: 'wx' });
  return path;
}
