/**
 * Reads an experiment file (YAML or JSON) and validates it; every problem becomes one error that
 * points at the file, line and column, like the gateway's configuration:
 * `redis.yaml:12:9 method[0].toxic.toxicity: must be a number in [0, 1] (got 2)`.
 * YAML needs the `yaml` package (an optional peer); JSON needs nothing.
 * @module
 */

import { readFile } from 'node:fs/promises';
import { BulwarkError, ConfigError } from '../../core/errors.js';
import { lineColumn, type YamlNodeLike, yamlOffsetOf, yamlSyntaxIssue } from '../../core/yaml-position.js';
import { type Experiment, parseExperiment } from './schema.js';

/** An experiment file that cannot be used: `file:line:col path: message`. */
export class ExperimentFileError extends BulwarkError {
  constructor(
    readonly file: string,
    readonly line: number,
    readonly column: number,
    readonly option: string,
    detail: string,
    cause?: unknown,
  ) {
    super(
      'INVALID_EXPERIMENT',
      // Line 0: no position (the file could not be read).
      `${file}${line === 0 ? ':' : `:${line}:${column}`} ${option === '' ? '' : `${option}: `}${detail}`,
      cause === undefined ? undefined : { cause },
    );
  }
}

type Plain = Record<string, unknown>;
const isPlain = (v: unknown): v is Plain => typeof v === 'object' && v !== null && !Array.isArray(v);

/** `over` merged into `base`: objects key by key, anything else replaced. */
function merge(base: unknown, over: unknown): unknown {
  if (!isPlain(base) || !isPlain(over)) return over;
  const out: Plain = { ...base };
  for (const [k, v] of Object.entries(over)) out[k] = merge(base[k], v);
  return out;
}

/** Options of `parseExperimentText` and `loadExperiment`. */
export interface LoadExperimentOptions {
  /** Apply the file's `ci` overrides (short durations). Default: `BULWARK_CHAOS_CI=1`. */
  readonly ci?: boolean;
}

function positioned(error: unknown, text: string, file: string, root: YamlNodeLike | null): never {
  if (!(error instanceof ConfigError)) throw error;
  const option = error.option.replace(/^\$\.?/, '');
  const [line, col] = lineColumn(text, yamlOffsetOf(root, error.option, error.code === 'UNKNOWN_OPTION'));
  const detail = error.message.startsWith(error.option)
    ? error.message.slice(error.option.length).trim()
    : error.message;
  throw new ExperimentFileError(file, line, col, option, detail.replaceAll('$.', ''), error);
}

/**
 * Parses and validates experiment text (YAML, or JSON which is YAML too). `file` names the source in errors.
 *
 * @example
 * ```ts
 * import { ExperimentFileError, parseExperimentText } from 'bulwark/chaos';
 * const text = 'title: t\ndurationMs: 1000\nsteady-state-hypothesis:\n  probes:\n    - { name: ok, type: successRatio, tolerance: { min: 2 } }\nmethod:\n  - { type: slep, durationMs: 5 }\n';
 * try { await parseExperimentText(text, 'e.yaml'); } catch (err) {
 *   if (err instanceof ExperimentFileError) console.log(err.message); // e.yaml:7:5 method[0].type: …
 * }
 * ```
 */
export async function parseExperimentText(
  text: string,
  file = 'experiment.yaml',
  options: LoadExperimentOptions = {},
): Promise<Experiment> {
  let value: unknown;
  let root: YamlNodeLike | null = null;
  if (/^\s*[{[]/.test(text)) {
    try {
      value = JSON.parse(text);
    } catch (error) {
      throw new ExperimentFileError(file, 1, 1, '', `invalid JSON (${(error as Error).message})`, error);
    }
  }
  if (value === undefined) {
    const yaml = await import('yaml');
    const doc = yaml.parseDocument(text, { prettyErrors: false, uniqueKeys: true });
    const bad = yamlSyntaxIssue(text, doc);
    if (bad !== null) throw new ExperimentFileError(file, bad.line, bad.col, '', bad.message, bad.cause);
    value = doc.toJS({ maxAliasCount: 100 });
    root = doc.contents as YamlNodeLike | null;
  }
  let parsed: Experiment;
  try {
    parsed = parseExperiment(value);
  } catch (error) {
    positioned(error, text, file, root);
  }
  const ci = options.ci ?? process.env.BULWARK_CHAOS_CI === '1';
  if (!ci || parsed.ci === undefined) return parsed;
  try {
    return parseExperiment(merge(value, parsed.ci));
  } catch (error) {
    if (error instanceof ConfigError)
      throw new ExperimentFileError(
        file,
        0,
        0,
        error.option.replace(/^\$\.?/, ''),
        `with the ci overrides: ${error.message}`,
        error,
      );
    throw error;
  }
}

/**
 * Reads and validates an experiment file.
 *
 * @example
 * ```ts nocheck
 * import { loadExperiment } from 'bulwark/chaos';
 * const experiment = await loadExperiment('examples/chaos/redis-slowed.yaml', { ci: true });
 * ```
 */
export async function loadExperiment(file: string, options: LoadExperimentOptions = {}): Promise<Experiment> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (error) {
    throw new ExperimentFileError(
      file,
      0,
      0,
      '',
      `cannot read the file (${(error as Error).message})`,
      error,
    );
  }
  return parseExperimentText(text, file, options);
}
