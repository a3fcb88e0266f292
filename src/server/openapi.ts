/**
 * The OpenAPI 3.1 document of the admin API, generated from the same schemas that validate the
 * requests: the fixed resources, and one path per operation of every registered component.
 */
import type { Registry } from '../core/registry.js';
import type { JsonSchema } from '../core/schema.js';

const PROBLEM = {
  description: 'An RFC 9457 problem',
  content: {
    'application/problem+json': {
      schema: {
        type: 'object',
        required: ['type', 'title', 'status', 'detail'],
        properties: {
          type: { type: 'string' },
          title: { type: 'string' },
          status: { type: 'integer' },
          detail: { type: 'string' },
          field: { type: 'string' },
          rule: { type: 'string' },
        },
      },
    },
  },
} as const;

const ERRORS = { '400': PROBLEM, '401': PROBLEM, '403': PROBLEM, '404': PROBLEM, '429': PROBLEM } as const;
const OK_JSON = { description: 'OK', content: { 'application/json': { schema: {} } } } as const;

function get(summary: string, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return { get: { summary, security: [{ bearer: [] }], responses: { '200': OK_JSON, ...ERRORS }, ...extra } };
}

/** Query parameters for a view's input schema (one per top-level property). */
function queryParameters(schema: JsonSchema): unknown[] {
  const props = (schema.properties ?? {}) as Record<string, JsonSchema>;
  const required = new Set((schema.required ?? []) as string[]);
  return Object.entries(props).map(([name, p]) => ({
    name,
    in: 'query',
    required: required.has(name),
    schema: p,
  }));
}

/**
 * Builds the OpenAPI document for the components registered now.
 *
 * @example
 * ```ts
 * import { createRegistry, circuitBreaker } from 'bulwark';
 * import { openApiDocument } from 'bulwark/server';
 * const registry = createRegistry();
 * circuitBreaker({ name: 'db', registry });
 * console.log(Object.keys(openApiDocument(registry, 'demo').paths as object).length > 3); // true
 * ```
 */
export function openApiDocument(registry: Registry, title: string): Record<string, unknown> {
  const paths: Record<string, unknown> = {
    '/api/me': get('Who the token belongs to'),
    '/api/components': get('Every registered component with its snapshot and operations'),
    '/api/components/{kind}/{name}': get(
      'One component: snapshot, descriptor, operations with input schemas',
      {
        parameters: [
          { name: 'kind', in: 'path', required: true, schema: { type: 'string' } },
          { name: 'name', in: 'path', required: true, schema: { type: 'string' } },
        ],
      },
    ),
    '/api/stream': {
      get: {
        summary:
          'Server-sent events: component events (with ids, Last-Event-ID resume) and figures every second',
        security: [{ bearer: [] }],
        responses: { '200': { description: 'text/event-stream' }, ...ERRORS },
      },
    },
  };
  for (const c of registry.list()) {
    for (const op of c.operations?.() ?? []) {
      const base = `/api/components/${encodeURIComponent(c.kind)}/${encodeURIComponent(c.name)}`;
      const input = op.input.json();
      if (op.type === 'view') {
        paths[`${base}/views/${op.name}`] = get(op.summary, {
          parameters: queryParameters(input),
          'x-role': op.role ?? 'viewer',
        });
      } else {
        paths[`${base}/actions/${op.name}`] = {
          post: {
            summary: op.summary,
            security: [{ bearer: [] }],
            'x-role': op.role ?? 'operator',
            'x-destructive': op.destructive === true,
            requestBody: {
              required: true,
              content: {
                'application/json': {
                  schema: {
                    type: 'object',
                    required: ['reason'],
                    additionalProperties: false,
                    properties: {
                      input,
                      reason: { type: 'string', minLength: 3, maxLength: 500 },
                      dryRun: { type: 'boolean', default: false },
                    },
                  },
                },
              },
            },
            responses: { '200': OK_JSON, ...ERRORS, '409': PROBLEM, '413': PROBLEM, '415': PROBLEM },
          },
        };
      }
    }
  }
  return {
    openapi: '3.1.0',
    info: { title: `${title} control plane`, version: '1' },
    components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } } },
    paths,
  };
}
