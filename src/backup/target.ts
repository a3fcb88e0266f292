/**
 * Where backups are kept. A `BackupTarget` stores a finished backup directory, lists backups,
 * reads manifests and makes a backup's files readable locally. `localTarget(dir)` keeps them in a
 * directory: a backup is written into `.partial-<id>` and renamed to `<id>` only once complete,
 * so a crash mid-backup never leaves something that looks like a backup. Other stores (S3-
 * compatible object storage, …) implement the same interface.
 * @module
 */

import { mkdirSync, readdirSync, renameSync, rmSync } from 'node:fs';
import { open, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ConfigError } from '../core/errors.js';
import { type BackupManifest, parseManifest } from './manifest.js';
import { syncFile } from './stored-file.js';

/** A place to keep backups. */
export interface BackupTarget {
  /** A short description for output (e.g. the directory). */
  readonly description: string;
  /** A new, empty local directory to write backup `id` into before `store`. */
  staging(id: string): Promise<string>;
  /** Keeps the finished backup written in `dir` (files + manifest.json) as `id`. */
  store(id: string, dir: string): Promise<void>;
  /** Drops a staging directory after a failed backup. */
  discard(dir: string): Promise<void>;
  /** The ids of every complete backup. */
  list(): Promise<string[]>;
  readManifest(id: string): Promise<BackupManifest>;
  /** A local directory holding the backup's files (a remote target downloads them first); call `release` when done. */
  fetch(id: string): Promise<{ dir: string; release(): Promise<void> }>;
  /** Small side records kept with a backup (e.g. `verify.json`). */
  writeNote(id: string, name: string, text: string): Promise<void>;
  readNote(id: string, name: string): Promise<string | undefined>;
  remove(id: string): Promise<void>;
}

async function syncDir(path: string): Promise<void> {
  const fh = await open(path, 'r');
  try {
    await fh.sync();
  } catch {
    // some file systems do not sync directories
  } finally {
    await fh.close();
  }
}

const ID = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;

function checkId(id: string): string {
  if (!ID.test(id))
    throw new ConfigError('backup id', 'letters, digits, . _ - (a backup id from `bulwark backup list`)', id);
  return id;
}

/**
 * Backups in a local directory (created if absent): `<dir>/<id>/manifest.json` and the files.
 *
 * @example
 * ```ts
 * import { mkdtempSync } from 'node:fs';
 * import { tmpdir } from 'node:os';
 * import { join } from 'node:path';
 * import { localTarget } from 'bulwark/backup';
 * const target = localTarget(mkdtempSync(join(tmpdir(), 'backups-')));
 * console.log(await target.list()); // []
 * ```
 */
export function localTarget(dir: string): BackupTarget {
  if (typeof dir !== 'string' || dir === '')
    throw new ConfigError('localTarget.dir', 'a directory path', dir);
  mkdirSync(dir, { recursive: true });
  return {
    description: dir,
    async staging(id) {
      const path = join(dir, `.partial-${checkId(id)}`);
      rmSync(path, { recursive: true, force: true });
      mkdirSync(path, { recursive: true });
      return path;
    },
    async store(id, staged) {
      // The manifest is flushed before the rename, and the directory after it, so a crash never
      // leaves a complete-looking backup whose manifest is missing.
      await syncFile(join(staged, 'manifest.json'));
      renameSync(staged, join(dir, checkId(id)));
      await syncDir(dir);
    },
    async discard(staged) {
      await rm(staged, { recursive: true, force: true });
    },
    async list() {
      return readdirSync(dir, { withFileTypes: true })
        .filter((e) => e.isDirectory() && ID.test(e.name) && !e.name.startsWith('.'))
        .map((e) => e.name)
        .sort();
    },
    async readManifest(id) {
      const path = join(dir, checkId(id), 'manifest.json');
      let text: string;
      try {
        text = await readFile(path, 'utf8');
      } catch (error) {
        throw Object.assign(
          new ConfigError(
            'backup',
            `an existing backup in ${dir}`,
            id,
            `No backup "${id}" in ${dir} (no ${path}); run \`bulwark backup list\``,
          ),
          { cause: error },
        );
      }
      return parseManifest(text, `${path}`);
    },
    async fetch(id) {
      return { dir: join(dir, checkId(id)), release: async () => {} };
    },
    async writeNote(id, name, text) {
      await writeFile(join(dir, checkId(id), checkId(name)), text);
    },
    async readNote(id, name) {
      try {
        return await readFile(join(dir, checkId(id), checkId(name)), 'utf8');
      } catch {
        return undefined;
      }
    },
    async remove(id) {
      await rm(join(dir, checkId(id)), { recursive: true, force: true });
    },
  };
}
