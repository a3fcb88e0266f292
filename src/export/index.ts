/**
 * `bulwark/export`: streaming exports in JSON, NDJSON, CSV (RFC 4180, formula-neutralised),
 * SQL (PostgreSQL and SQLite) and Markdown, from queues, dead letters, the audit log, SQLite or
 * PostgreSQL queries and any async iterable; ZIP bundles with a manifest; export history in the
 * audit log; subject access and erasure.
 * @module
 */

export { type BundleManifest, type BundleOptions, exportBundle, type ManifestFile } from './bundle.js';
export { CsvNeutraliser } from './csv-neutralise.js';
export {
  batched,
  EXTENSIONS,
  type ExportFormat,
  FORMATS,
  type FormatContext,
  type RowBatches,
} from './formats.js';
export { type ExportRecord, exportHistory, recordExport } from './history.js';
export {
  type Column,
  type ColumnType,
  type CsvCopy,
  cellText,
  type ExportSource,
  inferColumns,
  iterableSource,
  jsonValue,
  type Row,
} from './rows.js';
export { type ExportOptions, type ExportProgress, type ExportResult, exportTo, progressLine } from './run.js';
export { auditSource, postgresQuerySource, queueSource, sqliteQuerySource } from './sources.js';
export { ident, literal, type SqlDialect, sqlChunks } from './sql.js';
export {
  eraseSubject,
  type SubjectDataset,
  SubjectDatasets,
  subjectAccess,
  subjectDatasets,
} from './subjects.js';
