/**
 * `bulwark demo` (what `npm start` runs): scripted flaky upstreams, the gateway in front of them
 * with a demo config (its path is printed), a load generator with mixed priorities, a live line
 * per second and one narrated line per scripted event. `--headless --duration 30` runs the
 * script once and exits 0 with a summary.
 * @module
 */

import { randomBytes } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** Where the command writes (the `bulwark` CLI passes its own). */
interface CliIo {
  out(text: string): void;
  err(text: string): void;
}

import { postgresStore } from '../durable/postgres-store.js';
import type { Gateway } from '../gateway/gateway.js';
import { startGatewayFromFile } from '../gateway/gateway.js';
import { LoadGenerator, p99 } from './load.js';
import { demoConfig, SCRIPT, type ScriptEvent } from './script.js';
import { type DemoUpstream, demoUpstreams } from './upstreams.js';

interface DemoFlags {
  headless: boolean;
  duration: number;
  rate: number;
  json: boolean;
  port: number;
  adminPort: number;
  /** `--redis [URL]`: client limits and breakers shared through this Redis. */
  redis: string | null;
  /** `--postgres [URL]`: the write queue and its records in this PostgreSQL. */
  postgres: string | null;
}

const DEFAULT_REDIS = 'redis://127.0.0.1:6379/0';
const defaultPostgres = () => process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';

const USAGE = `Usage: bulwark demo [--headless] [--duration SECONDS] [--rate REQ_PER_SEC] [--port N] [--admin-port N] [--json]
                    [--redis [redis://…]] [--postgres [postgres://…]]
  Starts demo upstreams that fail on a script, the gateway in front of them, and load.
  Without --headless it runs until Ctrl-C (the script repeats every 30 s).
  --redis     client limits and endpoint breakers in Redis (default ${DEFAULT_REDIS})
  --postgres  the store-and-forward queue and its records in PostgreSQL (default $DATABASE_URL,
              else postgres://postgres@127.0.0.1:5432/postgres; a schema of its own, dropped at the end)`;

