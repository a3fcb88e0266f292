/**
 * The experiment's report: a text summary for the terminal and a self-contained HTML page (inline
 * SVG charts, no script, no external resource) with throughput, latency percentiles and errors
 * over time for the control and the experiment runs, the fault windows shaded.
 * @module
 */

import type { ProbeResult } from './probes.js';
import type { ExperimentResult, RunResult, SeriesPoint } from './runner.js';

const esc = (s: string): string =>
  s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);

const show = (v: ProbeResult['value']): string =>
  v === null ? '—' : typeof v === 'number' ? String(Math.round(v * 1000) / 1000) : String(v);

function tol(t: ProbeResult['tolerance']): string {
  const parts: string[] = [];
  if (t.equals !== undefined) parts.push(`= ${String(t.equals)}`);
  if (t.min !== undefined) parts.push(`>= ${t.min}`);
  if (t.max !== undefined) parts.push(`<= ${t.max}`);
  return parts.length === 0 ? 'true' : parts.join(' and ');
}

/**
 * A text summary of a result (what the CLI prints at the end).
 *
 * @example
 * ```ts nocheck
 * console.log(textReport(await runExperiment(experiment)));
 * ```
 */
export function textReport(r: ExperimentResult): string {
  const lines = [`${r.title}: ${r.status.toUpperCase()}  score ${r.score} / 100`, `  ${r.scoreFormula}`];
  const byName = new Map((r.control?.probes ?? []).map((p) => [p.name, p]));
  const probes = r.experiment?.probes ?? r.control?.probes ?? [];
  const width = Math.max(10, ...probes.map((p) => p.name.length + 6)) + 2;
  const verdict = (x: ProbeResult): string => (x.weight === 0 ? 'info' : x.passed ? 'ok' : 'FAIL');
  const cell = (x: ProbeResult | undefined): string =>
    x === undefined ? '—' : `${show(x.value)} ${verdict(x)}`;
  lines.push(`  ${'probe (weight)'.padEnd(width)}${'tolerance'.padEnd(20)}${'control'.padEnd(18)}experiment`);
  for (const p of probes) {
    const c = byName.get(p.name);
    const e = r.experiment?.probes.find((x) => x.name === p.name);
    const why = e?.error ?? c?.error;
    lines.push(
      `  ${`${p.name} (${p.weight})`.padEnd(width)}${tol(p.tolerance).padEnd(20)}${cell(c).padEnd(18)}${cell(e)}${why !== undefined ? `  (${why})` : ''}`,
    );
  }
  for (const run of [r.control, r.experiment]) {
    if (run === null) continue;
    lines.push(
      `  ${run.phase}: ${run.requests} requests, ${run.errors} errors, p50 ${run.latency.p50 ?? '—'} ms, p99 ${run.latency.p99 ?? '—'} ms, max ${run.latency.max ?? '—'} ms`,
    );
  }
  if (r.abort !== null)
    lines.push(
      `  aborted at ${Math.round(r.abort.decidedAtMs)} ms: ${r.abort.reason}; every fault removed ${r.abort.clearedAfterMs.toFixed(1)} ms later`,
    );
  for (const rb of r.rollbacks)
    lines.push(`  rollback ${rb.label}: ${rb.ok ? 'ok' : `FAILED (${rb.error})`}`);
  if (r.error !== undefined) lines.push(`  error: ${r.error}`);
  return lines.join('\n');
}

interface Line {
  readonly label: string;
  readonly color: string;
  readonly pick: (p: SeriesPoint) => number | null;
}

const W = 560;
const H = 170;
const PAD = { l: 48, r: 10, t: 12, b: 26 };

function niceMax(v: number): number {
  if (!(v > 0)) return 1;
  const p = 10 ** Math.floor(Math.log10(v));
  for (const m of [1, 2, 2.5, 5, 10]) if (v <= m * p) return m * p;
  return 10 * p;
}

