// Views (read-only queries) and actions (audited changes) offered by a component, with forms
// generated from their input JSON Schemas. Actions ask for a reason and a confirmation.
import { useEffect, useRef, useState } from 'preact/hooks';
import { ApiError, api, type ComponentInfo, type JsonSchema, type OperationInfo, path } from './api';

type Values = Record<string, string>;

/** Fields whose value is structured (objects, lists of objects): typed as JSON. */
function isJson(schema: JsonSchema | undefined): boolean {
  if (schema === undefined) return false;
  if (schema.type === 'object' || (schema.type === undefined && schema.enum === undefined)) return true;
  return (
    schema.type === 'array' && schema.items !== undefined && (schema.items.type ?? 'object') === 'object'
  );
}

function coerce(schema: JsonSchema | undefined, raw: string): unknown {
  if (raw === '') return undefined;
  if (isJson(schema)) {
    try {
      return JSON.parse(raw);
    } catch {
      return raw; // the server names the field
    }
  }
  switch (schema?.type) {
    case 'integer':
    case 'number':
      return Number(raw);
    case 'boolean':
      return raw === 'true';
    case 'array':
      return raw
        .split(',')
        .map((x) => x.trim())
        .filter((x) => x !== '')
        .map((x) => coerce(schema.items, x));
    default:
      return raw;
  }
}

function toInput(schema: JsonSchema | undefined, values: Values): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(values)) {
    const c = coerce(schema?.properties?.[k], v);
    if (c !== undefined) out[k] = c;
  }
  return out;
}

function Fields(props: {
  schema: JsonSchema | undefined;
  values: Values;
  set: (v: Values) => void;
  idPrefix: string;
}) {
  const entries = Object.entries(props.schema?.properties ?? {});
  return (
    <>
      {entries.map(([key, s]) => {
        const id = `${props.idPrefix}-${key}`;
        const value = props.values[key] ?? '';
        const onInput = (e: Event) =>
          props.set({ ...props.values, [key]: (e.target as HTMLInputElement).value });
        return (
          <label key={key} for={id} class="field">
            <span>
              {key}
              {props.schema?.required?.includes(key) ? ' *' : ''}
            </span>
            {isJson(s) ? (
              <textarea
                id={id}
                rows={3}
                value={value}
                onInput={onInput}
                placeholder={s.description ?? 'JSON'}
                spellcheck={false}
              />
            ) : s.enum !== undefined || s.type === 'boolean' ? (
              <select id={id} value={value} onChange={onInput}>
                <option value="">(default)</option>
                {(s.enum ?? [true, false]).map((v) => (
                  <option key={String(v)} value={String(v)}>
                    {String(v)}
                  </option>
                ))}
              </select>
            ) : (
              <input
                id={id}
                value={value}
                onInput={onInput}
                inputMode={s.type === 'integer' || s.type === 'number' ? 'decimal' : 'text'}
                placeholder={
                  s.default !== undefined ? String(s.default) : s.type === 'array' ? 'a, b, c' : ''
                }
              />
            )}
          </label>
        );
      })}
    </>
  );
}

/** A table of whatever a view returned. Rows with an `id` can be selected (for an action's `ids`). */
function ResultTable(props: { rows: unknown; selected: Set<string>; toggle: (id: string) => void }) {
  if (!Array.isArray(props.rows)) return <pre class="result">{JSON.stringify(props.rows, null, 2)}</pre>;
  if (props.rows.length === 0) return <p class="muted">Nothing to show.</p>;
  const cols = [...new Set(props.rows.flatMap((r) => Object.keys((r ?? {}) as object)))].slice(0, 8);
  const hasId = cols.includes('id');
  return (
    <div class="scroll">
      <table class="grid">
        <thead>
          <tr>
            {hasId && <th aria-label="select" />}
            {cols.map((c) => (
              <th key={c}>{c}</th>
            ))}
          </tr>
        </thead>
        <tbody>
          {props.rows.map((r, i) => {
            const row = (r ?? {}) as Record<string, unknown>;
            const id = String(row.id ?? i);
            return (
              <tr key={id}>
                {hasId && (
                  <td>
                    <input
                      type="checkbox"
                      aria-label={`select ${id}`}
                      checked={props.selected.has(id)}
                      onChange={() => props.toggle(id)}
                    />
                  </td>
                )}
                {cols.map((c) => (
                  <td key={c}>
                    {typeof row[c] === 'object' ? JSON.stringify(row[c]) : String(row[c] ?? '')}
                  </td>
                ))}
              </tr>
            );
          })}
        </tbody>
      </table>
    </div>
  );
}

