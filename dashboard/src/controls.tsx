// Run-time controls with their own panels: limits (bulkheads, rate limits, shedders, adaptive
// limits) with an "adjust" dialog; health overrides; alerts with a silence button; SLO budgets and
// burn rates per window. Actions appear only for roles allowed to take them; each asks for a
// reason (and the dialogs of destructive ones for a typed confirmation).
import { memo } from 'preact/compat';
import { useEffect, useState } from 'preact/hooks';
import { api, type ComponentInfo, type OperationInfo, path, type Snapshot } from './api';
import { fmt } from './model';
import { ActionDialog } from './operations';

type Values = Record<string, string>;
interface Open {
  readonly info: ComponentInfo;
  readonly op: OperationInfo;
  readonly initial: Values;
}

/** Opens an action's dialog once its input schema is loaded (the list carries no schemas). */
function useDialog(onDone: () => void) {
  const [open, setOpen] = useState<Open | null>(null);
  const [error, setError] = useState('');
  const start = async (info: ComponentInfo, name: string, initial: Values = {}) => {
    try {
      const full = await api<ComponentInfo>(path(info.kind, info.name));
      const op = full.operations.find((o) => o.name === name && o.type === 'action');
      if (op === undefined) throw new Error(`${name} is not allowed for you here`);
      setOpen({ info, op, initial });
      setError('');
    } catch (e) {
      setError((e as Error).message);
    }
  };
  const dialog =
    open === null ? null : (
      <ActionDialog
        component={open.info}
        op={open.op}
        selected={[]}
        initial={open.initial}
        close={(done) => {
          setOpen(null);
          if (done) onDone();
        }}
      />
    );
  const problem =
    error === '' ? null : (
      <p class="error" role="alert">
        {error}
      </p>
    );
  return { start, dialog, problem };
}

const can = (info: ComponentInfo, name: string) =>
  info.operations.some((o) => o.name === name && o.type === 'action');

const num = (v: unknown) => (typeof v === 'number' ? String(v) : '');

/** What each limiting kind offers to adjust, and the values to start the dialog from. */
function adjustOf(info: ComponentInfo, s: Snapshot): { op: string; initial: Values; text: string } | null {
  const d = (s.details ?? {}) as Record<string, unknown>;
  switch (info.kind) {
    case 'bulkhead':
      return {
        op: 'setLimits',
        initial: { limit: num(d.limit), queue: num(d.queue) },
        text: `${s.gauges.inFlight ?? 0} / ${d.limit ?? 'per call'} in flight, ${s.gauges.queued ?? 0} queued (max ${d.queue ?? '∞'})`,
      };
    case 'rateLimit':
      return {
        op: 'setLimits',
        initial: { limits: JSON.stringify(d.limits ?? []) },
        text: ((d.limits ?? []) as Record<string, unknown>[])
          .map((l) =>
            Object.entries(l)
              .map(([k, v]) => `${k} ${v}`)
              .join(' '),
          )
          .join('; '),
      };
    case 'loadShedder':
      return {
        op: 'setLimits',
        initial: { capacity: num(d.capacity) },
        text: `${s.gauges.inFlight ?? 0} / ${d.capacity ?? '∞'} in flight, level ${s.state}${d.enabled === false ? ' (off)' : ''}`,
      };
    case 'adaptiveConcurrency':
      return {
        op: 'setBounds',
        initial: { minLimit: num(d.minLimit), maxLimit: num(d.maxLimit) },
        text: `limit ${s.gauges.limit} in [${d.minLimit}, ${d.maxLimit}], ${s.gauges.inFlight ?? 0} in flight`,
      };
    default:
      return null;
  }
}

type Adjust = NonNullable<ReturnType<typeof adjustOf>>;