function parse(argv: readonly string[]): DemoFlags | string {
  const f: DemoFlags = {
    headless: false,
    duration: 30,
    rate: 40,
    json: false,
    port: 8080,
    adminPort: 9901,
    redis: null,
    postgres: null,
  };
  let i = 0;
  /** The URL after the flag, when it is one; else the default. */
  const url = (scheme: RegExp, fallback: string) => {
    const v = argv[i + 1];
    if (v !== undefined && scheme.test(v)) {
      i++;
      return v;
    }
    return fallback;
  };
  for (; i < argv.length; i++) {
    const a = argv[i]!;
    const num = () => {
      const v = Number(argv[++i]);
      return Number.isFinite(v) && v >= 0 ? v : Number.NaN;
    };
    if (a === '--headless') f.headless = true;
    else if (a === '--json') f.json = true;
    else if (a === '--duration') f.duration = num();
    else if (a === '--rate') f.rate = num();
    else if (a === '--port') f.port = num();
    else if (a === '--admin-port') f.adminPort = num();
    else if (a === '--redis') f.redis = url(/^rediss?:\/\//, DEFAULT_REDIS);
    else if (a === '--postgres') f.postgres = url(/^postgres(ql)?:\/\//, defaultPostgres());
    else return `unknown option ${a}`;
    if (Number.isNaN(f.duration) || Number.isNaN(f.rate) || Number.isNaN(f.port) || Number.isNaN(f.adminPort))
      return `${a} needs a number`;
  }
  if (f.duration < 5) return '--duration must be at least 5 seconds';
  return f;
}

function endpointRequests(gw: Gateway): Map<string, number> {
  const m = new Map<string, number>();
  for (const s of gw.registry.snapshot('gatewayEndpoint')) m.set(s.name, s.counters.successes ?? 0);
  return m;
}

/** Where traffic went between two endpoint snapshots, as "payments-us" names. */
function servedBy(
  before: Map<string, number>,
  after: Map<string, number>,
  names: Map<string, string>,
  group: string,
): string[] {
  const out: string[] = [];
  for (const [k, v] of after)
    if (k.startsWith(`${group}/`) && v > (before.get(k) ?? 0)) out.push(names.get(k) ?? k);
  return out;
}

/**
 * The `redis` / `postgres` lines of the demo's file (a key prefix and a schema of this run), and
 * how to remove the schema at the end.
 */
function sharedSettings(
  f: DemoFlags,
  run: string,
): { yaml: string; drop: () => Promise<void>; schema: string | null } {
  let yaml = '';
  let schema: string | null = null;
  let drop = async () => {};
  if (f.redis !== null)
    yaml += `redis: { url: "${f.redis}", prefix: "bulwark:demo:${run}:", timeoutMs: 200 }\n`;
  if (f.postgres !== null) {
    const u = new URL(f.postgres);
    const own = !u.searchParams.has('schema');
    if (own) u.searchParams.set('schema', `bulwark_demo_${run}`);
    schema = u.searchParams.get('schema');
    yaml += `postgres: "${u.toString()}"\n`;
    if (own)
      drop = async () => {
        const store = postgresStore({ connectionString: u.toString() });
        await store.dropSchema().catch(() => {});
        await store.close();
      };
  }
  return { yaml, drop, schema };
}

/** `bulwark demo`. */
export async function main(argv: readonly string[], io: CliIo): Promise<number> {
  if (argv.includes('--help') || argv.includes('-h')) {
    io.out(USAGE);
    return 0;
  }
  const f = parse(argv.slice(1));
  if (typeof f === 'string') {
    io.err(`${f}\n\n${USAGE}`);
    return 2;
  }
  const ups = demoUpstreams();
  for (const u of ups) await u.start();
  const byName = new Map<string, DemoUpstream>(ups.map((u) => [u.name, u]));
  const dir = mkdtempSync(join(tmpdir(), 'bulwark-demo-'));
  const file = join(dir, 'bulwark.yaml');
  const listen = f.headless ? '127.0.0.1:0' : `127.0.0.1:${f.port}`;
  const admin = f.headless ? '127.0.0.1:0' : `127.0.0.1:${f.adminPort}`;
  const run = randomBytes(4).toString('hex');
  const shared = sharedSettings(f, run);
  writeFileSync(
    file,
    demoConfig(Object.fromEntries(ups.map((u) => [u.name, u.url])), join(dir, 'data'), listen, admin) +
      shared.yaml,
  );
  const dashboardToken = randomBytes(12).toString('hex');
  let gw: Gateway;
  try {
    gw = await startGatewayFromFile(file, {
      watch: true,
      sighup: false,
      adminTokens: [{ name: 'demo', role: 'admin', token: dashboardToken }],
    });
  } catch (error) {
    io.err(
      `bulwark demo: cannot start the gateway: ${(error as Error).message} (try --port/--admin-port, or --headless for free ports)`,
    );
    for (const u of ups) await u.kill();
    await shared.drop();
    return 1;
  }
  const names = new Map<string, string>();
  for (const s of gw.registry.snapshot('gatewayEndpoint')) {
    const url = String(s.details?.url ?? '');
    const u = ups.find((x) => x.url === url);
    if (u !== undefined) names.set(s.name, u.name);
  }
  io.err(`bulwark demo: gateway on ${gw.url}   config ${file}`);
  io.err(
    `bulwark demo: admin ${gw.admin?.url}  (/admin/endpoints, /admin/ejections, /admin/events, /metrics)`,
  );
  io.err(`bulwark demo: dashboard ${gw.admin?.url}/dashboard/  token ${dashboardToken}`);
  const where = gw.fleet?.describe();
  if (where !== undefined)
    io.err(
      `bulwark demo: client limits in ${where.limits}, breakers ${where.breakers}, write queue in ${where.queue}${shared.schema === null ? '' : ` (schema ${shared.schema})`}`,
    );
  io.err(
    `bulwark demo: ${f.headless ? `running the script once (${f.duration} s)` : 'Ctrl-C to stop'}; ${f.rate} req/s of mixed traffic\n`,
  );
  const load = new LoadGenerator(gw.url, f.rate);
  const scale = f.duration / 30;
  const events: string[] = [];
  const ejections: string[] = [];
  gw.onEvent((e) => {
    if (e.event === 'ejected' && e.kind === 'gatewayEndpoint')
      ejections.push(
        `${names.get(e.name) ?? e.name} (${String((e as unknown as { reason: string }).reason)})`,
      );
  });
  load.start();
  const started = Date.now();
  let cycle = 0;
  let stopping = false;
  const onSig = () => {
    stopping = true;
  };
  process.once('SIGINT', onSig);
  process.once('SIGTERM', onSig);
  const pending: { ev: ScriptEvent; at: number; before: Map<string, number>; failedBefore: number }[] = [];
  // Writes answered 202 whose status URL says delivered (only the others are asked again).
  const deliveredOps = new Set<string>();
  const refreshDelivered = async (): Promise<number> => {
    for (const op of load.queuedOps) {
      if (deliveredOps.has(op)) continue;
      // Bounded: a stuck gateway must not stall the live line.
      const r = await fetch(`${gw.url}${op}`, { signal: AbortSignal.timeout(2_000) })
        .then((x) => x.json() as Promise<{ state: string }>)
        .catch(() => ({ state: '?' }));
      if (r.state === 'delivered') deliveredOps.add(op);
    }
    return deliveredOps.size;
  };
  while (!stopping) {
    await new Promise((r) => setTimeout(r, 1000));
    const t = (Date.now() - started) / 1000;
    if (Math.floor(t / scale / 30) !== cycle) cycle = Math.floor(t / scale / 30);
    for (const ev of SCRIPT) {
      const due = cycle * 30 + ev.at;
      if (t / scale >= due && t / scale < due + 1 / scale) {
        await byName.get(ev.upstream)?.set(ev.mode);
        pending.push({ ev, at: t, before: endpointRequests(gw), failedBefore: load.total.failed });
      }
    }
    const w = load.take();
    const eps = gw.registry.snapshot('gatewayEndpoint');
    const open = eps.filter((s) => s.details?.breaker === 'open').length;
    const ejected = eps.filter((s) => s.state === 'ejected').length;
    const kept = gw.registry.snapshot('gatewayRoute').reduce((a, s) => a + (s.counters.queued ?? 0), 0);
    const waiting = Math.max(0, load.queuedOps.length - (await refreshDelivered()));
    const line = `t=${String(Math.round(t)).padStart(3)}s  ${String(w.requests).padStart(3)} req/s  ok ${w.requests === 0 ? '100.0' : ((w.ok / w.requests) * 100).toFixed(1)}%  p99 ${Math.round(p99(w.latencies))} ms  breakers open ${open}  ejected ${ejected}  writes queued ${waiting} (${kept} kept so far)`;
    if (!f.json) io.err(line);
    for (const p of pending.splice(0)) {
      if (t - p.at < 2 * Math.max(scale, 0.5)) {
        pending.push(p);
        continue;
      }
      const group = p.ev.upstream.replace(/-\w+$/, '').replace(/-\d+$/, '');
      const served = servedBy(p.before, endpointRequests(gw), names, group);
      const failed = load.total.failed - p.failedBefore;
      const text = `t=${Math.round(p.at)}s ${p.ev.what} → ${p.ev.expect}; served by ${served.join(', ') || 'none yet'}, ${failed} failed`;
      events.push(text);
      io.err(`  ▸ ${text}`);
    }
    if (f.headless && t >= f.duration) break;
  }
  process.off('SIGINT', onSig);
  process.off('SIGTERM', onSig);
  await load.stop();
  for (const u of ups) if (u.mode === 'down') await u.set('ok');
  // Give queued writes a moment to be delivered.
  const deadline = Date.now() + 15_000;
  const committed = () => ups.filter((u) => u.kind === 'payments').reduce((a, u) => a + u.committed.size, 0);
  const acceptedWrites = load.byRoute.get('payments')?.ok ?? 0;
  let delivered = await refreshDelivered();
  while (delivered < load.queuedOps.length && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 500));
    delivered = await refreshDelivered();
  }
  const duplicates = ups
    .filter((u) => u.kind === 'payments')
    .reduce((a, u) => a + [...u.committed.values()].filter((c) => c > 1).length, 0);
  const routes = gw.registry.snapshot('gatewayRoute');
  const retries = routes.reduce((a, s) => a + (s.counters.retries ?? 0), 0);
  const tot = load.total;
  const success = tot.requests === 0 ? 0 : tot.ok / tot.requests;
  const summary = {
    durationS: Math.round((Date.now() - started) / 1000),
    requests: tot.requests,
    successRatio: Math.round(success * 10_000) / 10_000,
    failed: tot.failed,
    p99Ms: Math.round(p99(tot.latencies)),
    retriesByGateway: retries,
    ejections,
    writesQueued: load.queuedOps.length,
    writesDeliveredAfterOutage: delivered,
    paymentsCommitted: committed(),
    paymentWritesAnswered: acceptedWrites,
    duplicateWrites: duplicates,
    byRoute: Object.fromEntries(load.byRoute),
    events,
    failures: tot.failures.slice(0, 10),
  };
  if (f.json) io.out(JSON.stringify(summary));
  else {
    io.out(
      `\nbulwark demo summary: ${tot.requests} requests in ${summary.durationS} s, ${(success * 100).toFixed(2)}% succeeded (${tot.failed} failed), p99 ${summary.p99Ms} ms\n` +
        `  absorbed: ${retries} retries by the gateway, ${ejections.length} ejections (${ejections.join(', ') || 'none'}),\n` +
        `  ${load.queuedOps.length} writes kept during the payments outage, ${delivered} delivered after it, ${duplicates} duplicate payments\n` +
        `  by route: ${[...load.byRoute].map(([k, v]) => `${k} ${v.ok} ok / ${v.failed} failed`).join(', ')}` +
        (tot.failures.length > 0 ? `\n  failures: ${tot.failures.slice(0, 5).join('; ')}` : ''),
    );
  }
  await gw.close(1_000);
  for (const u of ups) await u.kill();
  await shared.drop();
  // Exit 1 only when the gateway let real harm through: duplicate payments, or most failures not absorbed.
  return success >= 0.9 && duplicates === 0 ? 0 : 1;
}
