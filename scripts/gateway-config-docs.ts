/**
 * Generates docs/bulwark.schema.json (the JSON Schema editors use) and docs/gateway-config.md
 * (the configuration reference) from the ONE schema the gateway validates with
 * (src/gateway/config.ts). Run: `npm run docs:gateway-config`.
 */
import { writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { JsonSchema } from '../src/core/schema.js';
import { gatewayJsonSchema } from '../src/gateway/config.js';

const root = fileURLToPath(new URL('..', import.meta.url));
const schema = gatewayJsonSchema();
writeFileSync(`${root}docs/bulwark.schema.json`, `${JSON.stringify(schema, null, 2)}\n`);

function typeOf(s: JsonSchema): string {
  if (Array.isArray(s.enum))
    return (s.enum as unknown[]).map((v) => `\`${JSON.stringify(v)}\``).join(' \\| ');
  if (Array.isArray(s.anyOf)) return (s.anyOf as JsonSchema[]).map(typeOf).join(' or ');
  if (s.type === 'array') return `array of ${typeOf(s.items as JsonSchema)}`;
  if (s.type === 'object' && s.additionalProperties !== undefined && s.properties === undefined) return 'map';
  const bounds = [
    s.minimum !== undefined ? `≥ ${s.minimum}` : '',
    s.exclusiveMinimum !== undefined ? `> ${s.exclusiveMinimum}` : '',
    s.maximum !== undefined ? `≤ ${s.maximum}` : '',
  ]
    .filter(Boolean)
    .join(', ');
  return `${String(s.type ?? 'any')}${bounds ? ` (${bounds})` : ''}`;
}

const rows: string[] = [];
function walk(s: JsonSchema, path: string, required: boolean): void {
  if (path !== '') {
    const def = s.default === undefined ? (required ? 'required' : '—') : `\`${JSON.stringify(s.default)}\``;
    rows.push(
      `| \`${path}\` | ${typeOf(s)} | ${def} | ${String(s.description ?? '').replace(/\|/g, '\\|')} |`,
    );
  }
  const props = s.properties as Record<string, JsonSchema> | undefined;
  const req = (s.required as string[] | undefined) ?? [];
  if (props !== undefined)
    for (const [k, v] of Object.entries(props))
      if (k !== '$schema') walk(v, path === '' ? k : `${path}.${k}`, req.includes(k));
  if (s.type === 'array' && (s.items as JsonSchema).type === 'object')
    walk(s.items as JsonSchema, `${path}[]`, false);
  if (s.type === 'object' && typeof s.additionalProperties === 'object' && s.properties === undefined)
    walk(s.additionalProperties as JsonSchema, `${path}.<name>`, false);
  if (Array.isArray(s.anyOf))
    for (const a of s.anyOf as JsonSchema[]) if (a.type === 'object') walk(a, path, false);
}
walk(schema, '', true);

writeFileSync(
  `${root}docs/gateway-config.md`,
  `# Gateway configuration reference (\`bulwark.yaml\`)

Generated from the schema the gateway validates with (\`src/gateway/config.ts\`) by
\`npm run docs:gateway-config\`; do not edit by hand. The same rules are published as a JSON Schema
in \`docs/bulwark.schema.json\` (\`bulwark gateway schema\` prints it): add
\`# yaml-language-server: $schema=./node_modules/bulwark/docs/bulwark.schema.json\` at the top of
your file for completion and checks in editors. Durations are in milliseconds (\`…Ms\`), sizes in
bytes (\`…Bytes\`), ratios in [0, 1] (\`…Ratio\`). \`bulwark validate -c bulwark.yaml\` reports
errors as \`bulwark.yaml:14:5 routes[1].upstream: …\`.

| Option | Type | Default | Meaning |
|---|---|---|---|
${rows.join('\n')}
`,
);
console.log(`wrote docs/bulwark.schema.json and docs/gateway-config.md (${rows.length} options)`);
