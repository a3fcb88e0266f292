/**
 * A validator of health+json documents (draft-inadarei-api-health-check-06), for the health tests.
 */
import { expect } from 'vitest';

const STATUSES = ['pass', 'warn', 'fail'];
const ROOT_KEYS = [
  'status',
  'version',
  'releaseId',
  'notes',
  'output',
  'checks',
  'links',
  'serviceId',
  'description',
];
const CHECK_KEYS = [
  'componentId',
  'componentType',
  'observedValue',
  'observedUnit',
  'status',
  'affectedEndpoints',
  'time',
  'output',
  'links',
];

/**
 * Validates a document against draft-inadarei-api-health-check-06: field types, allowed statuses,
 * `component:measurement` keys, ISO 8601 times; `output` absent on pass. Throws on the first problem.
 */
export function validateHealthJson(doc: unknown): void {
  expect(doc, 'document').toBeTypeOf('object');
  const d = doc as Record<string, unknown>;
  for (const k of Object.keys(d)) expect(ROOT_KEYS, `unknown root field ${k}`).toContain(k);
  expect(STATUSES).toContain(d.status);
  for (const k of ['version', 'releaseId', 'output', 'serviceId', 'description']) {
    if (d[k] !== undefined) expect(d[k], k).toBeTypeOf('string');
  }
  if (d.status === 'pass') expect(d.output, 'output is omitted on pass').toBeUndefined();
  if (d.notes !== undefined) {
    expect(Array.isArray(d.notes)).toBe(true);
    for (const n of d.notes as unknown[]) expect(n).toBeTypeOf('string');
  }
  if (d.checks !== undefined) {
    expect(d.checks).toBeTypeOf('object');
    for (const [key, list] of Object.entries(d.checks as Record<string, unknown>)) {
      expect(key, 'checks key').toMatch(/^[^:]+:[^:]+$/);
      expect(Array.isArray(list), `checks.${key} is an array`).toBe(true);
      for (const c of list as Record<string, unknown>[]) {
        for (const k of Object.keys(c)) expect(CHECK_KEYS, `unknown check field ${k}`).toContain(k);
        expect(STATUSES).toContain(c.status);
        for (const k of ['componentId', 'componentType', 'observedUnit', 'output']) {
          if (c[k] !== undefined) expect(c[k], `${key}.${k}`).toBeTypeOf('string');
        }
        if (c.componentType !== undefined)
          expect(['component', 'datastore', 'system']).toContain(c.componentType);
        if (c.time !== undefined) {
          expect(c.time).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)$/);
          expect(Number.isNaN(Date.parse(c.time as string))).toBe(false);
        }
        if (c.componentId !== undefined) expect(key.startsWith(`${c.componentId}:`)).toBe(true);
      }
    }
  }
}