function chart(title: string, unit: string, run: RunResult, lines: readonly Line[]): string {
  const durS = Math.max(1, run.durationMs / 1_000);
  let max = 0;
  for (const p of run.series) for (const l of lines) max = Math.max(max, l.pick(p) ?? 0);
  const top = niceMax(max);
  const x = (t: number): number => PAD.l + (t / 1_000 / durS) * (W - PAD.l - PAD.r);
  const y = (v: number): number => H - PAD.b - (v / top) * (H - PAD.t - PAD.b);
  const parts: string[] = [];
  for (const f of run.faults) {
    const x0 = x(f.startMs);
    const x1 = x(f.endMs ?? run.durationMs);
    parts.push(
      `<rect class="fault" x="${x0.toFixed(1)}" y="${PAD.t}" width="${Math.max(1, x1 - x0).toFixed(1)}" height="${H - PAD.t - PAD.b}"><title>${esc(f.label)}</title></rect>`,
    );
    parts.push(`<text class="flabel" x="${(x0 + 3).toFixed(1)}" y="${PAD.t + 10}">${esc(f.label)}</text>`);
  }
  for (let i = 0; i <= 4; i++) {
    const v = (top * i) / 4;
    parts.push(
      `<line class="grid" x1="${PAD.l}" x2="${W - PAD.r}" y1="${y(v).toFixed(1)}" y2="${y(v).toFixed(1)}"/>`,
    );
    parts.push(
      `<text class="tick" x="${PAD.l - 4}" y="${(y(v) + 3).toFixed(1)}" text-anchor="end">${Number(v.toPrecision(3))}</text>`,
    );
  }
  const step = Math.max(1, Math.ceil(durS / 8));
  for (let s = 0; s <= durS; s += step)
    parts.push(
      `<text class="tick" x="${x(s * 1_000).toFixed(1)}" y="${H - 8}" text-anchor="middle">${s}s</text>`,
    );
  for (const l of lines) {
    const pts = run.series
      .map((p) => [p.t + 500, l.pick(p)] as const)
      .filter((q): q is readonly [number, number] => q[1] !== null)
      .map(([t, v]) => `${x(Math.min(t, run.durationMs)).toFixed(1)},${y(v).toFixed(1)}`);
    if (pts.length > 0)
      parts.push(`<polyline fill="none" stroke="${l.color}" stroke-width="1.8" points="${pts.join(' ')}"/>`);
  }
  const legend = lines
    .map((l) => `<span><i style="background:${l.color}"></i>${esc(l.label)}</span>`)
    .join('');
  return `<figure><figcaption>${esc(title)} <small>(${esc(unit)})</small> ${legend}</figcaption><svg viewBox="0 0 ${W} ${H}" role="img" aria-label="${esc(title)}">${parts.join('')}</svg></figure>`;
}

function runSection(run: RunResult | null, name: string): string {
  if (run === null) return `<section><h2>${name}</h2><p class="muted">Not run.</p></section>`;
  const charts = [
    chart('Throughput', 'requests/s, by scheduled second', run, [
      { label: 'sent', color: '#8a94a6', pick: (p) => p.sent },
      { label: 'ok', color: '#1f9d55', pick: (p) => p.ok },
    ]),
    chart('Latency percentiles', 'ms from the scheduled time', run, [
      { label: 'p50', color: '#3b82f6', pick: (p) => p.p50 },
      { label: 'p90', color: '#a855f7', pick: (p) => p.p90 },
      { label: 'p99', color: '#ef4444', pick: (p) => p.p99 },
    ]),
    chart('Errors', 'failed requests/s', run, [{ label: 'errors', color: '#dc2626', pick: (p) => p.errors }]),
  ];
  const acts = run.activities
    .map(
      (a) =>
        `<li>${(a.atMs / 1_000).toFixed(1)} s — ${esc(a.label)}${a.ok ? '' : ` <b class="bad">failed: ${esc(a.error ?? '')}</b>`}</li>`,
    )
    .join('');
  return `<section><h2>${name} <small>${run.requests} requests · ${run.errors} errors · p50 ${run.latency.p50 ?? '—'} ms · p99 ${run.latency.p99 ?? '—'} ms · ${
    run.hypothesisMet ? '<b class="good">hypothesis met</b>' : '<b class="bad">hypothesis not met</b>'
  }</small></h2><div class="charts">${charts.join('')}</div>${acts === '' ? '' : `<ul class="acts">${acts}</ul>`}</section>`;
}

/**
 * A self-contained HTML report of a result (no script, no external resource).
 *
 * @example
 * ```ts nocheck
 * writeFileSync('report.html', htmlReport(await runExperiment(experiment)));
 * ```
 */
