// Talking to the control plane: JSON calls with the bearer token, and the event stream read with
// fetch (EventSource cannot send an Authorization header).

export interface Snapshot {
  readonly kind: string;
  readonly name: string;
  readonly state: string;
  readonly gauges: Readonly<Record<string, number>>;
  readonly counters: Readonly<Record<string, number>>;
  readonly histograms?: Readonly<
    Record<string, { bounds: number[]; counts: number[]; sum: number; count: number }>
  >;
  readonly details?: Readonly<Record<string, unknown>>;
}

export interface OperationInfo {
  readonly name: string;
  readonly type: 'view' | 'action';
  readonly summary: string;
  readonly role: string;
  readonly destructive: boolean;
  readonly input?: JsonSchema;
}

export interface JsonSchema {
  readonly type?: string;
  readonly properties?: Readonly<Record<string, JsonSchema>>;
  readonly required?: readonly string[];
  readonly enum?: readonly unknown[];
  readonly items?: JsonSchema;
  readonly default?: unknown;
  readonly minimum?: number;
  readonly maximum?: number;
  readonly description?: string;
}

export interface ComponentInfo {
  readonly kind: string;
  readonly name: string;
  readonly category: string;
  readonly help: string;
  readonly states: readonly string[];
  readonly snapshot: Snapshot;
  readonly operations: readonly OperationInfo[];
}

export interface Problem {
  readonly status: number;
  readonly title: string;
  readonly detail: string;
  readonly field?: string;
}

export class ApiError extends Error {
  constructor(readonly problem: Problem) {
    super(problem.detail);
  }
}

let token = sessionStorage.getItem('bulwark.token') ?? '';

export function setToken(value: string): void {
  token = value;
  if (value === '') sessionStorage.removeItem('bulwark.token');
  else sessionStorage.setItem('bulwark.token', value);
}

export function hasToken(): boolean {
  return token !== '';
}

export async function api<T>(path: string, init: { method?: string; body?: unknown } = {}): Promise<T> {
  const res = await fetch(`./api/${path}`, {
    method: init.method ?? 'GET',
    headers: {
      authorization: `Bearer ${token}`,
      ...(init.body !== undefined ? { 'content-type': 'application/json' } : {}),
    },
    ...(init.body !== undefined ? { body: JSON.stringify(init.body) } : {}),
  });
  const text = await res.text();
  const value = text === '' ? null : (JSON.parse(text) as unknown);
  if (!res.ok) throw new ApiError(value as Problem);
  return value as T;
}

export const path = (kind: string, name: string): string =>
  `components/${encodeURIComponent(kind)}/${encodeURIComponent(name)}`;

export interface StreamHandlers {
  figures(data: { time: number; components: Snapshot[] }): void;
  event(data: { kind: string; name: string; event: string; time: number } & Record<string, unknown>): void;
  status(connected: boolean): void;
}

/** Reads the event stream until `signal` aborts, reconnecting with Last-Event-ID. */
export async function stream(handlers: StreamHandlers, signal: AbortSignal): Promise<void> {
  let lastId = '';
  while (!signal.aborted) {
    try {
      const res = await fetch('./api/stream', {
        headers: { authorization: `Bearer ${token}`, ...(lastId !== '' ? { 'last-event-id': lastId } : {}) },
        signal,
      });
      if (!res.ok || res.body === null) throw new Error(`stream ${res.status}`);
      handlers.status(true);
      const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
      let buffer = '';
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buffer += value;
        let end = buffer.indexOf('\n\n');
        while (end >= 0) {
          const frame = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          end = buffer.indexOf('\n\n');
          let type = 'message';
          let data = '';
          for (const line of frame.split('\n')) {
            if (line.startsWith('event: ')) type = line.slice(7);
            else if (line.startsWith('data: ')) data += line.slice(6);
            else if (line.startsWith('id: ')) lastId = line.slice(4);
          }
          if (data === '') continue;
          if (type === 'figures') handlers.figures(JSON.parse(data));
          else if (type === 'event') handlers.event(JSON.parse(data));
        }
      }
    } catch {
      // reconnect below
    }
    handlers.status(false);
    if (!signal.aborted) await new Promise((r) => setTimeout(r, 1000));
  }
}