export function OperationsPanel(props: { component: ComponentInfo; onDone: () => void }) {
  const [schemas, setSchemas] = useState<readonly OperationInfo[] | null>(null);
  const [open, setOpen] = useState<OperationInfo | null>(null);
  const [rows, setRows] = useState<unknown>(null);
  const [selected, setSelected] = useState<Set<string>>(new Set());
  const [error, setError] = useState('');
  const c = props.component;
  useEffect(() => {
    api<ComponentInfo>(path(c.kind, c.name))
      .then((full) => setSchemas(full.operations))
      .catch((e: Error) => setError(e.message));
  }, [c.kind, c.name]);
  const ops = schemas ?? c.operations;
  const views = ops.filter((o) => o.type === 'view');
  const actions = ops.filter((o) => o.type === 'action');
  const runView = async (op: OperationInfo, input: Record<string, unknown>) => {
    const q = new URLSearchParams(
      Object.entries(input).map(([k, v]) => [k, Array.isArray(v) ? v.join(',') : String(v)]),
    );
    try {
      setRows(await api(`${path(c.kind, c.name)}/views/${op.name}?${q}`));
      setSelected(new Set());
      setError('');
    } catch (e) {
      setError((e as Error).message);
    }
  };
  return (
    <div class="ops" data-loaded={String(schemas !== null)}>
      {views.map((op) => (
        <ViewForm key={op.name} op={op} run={runView} />
      ))}
      {rows !== null && (
        <ResultTable
          rows={rows}
          selected={selected}
          toggle={(id) => {
            const next = new Set(selected);
            if (next.has(id)) next.delete(id);
            else next.add(id);
            setSelected(next);
          }}
        />
      )}
      {actions.length > 0 && (
        <fieldset class="actions">
          <legend class="small muted">actions</legend>
          {actions.map((op) => (
            <button
              type="button"
              key={op.name}
              class={op.destructive ? 'danger' : ''}
              onClick={() => setOpen(op)}
              title={op.summary}
            >
              {op.name}
            </button>
          ))}
        </fieldset>
      )}
      {error !== '' && (
        <p class="error" role="alert">
          {error}
        </p>
      )}
      {open !== null && (
        <ActionDialog
          component={c}
          op={open}
          selected={[...selected]}
          close={(done) => {
            setOpen(null);
            if (done) props.onDone();
          }}
        />
      )}
    </div>
  );
}

function ViewForm(props: {
  op: OperationInfo;
  run: (op: OperationInfo, input: Record<string, unknown>) => void;
}) {
  const [values, setValues] = useState<Values>({});
  return (
    <form
      class="view"
      onSubmit={(e) => {
        e.preventDefault();
        props.run(props.op, toInput(props.op.input, values));
      }}
    >
      <Fields schema={props.op.input} values={values} set={setValues} idPrefix={`view-${props.op.name}`} />
      <button type="submit" title={props.op.summary}>
        {props.op.name}
      </button>
    </form>
  );
}

/** The dialog of an action: its fields, a reason, a typed confirmation when destructive, dry run. */
export function ActionDialog(props: {
  component: ComponentInfo;
  op: OperationInfo;
  selected: string[];
  close: (done: boolean) => void;
  /** Values to start from (e.g. the current limits, or matchers for a silence). */
  initial?: Values;
}) {
  const { component: c, op } = props;
  const ref = useRef<HTMLDialogElement>(null);
  const idsField = op.input?.properties?.ids !== undefined && props.selected.length > 0;
  const [values, setValues] = useState<Values>(
    idsField ? { ids: props.selected.join(', ') } : { ...(props.initial ?? {}) },
  );
  const [reason, setReason] = useState('');
  const [confirm, setConfirm] = useState('');
  const [message, setMessage] = useState('');
  const [busy, setBusy] = useState(false);
  useEffect(() => {
    ref.current?.showModal();
  }, []);
  const submit = async (dryRun: boolean) => {
    setBusy(true);
    try {
      const out = await api<{ result: unknown }>(`${path(c.kind, c.name)}/actions/${op.name}`, {
        method: 'POST',
        body: { input: toInput(op.input, values), reason, dryRun },
      });
      if (dryRun) setMessage(`Dry run: ${JSON.stringify(out.result)}`);
      else {
        ref.current?.close();
        props.close(true);
      }
    } catch (e) {
      const p = e instanceof ApiError ? e.problem : undefined;
      setMessage(p?.field !== undefined ? `${p.field}: ${p.detail}` : (e as Error).message);
    } finally {
      setBusy(false);
    }
  };
  const confirmed = !op.destructive || confirm === c.name;
  return (
    <dialog ref={ref} class="dialog" aria-labelledby="dialog-title" onCancel={() => props.close(false)}>
      <form
        method="dialog"
        onSubmit={(e) => {
          e.preventDefault();
          void submit(false);
        }}
      >
        <h3 id="dialog-title">
          {op.name} — {c.kind} “{c.name}”
        </h3>
        <p class="muted">{op.summary}</p>
        <Fields schema={op.input} values={values} set={setValues} idPrefix="action" />
        <label class="field" for="action-reason">
          <span>reason *</span>
          <input
            id="action-reason"
            value={reason}
            required
            minLength={3}
            onInput={(e) => setReason((e.target as HTMLInputElement).value)}
          />
        </label>
        {op.destructive && (
          <label class="field" for="action-confirm">
            <span>type “{c.name}” to confirm</span>
            <input
              id="action-confirm"
              value={confirm}
              onInput={(e) => setConfirm((e.target as HTMLInputElement).value)}
            />
          </label>
        )}
        {message !== '' && (
          <p class="error" role="status">
            {message}
          </p>
        )}
        <div class="buttons">
          <button type="button" onClick={() => props.close(false)}>
            Cancel
          </button>
          {op.destructive && (
            <button type="button" disabled={busy || reason.length < 3} onClick={() => void submit(true)}>
              Dry run
            </button>
          )}
          <button
            type="submit"
            class={op.destructive ? 'danger' : 'primary'}
            disabled={busy || reason.length < 3 || !confirmed}
          >
            Confirm {op.name}
          </button>
        </div>
      </form>
    </dialog>
  );
}
