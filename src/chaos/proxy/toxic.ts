/**
 * Toxics: the faults a proxy injects, with toxiproxy's names, attributes and defaults, plus
 * HTTP-aware ones. A toxic applies to a connection (TCP) or a request (HTTP) with probability
 * `toxicity`, drawn once per connection or request.
 */
import { ConfigError } from '../../core/errors.js';
import { type Infer, s } from '../../core/schema.js';

/** Which way the data flows: `upstream` is client → server, `downstream` server → client (the default). */
export type Stream = 'upstream' | 'downstream';

const TCP_ATTRIBUTES = {
  latency: s.object({ latency: s.optional(s.duration(), 0), jitter: s.optional(s.duration(), 0) }),
  bandwidth: s.object({ rate: s.int({ min: 0 }) }),
  slow_close: s.object({ delay: s.optional(s.duration(), 0) }),
  timeout: s.object({ timeout: s.optional(s.duration(), 0) }),
  reset_peer: s.object({ timeout: s.optional(s.duration(), 0) }),
  slicer: s.object({
    average_size: s.optional(s.int({ min: 1 }), 1),
    size_variation: s.optional(s.int({ min: 0 }), 0),
    delay: s.optional(s.int({ min: 0 }), 0),
  }),
  limit_data: s.object({ bytes: s.int({ min: 0 }) }),
} as const;

const MATCH = {
  /** Only requests whose path starts with this. */
  path: s.optional(s.string()),
  /** Only requests with this method. */
  method: s.optional(s.string()),
  /** Only the first N matching requests. */
  first: s.optional(s.int({ min: 0 })),
  /** Only from this many ms after the toxic was added … */
  fromMs: s.optional(s.duration()),
  /** … until this many ms after it was added. */
  untilMs: s.optional(s.duration()),
};

const HTTP_ATTRIBUTES = {
  http_status: s.object({
    ...MATCH,
    status: s.int({ min: 100, max: 599 }),
    body: s.optional(s.string({ minLength: 0 })),
    retry_after: s.optional(s.int({ min: 0 })),
  }),
  http_delay: s.object({
    ...MATCH,
    headers_ms: s.optional(s.duration(), 0),
    body_ms: s.optional(s.duration(), 0),
  }),
  http_abort: s.object({ ...MATCH, after_bytes: s.optional(s.int({ min: 0 }), 0) }),
} as const;

const ATTRIBUTES = { ...TCP_ATTRIBUTES, ...HTTP_ATTRIBUTES };

/** A toxic's type. */
export type ToxicType = keyof typeof ATTRIBUTES;
/** The TCP toxics (toxiproxy's). */
export const TCP_TOXICS = Object.keys(TCP_ATTRIBUTES) as (keyof typeof TCP_ATTRIBUTES)[];
/** The HTTP toxics (ours; for proxies of type `http`). */
export const HTTP_TOXICS = Object.keys(HTTP_ATTRIBUTES) as (keyof typeof HTTP_ATTRIBUTES)[];

/** Parsed attributes per toxic type. */
export type Attributes = { [K in ToxicType]: Infer<(typeof ATTRIBUTES)[K]> };

/** A toxic as the API shows it (toxiproxy's JSON shape). */
export interface ToxicJson {
  readonly name: string;
  readonly type: ToxicType;
  readonly stream: Stream;
  readonly toxicity: number;
  readonly attributes: Record<string, unknown>;
}

/** A live toxic. */
export interface Toxic<T extends ToxicType = ToxicType> extends ToxicJson {
  readonly type: T;
  readonly attributes: Attributes[T];
  /** When it was added (ms, `performance.now()`), for HTTP time windows. */
  readonly addedAt: number;
  /** HTTP requests it applied to (for `first`). */
  applied: number;
}

const TOXIC = s.object({
  name: s.optional(s.string({ maxLength: 200 })),
  type: s.oneOf([...TCP_TOXICS, ...HTTP_TOXICS]),
  stream: s.optional(s.oneOf(['upstream', 'downstream'] as const), 'downstream'),
  toxicity: s.optional(s.number({ min: 0, max: 1 }), 1),
  attributes: s.optional(s.unknown()),
});

/**
 * Parses a toxic from API input (toxiproxy's shape), naming the field at fault.
 *
 * @example
 * ```ts
 * import { parseToxic } from 'bulwark/chaos';
 * const t = parseToxic({ type: 'latency', attributes: { latency: 100, jitter: 10 } }, 'toxic');
 * console.log(t.name, t.stream); // latency_downstream downstream
 * ```
 */
export function parseToxic(input: unknown, path: string, now = performance.now()): Toxic {
  const o = TOXIC.parse(input, path);
  const schema = ATTRIBUTES[o.type];
  const attributes = schema.parse(o.attributes ?? {}, `${path}.attributes`) as Attributes[ToxicType];
  const http = (HTTP_TOXICS as string[]).includes(o.type);
  if (http && o.stream !== 'downstream' && (input as { stream?: unknown }).stream !== undefined) {
    throw new ConfigError(`${path}.stream`, "'downstream' (HTTP toxics act on responses)", o.stream);
  }
  return {
    name: o.name ?? `${o.type}_${o.stream}`,
    type: o.type,
    stream: o.stream,
    toxicity: o.toxicity,
    attributes,
    addedAt: now,
    applied: 0,
  };
}

/** A toxic's JSON (what the API returns). */
export function toxicJson(t: Toxic): ToxicJson {
  return {
    name: t.name,
    type: t.type,
    stream: t.stream,
    toxicity: t.toxicity,
    attributes: { ...t.attributes },
  };
}
