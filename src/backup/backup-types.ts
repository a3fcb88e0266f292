import type { Clock } from '../core/clock.js';
import type { EventBase } from '../core/events.js';
import type { Registry } from '../core/registry.js';
import type { Keyring } from '../durable/encryption.js';
import type { TableStatsMode } from './postgres-source.js';
import type { BackupTarget } from './target.js';

/** Events of a backup manager (kind `backups`). */
export type BackupEvent =
  | (EventBase & {
      readonly kind: 'backups';
      readonly event: 'created';
      readonly id: string;
      readonly bytes: number;
      readonly durationMs: number;
    })
  | (EventBase & {
      readonly kind: 'backups';
      readonly event: 'verified';
      readonly id: string;
      readonly ok: boolean;
      readonly durationMs: number;
    })
  | (EventBase & {
      readonly kind: 'backups';
      readonly event: 'failed';
      readonly operation: string;
      readonly error: unknown;
    })
  | (EventBase & { readonly kind: 'backups'; readonly event: 'pruned'; readonly ids: readonly string[] });

declare module '../core/events.js' {
  interface PolicyEventMap {
    backups: BackupEvent;
  }
}

/** Progress of long work: the phase and, while copying, bytes so far. */
export interface BackupProgress {
  readonly phase: string;
  readonly bytes?: number;
}

/** Options of `createBackups()`. */
export interface BackupsOptions {
  /** Where backups live: a directory, or a `BackupTarget`. */
  target: string | BackupTarget;
  /** Encrypts every file with this keyring's current key (bulwark/durable's `keyring`). Needed to verify and restore them. */
  keyring?: Keyring;
  /** PostgreSQL binaries' directory. Default: found under /usr/lib/postgresql (matching the server's major version), or $BULWARK_PG_BIN, or PATH. */
  pgBinDir?: string;
  /** Default `backups`. */
  name?: string;
  registry?: Registry;
  clock?: Clock;
}

/** Options of `create()`. */
export interface CreateOptions {
  label?: string;
  /** PostgreSQL: per-table figures recorded for verify. Default `checksum`. */
  tableStats?: TableStatsMode;
  onProgress?: (p: BackupProgress) => void;
}

/** The result of `verify()`. */
export interface VerifyReport {
  readonly id: string;
  readonly ok: boolean;
  readonly checkedAt: string;
  readonly durationMs: number;
  readonly files: readonly { name: string; ok: boolean }[];
  readonly tables: readonly { name: string; expectedRows: number; actualRows: number | null; ok: boolean }[];
  /** Each problem found, in words. Empty when ok. */
  readonly problems: readonly string[];
}
