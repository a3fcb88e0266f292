/**
 * A backup's manifest (`manifest.json`, modelled on PostgreSQL's `backup_manifest`): what was
 * backed up, from which server and tool versions, how long it took, every file with its size and
 * SHA-256, the key id when encrypted, and each table's row count and checksum as recorded at
 * backup time (what `verify` compares a restored copy against).
 * @module
 */

import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { s } from '../core/schema.js';

/** The kinds of source a backup can hold. */
export type BackupKind = 'postgres' | 'sqlite' | 'redis' | 'files';

/** One stored file. */
export interface ManifestFile {
  /** File name inside the backup. */
  readonly name: string;
  /** Stored bytes (after encryption). */
  readonly bytes: number;
  /** SHA-256 (hex) of the stored bytes. */
  readonly sha256: string;
  /** The keyring key that wrapped this file's data key, when encrypted. */
  readonly keyId?: string;
  /** For `files` backups: the original path. */
  readonly source?: string;
}

/** A table as recorded at backup time. */
export interface TableStats {
  /** `schema.table` (PostgreSQL) or the table name (SQLite). */
  readonly name: string;
  readonly rows: number;
  /** An order-independent checksum of the rows' text (PostgreSQL) or a SHA-256 of the ordered rows (SQLite). */
  readonly checksum: string;
}

/** `manifest.json`. */
export interface BackupManifest {
  readonly format: 1;
  readonly id: string;
  readonly kind: BackupKind;
  /** The source, with any password removed. */
  readonly source: string;
  /** ISO times. */
  readonly startedAt: string;
  readonly finishedAt: string;
  readonly durationMs: number;
  /** e.g. `{ server: '15.20', pg_dump: '15.20' }`. */
  readonly versions: Readonly<Record<string, string>>;
  readonly files: readonly ManifestFile[];
  /** Per-table figures (PostgreSQL, SQLite); for Redis `[{ name: 'keys', rows: DBSIZE }]`. */
  readonly tables: readonly TableStats[];
  readonly label?: string;
}

const manifestSchema = s.object(
  {
    format: s.oneOf([1] as const),
    id: s.string(),
    kind: s.oneOf(['postgres', 'sqlite', 'redis', 'files'] as const),
    source: s.string({ minLength: 0 }),
    startedAt: s.string(),
    finishedAt: s.string(),
    durationMs: s.number({ min: 0 }),
    versions: s.record(s.string({ minLength: 0 })),
    files: s.array(
      s.object(
        {
          name: s.string(),
          bytes: s.int({ min: 0 }),
          sha256: s.string({ pattern: /^[0-9a-f]{64}$/, patternRule: 'a SHA-256 in hex' }),
          keyId: s.optional(s.string()),
          source: s.optional(s.string()),
        },
        { strict: false },
      ),
    ),
    tables: s.array(
      s.object(
        { name: s.string(), rows: s.int({ min: 0 }), checksum: s.string({ minLength: 0 }) },
        { strict: false },
      ),
    ),
    label: s.optional(s.string()),
  },
  { strict: false },
);

/** Parses and checks a manifest's JSON text (a damaged manifest is a clear `ConfigError`). @internal */
export function parseManifest(text: string, where: string): BackupManifest {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    value = text;
  }
  return manifestSchema.parse(value, where) as BackupManifest;
}

/** SHA-256 (hex) and size of a file, streamed. @internal */
export function hashFile(path: string): Promise<{ sha256: string; bytes: number }> {
  return new Promise((resolve, reject) => {
    const hash = createHash('sha256');
    let bytes = 0;
    createReadStream(path)
      .on('data', (chunk) => {
        bytes += chunk.length;
        hash.update(chunk as Buffer);
      })
      .on('error', reject)
      .on('end', () => resolve({ sha256: hash.digest('hex'), bytes }));
  });
}
