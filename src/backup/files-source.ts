/**
 * Configuration-file backups: each file (directories are walked) stored with its original path,
 * size and SHA-256; restore writes them under a directory you choose, never over the originals.
 * @module
 */

import { createReadStream, readdirSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { ConfigError } from '../core/errors.js';
import type { Keyring } from '../durable/encryption.js';
import type { ManifestFile, TableStats } from './manifest.js';
import { writeStored } from './stored-file.js';

function walk(path: string, out: string[]): void {
  const st = statSync(path);
  if (st.isDirectory()) for (const e of readdirSync(path).sort()) walk(join(path, e), out);
  else if (st.isFile()) out.push(path);
}

/** Backs up the files and directories in `paths`. @internal */
export async function backupFiles(o: {
  paths: readonly string[];
  dir: string;
  id: string;
  ring: Keyring | undefined;
}): Promise<{ files: ManifestFile[]; tables: TableStats[]; versions: Record<string, string> }> {
  const all: string[] = [];
  for (const p of o.paths) {
    try {
      walk(resolve(p), all);
    } catch (error) {
      throw Object.assign(
        new ConfigError(
          'files',
          'existing files or directories',
          p,
          `Cannot back up ${p}: ${(error as Error).message}`,
        ),
        { cause: error },
      );
    }
  }
  const files: ManifestFile[] = [];
  for (const [i, source] of all.entries()) {
    const name = `file-${String(i + 1).padStart(4, '0')}`;
    const stored = await writeStored(createReadStream(source), join(o.dir, name), o.ring, `${o.id}/${name}`);
    files.push({ name, source, ...stored });
  }
  return { files, tables: [], versions: { node: process.versions.node } };
}
