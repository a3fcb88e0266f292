// The Bulwark dashboard: status strip, breaker tiles, every other component by category, the
// drill-down with its operations, live over the control plane's event stream.
import { render } from 'preact';
import { useCallback, useEffect, useMemo, useRef, useState } from 'preact/hooks';
import { api, type ComponentInfo, hasToken, type Snapshot, setToken, stream } from './api';
import { AlertsPanel, HealthPanel, LimitsPanel, SloPanel } from './controls';
import { Drilldown } from './drilldown';
import { errorPercent, keyOf, newSeries, record, type Series, volume } from './model';
import { OperationsPanel } from './operations';
import './style.css';
import { ComponentTable, StatusStrip, Tile } from './tiles';

interface Me {
  readonly name: string;
  readonly role: string;
}

type Ev = { kind: string; name: string; event: string; time: number } & Record<string, unknown>;

const SECTIONS: readonly [string, string][] = [
  ['health', 'Dependency checks'],
  ['limiter', 'Rate limiters'],
  ['bulkhead', 'Bulkheads and concurrency'],
  ['shedder', 'Load shedding'],
  ['queue', 'Queues and dead letters'],
  ['alerts', 'Alerts'],
  ['slo', 'SLOs'],
  ['chaos', 'Chaos'],
  ['gateway', 'Gateway'],
  ['database', 'Databases and backups'],
  ['sync', 'Offline sync'],
  ['policy', 'Policies and pipelines'],
  ['audit', 'Audit log'],
];

function Login(props: { done: () => void; error: string }) {
  const [value, setValue] = useState('');
  return (
    <form
      class="login"
      onSubmit={(e) => {
        e.preventDefault();
        setToken(value.trim());
        props.done();
      }}
    >
      <h1>Bulwark control plane</h1>
      <label class="field" for="token">
        <span>Access token</span>
        <input
          id="token"
          type="password"
          autoComplete="current-password"
          value={value}
          onInput={(e) => setValue((e.target as HTMLInputElement).value)}
        />
      </label>
      {props.error !== '' && (
        <p class="error" role="alert">
          {props.error}
        </p>
      )}
      <button type="submit" class="primary">
        Sign in
      </button>
    </form>
  );
}

