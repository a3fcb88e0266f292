// Hystrix-style tiles, the status strip and the generic component table.
import { memo } from 'preact/compat';
import type { ComponentInfo, Snapshot } from './api';
import { errorColour, errorPercent, fmt, quantileMs, type Series, stateClass, volume } from './model';

export function Sparkline(props: { values: readonly number[]; label: string }) {
  const w = 120;
  const h = 28;
  const max = Math.max(1, ...props.values);
  const n = props.values.length;
  const points = props.values
    .map((v, i) => `${n <= 1 ? w : (i / (n - 1)) * w},${h - (v / max) * (h - 2) - 1}`)
    .join(' ');
  return (
    <svg class="spark" width={w} height={h} viewBox={`0 0 ${w} ${h}`} role="img" aria-label={props.label}>
      <polyline points={points} fill="none" stroke="currentColor" stroke-width="1.5" />
    </svg>
  );
}

export const Tile = memo(function Tile(props: {
  info: ComponentInfo;
  snap: Snapshot;
  series: Series;
  version: number;
  select: (key: string) => void;
}) {
  const { info, snap, series } = props;
  const pct = errorPercent(series, snap);
  const rps = volume(series);
  const hist = snap.histograms === undefined ? undefined : Object.values(snap.histograms)[0];
  const key = `${info.kind}/${info.name}`;
  const radius = 6 + Math.min(18, Math.sqrt(rps) * 2);
  return (
    <button
      type="button"
      class="tile"
      onClick={() => props.select(key)}
      aria-label={`${info.name}: ${snap.state}, ${pct.toFixed(1)}% errors`}
      data-key={key}
    >
      <div class="tile-head">
        <svg width="40" height="40" aria-hidden="true">
          <circle cx="20" cy="20" r={radius} fill={errorColour(pct)} opacity="0.85" />
        </svg>
        <div>
          <div class="tile-name">{info.name}</div>
          <div class="muted small">{info.kind}</div>
        </div>
        <span class={`badge ${stateClass(snap.state)}`} data-state={snap.state}>
          {snap.state}
        </span>
      </div>
      <div class="tile-figures">
        <span title="error % over 10 s">{pct.toFixed(1)}%</span>
        <span title="calls per second">{rps.toFixed(1)}/s</span>
        {hist !== undefined && <span title="p99">p99 {quantileMs(hist, 0.99).toFixed(0)} ms</span>}
      </div>
      <Sparkline values={series.rate} label={`${info.name} calls per second, last 2 minutes`} />
    </button>
  );
});

export function StatusStrip(props: {
  infos: readonly ComponentInfo[];
  snaps: ReadonlyMap<string, Snapshot>;
  connected: boolean;
}) {
  const by = (cat: string) =>
    props.infos
      .filter((i) => i.category === cat)
      .map((i) => props.snaps.get(`${i.kind}/${i.name}`) ?? i.snapshot);
  const health = by('health');
  const overall =
    health.find((s) => s.kind !== 'healthCheck')?.state ??
    (health.some((s) => stateClass(s.state) === 'bad') ? 'fail' : 'pass');
  const level = health.map((s) => s.details?.level).find((l) => typeof l === 'string') as string | undefined;
  const firing = by('alerts').reduce((n, s) => n + (s.gauges.firing ?? 0), 0);
  const budgets = by('slo')
    .map((s) => s.gauges.successErrorBudgetRemaining ?? s.gauges.budgetRemainingRatio)
    .filter((x): x is number => x !== undefined);
  const breakers = by('breaker');
  const open = breakers.filter((s) => stateClass(s.state) !== 'good').length;
  return (
    <section class="strip" aria-label="status">
      {health.length > 0 && <div class={`pill ${stateClass(overall)}`}>health: {overall}</div>}
      {level !== undefined && <div class={`pill ${stateClass(level)}`}>degradation: {level}</div>}
      <div class={`pill ${firing > 0 ? 'bad' : 'good'}`}>alerts firing: {firing}</div>
      {budgets.length > 0 && (
        <div class={`pill ${Math.min(...budgets) < 0.1 ? 'bad' : 'good'}`}>
          {Math.min(...budgets) < 0
            ? 'error budget overspent'
            : `error budget left: ${(Math.min(...budgets) * 100).toFixed(0)}%`}
        </div>
      )}
      <div class={`pill ${open > 0 ? 'bad' : 'good'}`}>
        breakers open: {open}/{breakers.length}
      </div>
      <div class={`pill ${props.connected ? 'good' : 'warn'}`} aria-live="polite">
        {props.connected ? 'live' : 'reconnecting…'}
      </div>
    </section>
  );
}

function same(a: Snapshot, b: Snapshot): boolean {
  if (a.state !== b.state) return false;
  for (const k in b.gauges) if (a.gauges[k] !== b.gauges[k]) return false;
  return true;
}

const Row = memo(
  function Row(props: { info: ComponentInfo; snap: Snapshot; select: (key: string) => void }) {
    const { info: i, snap: s } = props;
    const key = `${i.kind}/${i.name}`;
    const gauges = Object.entries(s.gauges).slice(0, 6);
    return (
      <tr data-key={key}>
        <td>
          <button type="button" class="link" onClick={() => props.select(key)}>
            {i.name}
          </button>
        </td>
        <td class="muted">{i.kind}</td>
        <td>
          <span class={`badge ${stateClass(s.state)}`} data-state={s.state}>
            {s.state}
          </span>
        </td>
        <td class="small">
          {gauges.map(([k, v]) => (
            <span key={k} class="kv">
              {k} <b>{fmt(v, 2)}</b>
            </span>
          ))}
          {s.gauges.limit !== undefined && s.gauges.inFlight !== undefined && (
            <meter min={0} max={s.gauges.limit} value={s.gauges.inFlight} aria-label="utilisation" />
          )}
        </td>
      </tr>
    );
  },
  (a, b) => a.info === b.info && same(a.snap, b.snap),
);

export function ComponentTable(props: {
  infos: readonly ComponentInfo[];
  snaps: ReadonlyMap<string, Snapshot>;
  select: (key: string) => void;
}) {
  return (
    <div class="scroll">
      <table class="grid">
        <thead>
          <tr>
            <th>name</th>
            <th>kind</th>
            <th>state</th>
            <th>figures</th>
          </tr>
        </thead>
        <tbody>
          {props.infos.map((i) => (
            <Row
              key={`${i.kind}/${i.name}`}
              info={i}
              snap={props.snaps.get(`${i.kind}/${i.name}`) ?? i.snapshot}
              select={props.select}
            />
          ))}
        </tbody>
      </table>
    </div>
  );
}