/** One component's limits: re-rendered only when their text changes (the figures come every second). */
const LimitRow = memo(
  function LimitRow(props: {
    info: ComponentInfo;
    a: Adjust;
    start: (i: ComponentInfo, op: string, v: Values) => void;
  }) {
    const { info: i, a } = props;
    return (
      <tr>
        <td>{i.name}</td>
        <td class="muted">{a.text}</td>
        <td>
          {can(i, a.op) && (
            <button type="button" onClick={() => props.start(i, a.op, a.initial)}>
              Adjust limits of {i.name}
            </button>
          )}
        </td>
      </tr>
    );
  },
  (x, y) =>
    x.info === y.info && x.a.text === y.a.text && JSON.stringify(x.a.initial) === JSON.stringify(y.a.initial),
);

/** Current limits with an "adjust" button per component (operators and admins). */
export function LimitsPanel(props: {
  infos: readonly ComponentInfo[];
  snaps: ReadonlyMap<string, Snapshot>;
  onDone: () => void;
}) {
  const { start, dialog, problem } = useDialog(props.onDone);
  const rows = props.infos
    .map((i) => ({ i, a: adjustOf(i, props.snaps.get(`${i.kind}/${i.name}`) ?? i.snapshot) }))
    .filter((r): r is { i: ComponentInfo; a: Adjust } => r.a !== null);
  if (rows.length === 0) return null;
  const open = (i: ComponentInfo, op: string, v: Values) => void start(i, op, v);
  return (
    <div class="controls">
      <table class="grid">
        <tbody>
          {rows.map(({ i, a }) => (
            <LimitRow key={`${i.kind}/${i.name}`} info={i} a={a} start={open} />
          ))}
        </tbody>
      </table>
      {problem}
      {dialog}
    </div>
  );
}

interface Override {
  readonly target: string;
  readonly value: string;
  readonly reason: string;
  readonly actor: string;
  readonly until: number;
}

/** Manual health overrides in force, and the buttons to force a check or the level, or release. */
export function HealthPanel(props: { info: ComponentInfo; snap: Snapshot; onDone: () => void }) {
  const { start, dialog, problem } = useDialog(props.onDone);
  const overrides = (props.snap.details?.overrides ?? []) as Override[];
  const i = props.info;
  return (
    <div class="controls">
      {overrides.length > 0 ? (
        <ul class="overrides">
          {overrides.map((o) => (
            <li key={o.target}>
              <strong>
                {o.target} forced {o.value}
              </strong>{' '}
              by {o.actor} until {new Date(o.until).toLocaleTimeString()}: {o.reason}{' '}
              {can(i, 'releaseOverride') && (
                <button type="button" onClick={() => void start(i, 'releaseOverride', { target: o.target })}>
                  Release {o.target}
                </button>
              )}
            </li>
          ))}
        </ul>
      ) : (
        <p class="muted small">No manual override.</p>
      )}
      {can(i, 'forceCheck') && (
        <button type="button" onClick={() => void start(i, 'forceCheck', { durationMs: '600000' })}>
          Force a check…
        </button>
      )}{' '}
      {can(i, 'forceLevel') && (
        <button type="button" onClick={() => void start(i, 'forceLevel', { durationMs: '600000' })}>
          Force the degradation level…
        </button>
      )}
      {problem}
      {dialog}
    </div>
  );
}

interface AlertRow {
  readonly rule: string;
  readonly state: string;
  readonly severity: string;
  readonly labels: Record<string, string>;
  readonly annotations: Record<string, string>;
  readonly silencedBy?: string[];
}

