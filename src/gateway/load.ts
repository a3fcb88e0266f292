/**
 * Reads `bulwark.yaml` (or JSON) and validates it, turning every problem into one error that
 * points at the file, line and column: `bulwark.yaml:14:5 routes[1].upstream: unknown upstream
 * "paymnts" (known: payments, llm)`. YAML parsing uses the `yaml` package (an optional peer of
 * `bulwark/gateway`) for its source positions.
 * @module
 */

import { readFile } from 'node:fs/promises';
import { BulwarkError, ConfigError } from '../core/errors.js';
import {
  lineColumn as lineCol,
  yamlOffsetOf as offsetOf,
  type YamlNodeLike,
  yamlSyntaxIssue,
} from '../core/yaml-position.js';
import { type GatewayConfig, parseGatewayConfig } from './config.js';

/** A configuration file that cannot be used: `file:line:col path: message`. */
export class GatewayConfigError extends BulwarkError {
  /** The file, as given. */
  readonly file: string;
  /** 1-based line and column of the offending value (0 when unknown). */
  readonly line: number;
  readonly column: number;
  /** The dotted option path (e.g. `routes[1].upstream`), or '' for a syntax error. */
  readonly option: string;

  constructor(file: string, line: number, column: number, option: string, detail: string, cause?: unknown) {
    super(
      'INVALID_CONFIG',
      `${line > 0 ? `${file}:${line}:${column}` : `${file}:`} ${option === '' ? '' : `${option}: `}${detail}`,
      cause === undefined ? undefined : { cause },
    );
    this.file = file;
    this.line = line;
    this.column = column;
    this.option = option;
  }
}

/**
 * Parses and validates configuration text. `file` only names the source in errors.
 *
 * @example
 * ```ts
 * import { parseGatewayYaml, GatewayConfigError } from 'bulwark/gateway';
 * const text = 'listen: 127.0.0.1:8080\nupstreams:\n  api:\n    endpoints: [{ url: "http://127.0.0.1:7001" }]\nroutes:\n  - match: { path: / }\n    upstream: apii\n';
 * try { await parseGatewayYaml(text, 'bulwark.yaml'); } catch (err) {
 *   if (err instanceof GatewayConfigError) console.log(err.message);
 *   // bulwark.yaml:7:15 routes[0].upstream: unknown upstream "apii" (known: api)
 * }
 * ```
 */
export async function parseGatewayYaml(text: string, file = 'bulwark.yaml'): Promise<GatewayConfig> {
  const yaml = await import('yaml');
  const doc = yaml.parseDocument(text, { prettyErrors: false, uniqueKeys: true });
  const bad = yamlSyntaxIssue(text, doc);
  if (bad !== null) throw new GatewayConfigError(file, bad.line, bad.col, '', bad.message, bad.cause);
  const value: unknown = doc.toJS({ maxAliasCount: 100 });
  try {
    return parseGatewayConfig(value);
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    const option = error.option.replace(/^\$\.?/, '');
    const offset = offsetOf(
      doc.contents as YamlNodeLike | null,
      error.option,
      error.code === 'UNKNOWN_OPTION',
    );
    const [line, col] = lineCol(text, offset);
    const detail = error.message.startsWith(error.option)
      ? error.message.slice(error.option.length).trim()
      : error.message;
    throw new GatewayConfigError(file, line, col, option, detail.replaceAll('$.', ''), error);
  }
}

/**
 * Reads and validates a configuration file (YAML; JSON is YAML too).
 *
 * @example
 * ```ts nocheck
 * import { loadGatewayConfig } from 'bulwark/gateway';
 * const config = await loadGatewayConfig('bulwark.yaml');
 * ```
 */
export async function loadGatewayConfig(file: string): Promise<GatewayConfig> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (error) {
    throw new GatewayConfigError(file, 0, 0, '', `cannot read the file (${(error as Error).message})`, error);
  }
  return parseGatewayYaml(text, file);
}
