// One component in detail: thresholds, figures, calls/s and error % over time (uPlot), its
// events, and the operations the viewer's role allows.
import { useEffect, useRef } from 'preact/hooks';
import uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';
import type { ComponentInfo, Snapshot } from './api';
import { fmt, quantileMs, type Series } from './model';
import { OperationsPanel } from './operations';

function Chart(props: { series: Series; version: number }) {
  const el = useRef<HTMLDivElement>(null);
  const plot = useRef<uPlot | null>(null);
  useEffect(() => {
    if (el.current === null) return;
    plot.current = new uPlot(
      {
        width: Math.min(720, el.current.clientWidth || 720),
        height: 180,
        series: [
          {},
          { label: 'calls/s', stroke: '#3b82f6' },
          { label: 'error %', stroke: '#ef4444', scale: '%' },
        ],
        axes: [
          { stroke: '#8a93a3', grid: { stroke: 'rgba(128,128,128,0.2)' } },
          { stroke: '#8a93a3', grid: { stroke: 'rgba(128,128,128,0.2)' } },
          { side: 1, scale: '%', stroke: '#8a93a3', grid: { show: false } },
        ],
        scales: { '%': { range: [0, 100] } },
      },
      [[], [], []],
      el.current,
    );
    return () => plot.current?.destroy();
  }, []);
  useEffect(() => {
    plot.current?.setData([props.series.times, props.series.rate, props.series.errors]);
  }, [props.version, props.series]);
  return <div ref={el} class="chart" />;
}

export function Drilldown(props: {
  info: ComponentInfo;
  snap: Snapshot;
  series: Series;
  version: number;
  events: readonly { event: string; time: number; [k: string]: unknown }[];
  close: () => void;
  refresh: () => void;
}) {
  const { info, snap } = props;
  const hist = snap.histograms === undefined ? undefined : Object.entries(snap.histograms)[0];
  return (
    <section class="drill" aria-label={`${info.name} details`}>
      <header>
        <h2>
          {info.name} <span class="muted small">{info.kind}</span>
        </h2>
        <button type="button" onClick={props.close} aria-label="close details">
          ×
        </button>
      </header>
      <p class="muted">{info.help}</p>
      <div class="figures">
        <div>
          state <b data-state={snap.state}>{snap.state}</b>
        </div>
        {Object.entries(snap.gauges).map(([k, v]) => (
          <div key={k}>
            {k} <b>{fmt(v, 3)}</b>
          </div>
        ))}
        {Object.entries(snap.counters).map(([k, v]) => (
          <div key={k}>
            {k} <b>{v}</b>
          </div>
        ))}
        {hist !== undefined &&
          [0.5, 0.9, 0.99].map((q) => (
            <div key={q}>
              p{q * 100} <b>{quantileMs(hist[1], q).toFixed(1)} ms</b>
            </div>
          ))}
      </div>
      {snap.details !== undefined && <pre class="result small">{JSON.stringify(snap.details, null, 2)}</pre>}
      <Chart series={props.series} version={props.version} />
      <h3>State timeline</h3>
      {props.events.length === 0 && <p class="muted small">No events since the page opened.</p>}
      <ol class="timeline">
        {props.events
          .slice(-20)
          .reverse()
          .map((e, i) => (
            <li key={`${e.time}-${i}`}>
              <time>{new Date(e.time).toLocaleTimeString()}</time> {e.event}
              {typeof e.from === 'string' && ` ${e.from} → ${String(e.to)}`}
              {typeof e.reason === 'string' && ` (${e.reason})`}
            </li>
          ))}
      </ol>
      <OperationsPanel component={info} onDone={props.refresh} />
    </section>
  );
}