/** Firing and pending alerts (silenced ones marked), with a silence button per alert. */
export function AlertsPanel(props: { info: ComponentInfo; snap: Snapshot; onDone: () => void }) {
  const [rows, setRows] = useState<AlertRow[] | null>(null);
  const [tick, setTick] = useState(0);
  const { start, dialog, problem } = useDialog(() => {
    setTick((t) => t + 1);
    props.onDone();
  });
  const i = props.info;
  // Refetched when the manager's alerts or silences change (its snapshot comes with the figures).
  const bucket = JSON.stringify([props.snap.details?.alerts ?? null, props.snap.gauges.silences]);
  useEffect(() => {
    api<AlertRow[]>(`${path(i.kind, i.name)}/views/alerts`)
      .then(setRows)
      .catch(() => setRows([]));
  }, [i.kind, i.name, bucket, tick]);
  return (
    <div class="controls">
      {rows === null || rows.length === 0 ? (
        <p class="muted small">No alert firing or pending.</p>
      ) : (
        <table class="grid">
          <thead>
            <tr>
              <th>alert</th>
              <th>state</th>
              <th>labels</th>
              <th>summary</th>
              <th />
            </tr>
          </thead>
          <tbody>
            {rows.map((a) => {
              const labels = Object.entries(a.labels).filter(([k]) => k !== 'alertname' && k !== 'severity');
              return (
                <tr key={`${a.rule}${JSON.stringify(a.labels)}`}>
                  <td>
                    {a.rule} <span class="muted small">{a.severity}</span>
                  </td>
                  <td>
                    <span class={`badge ${a.state === 'firing' ? 'bad' : 'warn'}`}>{a.state}</span>
                    {a.silencedBy !== undefined && <span class="badge">silenced</span>}
                  </td>
                  <td class="small">{labels.map(([k, v]) => `${k}=${v}`).join(' ')}</td>
                  <td class="small">{a.annotations.summary ?? ''}</td>
                  <td>
                    {a.silencedBy === undefined && can(i, 'silence') && (
                      <button
                        type="button"
                        onClick={() =>
                          void start(i, 'silence', {
                            matchers: JSON.stringify([
                              { name: 'alertname', value: a.rule },
                              ...labels.map(([name, value]) => ({ name, value })),
                            ]),
                            durationMs: '3600000',
                          })
                        }
                      >
                        Silence {a.rule}
                      </button>
                    )}
                  </td>
                </tr>
              );
            })}
          </tbody>
        </table>
      )}
      {problem}
      {dialog}
    </div>
  );
}

interface Burn {
  readonly sli: string;
  readonly window: string;
  readonly events: number;
  readonly burnRate: number;
  readonly budgetSpent: number;
  readonly alertAt: number;
}

/** An SLO's budget left (per SLI) and its burn rate per window against the alert thresholds. */
export function SloPanel(props: { info: ComponentInfo; snap: Snapshot }) {
  const [burns, setBurns] = useState<Burn[]>([]);
  const i = props.info;
  const bucket = JSON.stringify(props.snap.gauges); // refetched when the figures change
  useEffect(() => {
    api<Burn[]>(`${path(i.kind, i.name)}/views/burns`)
      .then(setBurns)
      .catch(() => setBurns([]));
  }, [i.kind, i.name, bucket]);
  const g = props.snap.gauges;
  const slis = [...new Set(burns.map((b) => b.sli))];
  return (
    <div class="controls slo">
      {slis.map((sli) => {
        const left = g[`${sli}ErrorBudgetRemaining`] ?? 1;
        const pct = Math.max(0, Math.min(1, left)) * 100;
        return (
          <div key={sli}>
            <div class="budget">
              <span>
                {i.name} {sli}: error budget left <strong>{fmt(left * 100, 1)}%</strong>
              </span>
              <meter min={0} max={100} low={10} high={50} optimum={100} value={pct} />
            </div>
            <table class="grid">
              <thead>
                <tr>
                  <th>window</th>
                  <th>events</th>
                  <th>burn rate</th>
                  <th>alert at</th>
                  <th>budget spent</th>
                </tr>
              </thead>
              <tbody>
                {burns
                  .filter((b) => b.sli === sli)
                  .map((b) => (
                    <tr key={b.window}>
                      <td>{b.window}</td>
                      <td>{b.events}</td>
                      <td>
                        <span
                          class={`badge ${b.burnRate > b.alertAt ? 'bad' : b.burnRate > 1 ? 'warn' : 'good'}`}
                        >
                          {fmt(b.burnRate, 2)}×
                        </span>
                      </td>
                      <td>{b.alertAt}×</td>
                      <td>{fmt(b.budgetSpent * 100, 2)}%</td>
                    </tr>
                  ))}
              </tbody>
            </table>
          </div>
        );
      })}
    </div>
  );
}
