/**
 * Export bundles: a ZIP (yazl, an optional peer) of several exports plus `manifest.json` —
 * schema version, sources, row counts, SHA-256 and size per file, time, who asked. Files are
 * streamed into the archive one after the other; the manifest is added last. The export is
 * recorded in the audit log when one is given (export history).
 * @module
 */

import { createWriteStream } from 'node:fs';
import { PassThrough, type Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { AuditLog } from '../audit/log.js';
import { type Clock, systemClock } from '../core/clock.js';
import { BulwarkError } from '../core/errors.js';
import { EXTENSIONS, type ExportFormat } from './formats.js';
import { recordExport } from './history.js';
import type { ExportSource } from './rows.js';
import { type ExportProgress, exportTo } from './run.js';

/** One file of a bundle. */
export interface ManifestFile {
  readonly path: string;
  readonly source: string;
  readonly format: ExportFormat;
  readonly rows: number;
  readonly bytes: number;
  readonly sha256: string;
  readonly columns: readonly { name: string; type: string; description?: string }[];
}

/** `manifest.json` of a bundle. */
export interface BundleManifest {
  readonly schemaVersion: 1;
  readonly generator: 'bulwark';
  readonly createdAt: string;
  readonly requestedBy: string;
  /** The data subject, for a subject access export. */
  readonly subject?: string;
  readonly files: readonly ManifestFile[];
}

/** Options of `exportBundle`. */
export interface BundleOptions {
  /** What goes in: each source in each of its formats (default json and csv). */
  readonly sources: readonly { readonly source: ExportSource; readonly formats?: readonly ExportFormat[] }[];
  /** A .zip path or a writable stream. */
  readonly to: string | Writable;
  /** Who asked (recorded in the manifest and the audit log). */
  readonly requestedBy: string;
  readonly subject?: string;
  /** Records the export in this audit log (action `export.create`). */
  readonly audit?: AuditLog;
  readonly onProgress?: (file: string, p: ExportProgress) => void;
  readonly clock?: Clock;
}

type ZipFile = {
  outputStream: NodeJS.ReadableStream;
  addReadStream(s: NodeJS.ReadableStream, path: string, options?: { mtime?: Date }): void;
  addBuffer(b: Buffer, path: string, options?: { mtime?: Date }): void;
  end(): void;
};

async function loadZip(): Promise<new () => ZipFile> {
  try {
    const mod = (await import('yazl')) as unknown as {
      default?: { ZipFile: new () => ZipFile };
      ZipFile?: new () => ZipFile;
    };
    return (mod.default?.ZipFile ?? mod.ZipFile)!;
  } catch (cause) {
    throw new BulwarkError(
      'PEER_MISSING',
      'Export bundles need the optional package "yazl": run `npm install yazl`',
      { cause },
    );
  }
}

/**
 * Writes a ZIP bundle with a manifest.
 *
 * @example
 * ```ts
 * import { mkdtempSync } from 'node:fs';
 * import { tmpdir } from 'node:os';
 * import { join } from 'node:path';
 * import { exportBundle, iterableSource } from 'bulwark/export';
 * const to = join(mkdtempSync(join(tmpdir(), 'bundle-')), 'export.zip');
 * const manifest = await exportBundle({ sources: [{ source: iterableSource('users', [{ id: 1 }]) }], to, requestedBy: 'alice' });
 * console.log(manifest.files.map((f) => f.path)); // [ 'users.json', 'users.csv' ]
 * ```
 */
export async function exportBundle(options: BundleOptions): Promise<BundleManifest> {
  const ZipFileCtor = await loadZip();
  const clock = options.clock ?? systemClock;
  const mtime = new Date(clock.date());
  const zip = new ZipFileCtor();
  const target = typeof options.to === 'string' ? createWriteStream(options.to) : options.to;
  const written = pipeline(zip.outputStream, target, { end: typeof options.to === 'string' });
  const files: ManifestFile[] = [];
  for (const { source, formats = ['json', 'csv'] as const } of options.sources) {
    for (const format of formats) {
      const path = `${source.name}.${EXTENSIONS[format]}`;
      const pass = new PassThrough();
      zip.addReadStream(pass, path, { mtime });
      const r = await exportTo({
        source,
        format,
        to: pass,
        clock,
        ...(options.onProgress === undefined
          ? {}
          : { onProgress: (p: ExportProgress) => options.onProgress!(path, p) }),
      });
      pass.end();
      files.push({
        path,
        source: r.source,
        format,
        rows: r.rows,
        bytes: r.bytes,
        sha256: r.sha256,
        columns: r.columns,
      });
    }
  }
  const manifest: BundleManifest = {
    schemaVersion: 1,
    generator: 'bulwark',
    createdAt: mtime.toISOString(),
    requestedBy: options.requestedBy,
    ...(options.subject === undefined ? {} : { subject: options.subject }),
    files,
  };
  zip.addBuffer(Buffer.from(`${JSON.stringify(manifest, null, 2)}\n`), 'manifest.json', { mtime });
  zip.end();
  await written;
  if (options.audit !== undefined) {
    await recordExport(options.audit, {
      actor: options.requestedBy,
      what: files
        .map((f) => f.source)
        .filter((v, i, a) => a.indexOf(v) === i)
        .join(','),
      format: 'zip',
      rows: files.reduce((n, f) => n + f.rows, 0),
      bytes: files.reduce((n, f) => n + f.bytes, 0),
      sha256: files.map((f) => f.sha256).join(','),
      ...(options.subject === undefined ? {} : { subject: options.subject }),
    });
  }
  return manifest;
}