export function htmlReport(r: ExperimentResult): string {
  const control = new Map((r.control?.probes ?? []).map((p) => [p.name, p]));
  const rows = (r.experiment?.probes ?? r.control?.probes ?? [])
    .map((p) => {
      const c = control.get(p.name);
      const e = r.experiment?.probes.find((x) => x.name === p.name);
      const cell = (x: ProbeResult | undefined): string =>
        x === undefined
          ? '<td class="muted">—</td>'
          : `<td class="${x.weight === 0 ? 'muted' : x.passed ? 'good' : 'bad'}">${esc(show(x.value))}${x.error !== undefined ? ` <small>${esc(x.error)}</small>` : ''}</td>`;
      return `<tr><td>${esc(p.name)}</td><td>${esc(p.type)}</td><td>${p.weight}</td><td>${esc(tol(p.tolerance))}</td>${cell(c)}${cell(e)}</tr>`;
    })
    .join('');
  const statusClass = r.status === 'passed' ? 'good' : 'bad';
  const abort =
    r.abort === null
      ? ''
      : `<p class="bad">Aborted at ${(r.abort.decidedAtMs / 1_000).toFixed(2)} s: ${esc(r.abort.reason)}. Every fault was removed ${r.abort.clearedAfterMs.toFixed(1)} ms after the decision.</p>`;
  const rollbacks =
    r.rollbacks.length === 0
      ? ''
      : `<h3>Rollbacks</h3><ul>${r.rollbacks.map((x) => `<li>${esc(x.label)}: ${x.ok ? 'ok' : `<b class="bad">failed: ${esc(x.error ?? '')}</b>`}</li>`).join('')}</ul>`;
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>${esc(r.title)} — bulwark chaos report</title>
<style>
body{font:14px/1.45 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:0;padding:24px 32px;color:#1d2330;background:#f7f8fa}
h1{font-size:22px;margin:0 0 4px}h2{font-size:16px;margin:24px 0 8px}h2 small{font-weight:400;color:#5b6474;font-size:13px}
.muted{color:#6b7280}.good{color:#15803d}.bad{color:#b91c1c}
.score{display:inline-block;font-size:30px;font-weight:700;margin-right:14px}
.status{display:inline-block;padding:2px 10px;border-radius:12px;font-weight:600;background:#eef0f4}
table{border-collapse:collapse;background:#fff;margin-top:8px}td,th{padding:5px 10px;border-bottom:1px solid #e5e7eb;text-align:left}th{font-weight:600;color:#4b5563}
.charts{display:flex;flex-wrap:wrap;gap:12px}figure{margin:0;background:#fff;border:1px solid #e5e7eb;border-radius:6px;padding:8px;width:${W}px}
figcaption{font-weight:600;margin-bottom:2px}figcaption span{font-weight:400;margin-left:10px;font-size:12px}figcaption i{display:inline-block;width:10px;height:3px;margin-right:4px;vertical-align:middle}
svg{width:100%;height:auto}.fault{fill:#f59e0b;opacity:.18}.flabel{font-size:10px;fill:#92400e}.grid{stroke:#eef0f4}.tick{font-size:10px;fill:#6b7280}
code{background:#eef0f4;padding:1px 4px;border-radius:3px}.acts{color:#4b5563}
</style></head><body>
<h1>${esc(r.title)}</h1>
<p class="muted">${esc(r.description)}</p>
<p><span class="score">${r.score}<small style="font-size:14px"> / 100</small></span><span class="status ${statusClass}">${esc(r.status)}</span>
<span class="muted"> · ${esc(r.startedAt)} → ${esc(r.finishedAt)}${r.load !== null ? ` · open-loop load ${r.load.rate} req/s to <code>${esc(r.load.url)}</code>` : ''}</span></p>
<p class="muted">Resilience score: <code>${esc(r.scoreFormula)}</code></p>
${abort}${r.error !== undefined ? `<p class="bad">Error: ${esc(r.error)}</p>` : ''}
<h2>Steady-state hypothesis</h2>
<table><thead><tr><th>probe</th><th>type</th><th>weight</th><th>tolerance</th><th>control run</th><th>experiment run</th></tr></thead><tbody>${rows}</tbody></table>
${runSection(r.control, 'Control run (no faults)')}
${runSection(r.experiment, 'Experiment run (shaded: faults active)')}
${rollbacks}
</body></html>
`;
}
