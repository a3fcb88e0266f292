/**
 * Source positions in a parsed YAML document (the `yaml` package's node ranges), so a
 * `ConfigError`'s dotted option path becomes `file:line:col`. The core imports no package: the
 * caller parses the text and passes the document's root node.
 * @module
 */

type Segment = string | number;

/** The part of a `yaml` node this reads (its source range and, for collections, its items). */
export interface YamlNodeLike {
  range?: [number, number, number] | null;
  items?: unknown[];
}
interface PairLike {
  key: { value?: unknown; range?: [number, number, number] | null } | null;
  value: YamlNodeLike | null;
}

function segmentsOf(option: string): Segment[] {
  const out: Segment[] = [];
  for (const m of option.replace(/^\$/, '').matchAll(/\.([^.[\]]+)|\[(\d+)\]/g)) {
    out.push(m[2] !== undefined ? Number(m[2]) : (m[1] as string));
  }
  return out;
}

/**
 * The source offset of the value at `option` (`$.routes[1].upstream`), or of its key for an
 * unknown key, or of the deepest parent found.
 *
 * @example
 * ```ts nocheck
 * const doc = yamlPackage.parseDocument(text); // the `yaml` package's document
 * const [line, col] = lineColumn(text, yamlOffsetOf(doc.contents, '$.routes[0].upstream', false));
 * ```
 */
export function yamlOffsetOf(root: YamlNodeLike | null, option: string, unknownKey: boolean): number {
  let node: YamlNodeLike | null = root;
  let offset = root?.range?.[0] ?? 0;
  const segs = segmentsOf(option);
  for (let i = 0; i < segs.length; i++) {
    const seg = segs[i]!;
    const items: unknown[] | undefined = node?.items;
    if (items === undefined) break;
    if (typeof seg === 'number') {
      const next = items[seg] as YamlNodeLike | undefined;
      if (next === undefined) break;
      node = next;
      offset = next.range?.[0] ?? offset;
      continue;
    }
    const pair = items.find((p) => String((p as PairLike).key?.value) === seg) as PairLike | undefined;
    if (pair === undefined) break;
    const last = i === segs.length - 1;
    if ((last && unknownKey) || pair.value === null) {
      offset = pair.key?.range?.[0] ?? offset;
      node = pair.value;
      if (last) break;
      continue;
    }
    node = pair.value;
    offset = pair.value.range?.[0] ?? offset;
  }
  return offset;
}

/**
 * 1-based line and column of a source offset.
 *
 * @example
 * ```ts nocheck
 * lineColumn('a: 1\nb: 2', 5); // [2, 1]
 * ```
 */
export function lineColumn(text: string, offset: number): [number, number] {
  let line = 1;
  let start = 0;
  for (let i = 0; i < offset && i < text.length; i++) {
    if (text.charCodeAt(i) === 10) {
      line++;
      start = i + 1;
    }
  }
  return [line, offset - start + 1];
}

/** The first syntax error of a parsed YAML document, at its line and column. */
export interface YamlSyntaxIssue {
  readonly line: number;
  readonly col: number;
  readonly message: string;
  /** The `yaml` package's error. */
  readonly cause: unknown;
}

/**
 * The first syntax error of `doc` (parsed from `text` by the `yaml` package), or null.
 *
 * @example
 * ```ts nocheck
 * const doc = yamlPackage.parseDocument(text, { prettyErrors: false, uniqueKeys: true });
 * const bad = yamlSyntaxIssue(text, doc);
 * if (bad !== null) throw new Error(`${file}:${bad.line}:${bad.col} ${bad.message}`);
 * ```
 */
export function yamlSyntaxIssue(
  text: string,
  doc: { readonly errors: readonly { readonly pos: [number, number]; readonly message: string }[] },
): YamlSyntaxIssue | null {
  const syntax = doc.errors[0];
  if (syntax === undefined) return null;
  const [line, col] = lineColumn(text, syntax.pos[0]);
  return { line, col, message: syntax.message.split('\n')[0] ?? 'invalid YAML', cause: syntax };
}