function App() {
  const [me, setMe] = useState<Me | null>(null);
  const [loginError, setLoginError] = useState('');
  const [infos, setInfos] = useState<readonly ComponentInfo[]>([]);
  const [title, setTitle] = useState('bulwark');
  const [connected, setConnected] = useState(false);
  const [version, setVersion] = useState(0);
  const [selected, setSelected] = useState<string | null>(null);
  const [theme, setTheme] = useState(localStorage.getItem('bulwark.theme') ?? 'auto');
  const snaps = useRef(new Map<string, Snapshot>());
  const series = useRef(new Map<string, Series>());
  const events = useRef(new Map<string, Ev[]>());
  const known = useRef(new Set<string>());

  const load = useCallback(async () => {
    const list = await api<{ title: string; components: ComponentInfo[] }>('components');
    setTitle(list.title);
    known.current = new Set(list.components.map(keyOf));
    setInfos(list.components);
  }, []);

  const signIn = useCallback(() => {
    api<Me>('me')
      .then((m) => {
        setMe(m);
        setLoginError('');
        return load();
      })
      .catch((e: Error) => {
        setToken('');
        setMe(null);
        setLoginError(hasToken() ? e.message : e.message);
      });
  }, [load]);

  useEffect(() => {
    if (hasToken()) signIn();
  }, [signIn]);

  useEffect(() => {
    document.documentElement.dataset.theme = theme;
    localStorage.setItem('bulwark.theme', theme);
  }, [theme]);

  useEffect(() => {
    if (me === null) return;
    const ac = new AbortController();
    let reloading = false;
    void stream(
      {
        status: setConnected,
        figures: (f) => {
          let unknown = false;
          for (const s of f.components) {
            const key = keyOf(s);
            snaps.current.set(key, s);
            let sr = series.current.get(key);
            if (sr === undefined) {
              sr = newSeries();
              series.current.set(key, sr);
            }
            record(sr, s, f.time);
            if (!known.current.has(key)) unknown = true;
          }
          if (unknown && !reloading) {
            reloading = true;
            void load().finally(() => {
              reloading = false;
            });
          }
          setVersion((v) => v + 1);
        },
        event: (e) => {
          const key = keyOf(e);
          const list = events.current.get(key) ?? [];
          list.push(e);
          if (list.length > 100) list.shift();
          events.current.set(key, list);
        },
      },
      ac.signal,
    );
    return () => ac.abort();
  }, [me, load]);

  const breakers = useMemo(() => {
    const list = infos.filter((i) => i.category === 'breaker');
    return list
      .map((i) => {
        const key = keyOf(i);
        const s = snaps.current.get(key) ?? i.snapshot;
        const sr = series.current.get(key) ?? newSeries();
        return { i, s, sr, err: errorPercent(sr, s), vol: volume(sr) };
      })
      .sort((a, b) => b.err - a.err || b.vol - a.vol || a.i.name.localeCompare(b.i.name));
  }, [infos, version]);

  if (me === null) return <Login done={signIn} error={loginError} />;
  const canAct = me.role !== 'viewer';
  const sel = selected === null ? undefined : infos.find((i) => keyOf(i) === selected);
  return (
    <div class="app">
      <header class="top">
        <h1>{title}</h1>
        <span class="muted">
          {me.name} ({me.role})
        </span>
        <label class="theme" for="theme">
          theme{' '}
          <select id="theme" value={theme} onChange={(e) => setTheme((e.target as HTMLSelectElement).value)}>
            <option value="auto">auto</option>
            <option value="light">light</option>
            <option value="dark">dark</option>
          </select>
        </label>
        <button
          type="button"
          onClick={() => {
            setToken('');
            setMe(null);
          }}
        >
          Sign out
        </button>
      </header>
      <StatusStrip infos={infos} snaps={snaps.current} connected={connected} />
      <main>
        {breakers.length > 0 && (
          <section aria-labelledby="h-breakers">
            <h2 id="h-breakers">Circuit breakers</h2>
            <div class="tiles">
              {breakers.map(({ i, s, sr }) => (
                <Tile key={keyOf(i)} info={i} snap={s} series={sr} version={version} select={setSelected} />
              ))}
            </div>
          </section>
        )}
        {SECTIONS.map(([cat, label]) => {
          const list = infos.filter((i) => i.category === cat);
          if (list.length === 0) return null;
          return (
            <section key={cat} aria-labelledby={`h-${cat}`}>
              <h2 id={`h-${cat}`}>{label}</h2>
              <ComponentTable infos={list} snaps={snaps.current} select={setSelected} />
              {(cat === 'limiter' || cat === 'bulkhead' || cat === 'shedder') && (
                <LimitsPanel infos={list} snaps={snaps.current} onDone={() => void load()} />
              )}
              {cat === 'health' &&
                list
                  .filter((i) => i.kind === 'healthMonitor')
                  .map((i) => (
                    <HealthPanel
                      key={keyOf(i)}
                      info={i}
                      snap={snaps.current.get(keyOf(i)) ?? i.snapshot}
                      onDone={() => void load()}
                    />
                  ))}
              {cat === 'alerts' &&
                list
                  .filter((i) => i.kind === 'alertManager')
                  .map((i) => (
                    <AlertsPanel
                      key={keyOf(i)}
                      info={i}
                      snap={snaps.current.get(keyOf(i)) ?? i.snapshot}
                      onDone={() => void load()}
                    />
                  ))}
              {cat === 'slo' &&
                list.map((i) => (
                  <SloPanel key={keyOf(i)} info={i} snap={snaps.current.get(keyOf(i)) ?? i.snapshot} />
                ))}
              {cat === 'audit' &&
                list.map((i) => (
                  <details key={keyOf(i)}>
                    <summary>
                      {i.name}: browse{canAct ? ' and verify' : ''}
                    </summary>
                    <OperationsPanel component={i} onDone={() => void load()} />
                  </details>
                ))}
            </section>
          );
        })}
      </main>
      {sel !== undefined && (
        <Drilldown
          info={sel}
          snap={snaps.current.get(keyOf(sel)) ?? sel.snapshot}
          series={series.current.get(keyOf(sel)) ?? newSeries()}
          version={version}
          events={events.current.get(keyOf(sel)) ?? []}
          close={() => setSelected(null)}
          refresh={() => void load()}
        />
      )}
    </div>
  );
}

render(<App />, document.getElementById('app')!);
