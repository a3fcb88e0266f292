/**
 * The CLI: `bulwark validate` (file:line errors), `bulwark gateway check` (the lint), `bulwark
 * gateway schema`, and `bulwark demo --headless` exiting 0 with its summary.
 */

import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { main } from '../src/cli/main.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'bulwark-gw-cli-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

async function run(argv: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const code = await main(argv, { out: (s) => (out += `${s}\n`), err: (s) => (err += `${s}\n`) });
  return { code, out, err };
}

describe('bulwark validate / gateway check', () => {
  it('the minimal file of the issue is valid as written', async () => {
    const r = await run(['validate', '-c', join(ROOT, 'examples/gateway/minimal.yaml')]);
    expect(r.err).toBe('');
    expect(r.code).toBe(0);
    expect(r.out).toContain('valid (1 routes, 1 upstreams)');
  });

  it('every example file is valid', async () => {
    for (const f of ['minimal.yaml', 'payments.yaml', 'llm.yaml', 'internal.yaml']) {
      const r = await run(['validate', '-c', join(ROOT, 'examples/gateway', f), '--json']);
      expect(JSON.parse(r.out), f).toMatchObject({ ok: true });
    }
  });

  it('points at file:line:col with the path and what is wrong', async () => {
    const file = join(dir, 'bulwark.yaml');
    writeFileSync(
      file,
      readFileSync(join(ROOT, 'examples/gateway/minimal.yaml'), 'utf8').replace(
        'upstream: payments',
        'upstream: paymnts',
      ),
    );
    const r = await run(['validate', '-c', file]);
    expect(r.code).toBe(1);
    expect(r.err.trim()).toBe(
      `${file}:11:15 routes[0].upstream: unknown upstream "paymnts" (known: payments)`,
    );
    writeFileSync(
      file,
      'listen: 127.0.0.1:8080\nupstreams: {}\nroutes:\n  - match: { paht: /x }\n    upstream: a\n',
    );
    const typo = await run(['validate', '-c', file, '--json']);
    expect(JSON.parse(typo.out)).toMatchObject({
      ok: false,
      line: 4,
      column: 14,
      option: 'routes[0].match.paht',
    });
    expect(JSON.parse(typo.out).error).toContain('did you mean routes[0].match.path?');
    expect((await run(['validate', '-c', join(dir, 'missing.yaml')])).code).toBe(1);
    expect((await run(['validate', '--nope'])).code).toBe(2);
  });

  it('gateway check warns about unsafe settings', async () => {
    const file = join(dir, 'unsafe.yaml');
    writeFileSync(
      file,
      `listen: 127.0.0.1:8080
upstreams:
  api: { endpoints: [{ url: "http://127.0.0.1:7001" }], keepAliveTimeoutMs: 0 }
routes:
  - match: { path: / }
    upstream: api
    timeoutMs: 1000
    perTryTimeoutMs: 1000
    retry: { methods: [GET, POST], budgetRatio: 0 }
`,
    );
    const r = await run(['gateway', 'check', '-c', file, '--json']);
    const options = (JSON.parse(r.out) as { findings: { option: string }[] }).findings.map((f) => f.option);
    expect(options).toEqual(
      expect.arrayContaining([
        'routes[0].retry.methods',
        'routes[0].perTryTimeoutMs',
        'routes[0].retry.budgetRatio',
        'routes[0].retry.bufferBytes',
        'upstreams.api.keepAliveTimeoutMs',
      ]),
    );
  });

  it('gateway schema prints the JSON Schema the docs are generated from', async () => {
    const r = await run(['gateway', 'schema']);
    const schema = JSON.parse(r.out) as { properties: Record<string, unknown>; required: string[] };
    expect(schema.required).toEqual(['listen', 'upstreams', 'routes']);
    const published = JSON.parse(readFileSync(join(ROOT, 'docs/bulwark.schema.json'), 'utf8'));
    expect(published).toEqual(schema); // regenerate with `npm run docs:gateway-config`
  });
});

describe('bulwark demo', () => {
  it('--headless --duration 10 exits 0 with a summary showing the failures absorbed', {
    timeout: 120_000,
  }, async () => {
    const { stdout } = await promisify(execFile)(
      process.execPath,
      ['--import', 'tsx', 'test/fixtures/cli-run.ts', 'demo', '--headless', '--duration', '10', '--json'],
      {
        cwd: ROOT,
        timeout: 60_000,
      },
    );
    const s = JSON.parse(stdout) as {
      requests: number;
      successRatio: number;
      duplicateWrites: number;
      writesQueued: number;
      writesDeliveredAfterOutage: number;
      events: string[];
    };
    expect(s.requests).toBeGreaterThan(50);
    expect(s.successRatio).toBeGreaterThanOrEqual(0.9);
    expect(s.duplicateWrites).toBe(0);
    expect(s.writesDeliveredAfterOutage).toBe(s.writesQueued);
    expect(s.events.length).toBeGreaterThan(3);
  });
});
