/**
 * The experiment format (YAML or JSON, in the spirit of Chaos Toolkit): setup, open-loop load, a
 * steady-state hypothesis of probes with tolerances, a method of actions, rollbacks and abort
 * conditions. Validated by the one validator `s` (errors name the dotted path); the same rules
 * are published as a JSON Schema (docs/chaos-experiment.schema.json).
 * @module
 */

import { type Infer, type JsonSchema, type Schema, s } from '../../core/schema.js';

/** A discriminated union on `type`: the error names the field of the matching branch. */
function tagged<M extends Record<string, Schema<unknown>>>(map: M, what: string): Schema<Infer<M[keyof M]>> {
  const types = Object.keys(map);
  return s.custom(
    `${what} (type: ${types.join(', ')})`,
    (v, path) => {
      const type = (v as { type?: unknown } | null)?.type;
      if (typeof v !== 'object' || v === null || typeof type !== 'string' || !Object.hasOwn(map, type))
        return s.oneOf(types).parse(type, `${path}.type`) as never;
      return map[type]!.parse(v, path) as Infer<M[keyof M]>;
    },
    { anyOf: types.map((t) => map[t]!.json()) },
  );
}

const name = s.string({ pattern: /^[A-Za-z0-9_.-]+$/, patternRule: 'a name of letters, digits, _ . -' });
const ms = (text: string) => s.duration().describe(text);
const weight = s
  .optional(s.number({ min: 0, max: 10 }), 1)
  .describe('Weight in the score (Litmus: 1 to 10).');

/** A tolerance: the probe's value must equal `equals`, and lie in [min, max]. */
const tolerance = s
  .object({
    min: s.optional(s.number()),
    max: s.optional(s.number()),
    equals: s.optional(
      s.union([s.number(), s.string({ minLength: 0 }), s.boolean()], 'a number, string or boolean'),
    ),
  })
  .describe('The value passes when it equals `equals` and lies within [min, max] (each optional).');

const statusRange = s.object({ min: s.int({ min: 100, max: 599 }), max: s.int({ min: 100, max: 599 }) });

const probeBase = {
  name: s.string(),
  weight,
  tolerance,
};

const probes = {
  successRatio: s.object({ type: s.oneOf(['successRatio'] as const), ...probeBase }),
  latency: s.object({
    type: s.oneOf(['latency'] as const),
    ...probeBase,
    percentile: s.number({ above: 0, max: 100 }).describe('e.g. 99 for p99; the value is in ms.'),
  }),
  http: s.object({
    type: s.oneOf(['http'] as const),
    ...probeBase,
    url: s.string(),
    method: s.optional(s.string(), 'GET'),
    timeoutMs: s.optional(s.duration({ positive: true }), 2_000),
  }),
  metric: s.object({
    type: s.oneOf(['metric'] as const),
    ...probeBase,
    url: s.string().describe('A Prometheus text endpoint (/metrics).'),
    metric: s
      .string()
      .describe('A series: name, optionally with labels: name{label="value"} (matching samples are summed).'),
    increase: s
      .optional(s.boolean(), false)
      .describe('The value is the increase over the run (for counters).'),
    timeoutMs: s.optional(s.duration({ positive: true }), 2_000),
  }),
  module: s.object({
    type: s.oneOf(['module'] as const),
    ...probeBase,
    module: s.string().describe('A module path (relative to the experiment file) or specifier.'),
    export: s.optional(s.string(), 'default'),
    arguments: s.optional(s.record(s.unknown()), {}),
  }),
};

/** The schema of one probe. */
export const probeSchema = tagged(probes, 'a probe');
/** A probe, parsed. */
export type ProbeSpec = Infer<typeof probeSchema>;

const toxic = s.object(
  {
    type: s.string(),
    name: s.optional(s.string()),
    stream: s.optional(s.oneOf(['upstream', 'downstream'] as const)),
    toxicity: s.optional(s.ratio({ zero: true })),
    attributes: s.optional(s.record(s.unknown())),
  },
  { strict: true },
);

const activityBase = {
  name: s.optional(s.string()),
  pauses: s.optional(
    s.object({ beforeMs: s.optional(s.duration(), 0), afterMs: s.optional(s.duration(), 0) }),
  ),
  durationMs: s.optional(
    s
      .duration({ positive: true })
      .describe('The fault is removed after this long (a fault window); absent: at the end of the run.'),
  ),
};
const proxyRef = {
  proxy: s.string().describe('The proxy name.'),
  api: s.optional(
    s.string().describe("A toxiproxy-compatible API URL (default: the experiment's own proxies)."),
  ),
};
const processRef = s.union([s.string(), s.int({ min: 1 })], 'a process name from setup, or a pid');

const actions = {
  toxic: s.object({ type: s.oneOf(['toxic'] as const), ...activityBase, ...proxyRef, toxic }),
  proxyDown: s.object({ type: s.oneOf(['proxyDown'] as const), ...activityBase, ...proxyRef }),
  pauseProxy: s.object({ type: s.oneOf(['pauseProxy'] as const), ...activityBase, ...proxyRef }),
  controlPlane: s.object({
    type: s.oneOf(['controlPlane'] as const),
    ...activityBase,
    url: s.string().describe('The control plane base URL (its /api is appended).'),
    token: s.optional(s.string()),
    kind: s.optional(s.string(), 'chaos'),
    component: s.string(),
    operation: s.oneOf(['enable', 'disable', 'setRate'] as const),
    rate: s.optional(s.ratio({ zero: true })),
    reason: s.optional(s.string(), 'bulwark chaos experiment'),
  }),
  signal: s.object({
    type: s.oneOf(['signal'] as const),
    ...activityBase,
    process: processRef,
    signal: s.optional(
      s.oneOf(['SIGSTOP', 'SIGKILL', 'SIGTERM', 'SIGINT', 'SIGCONT', 'SIGHUP'] as const),
      'SIGTERM',
    ),
  }),
  startProcess: s.object({ type: s.oneOf(['startProcess'] as const), ...activityBase, process: s.string() }),
  module: s.object({
    type: s.oneOf(['module'] as const),
    ...activityBase,
    module: s.string(),
    export: s.optional(s.string(), 'default'),
    arguments: s.optional(s.record(s.unknown()), {}),
  }),
  sleep: s.object({
    type: s.oneOf(['sleep'] as const),
    name: s.optional(s.string()),
    durationMs: s.duration(),
  }),
};

/** The schema of one activity of the method or of the rollbacks. */
export const activitySchema = tagged(actions, 'an activity');
/** An activity, parsed. */
export type ActivitySpec = Infer<typeof activitySchema>;

const setup = {
  proxy: s.object({
    type: s.oneOf(['proxy'] as const),
    name,
    listen: s.optional(s.string(), '127.0.0.1:0'),
    upstream: s.string(),
    kind: s.optional(s.oneOf(['tcp', 'http'] as const), 'tcp'),
  }),
  process: s.object({
    type: s.oneOf(['process'] as const),
    name,
    command: s.array(s.string(), { min: 1 }).describe('argv; its templates are filled.'),
    cwd: s.optional(s.string()),
    env: s.optional(s.record(s.string({ minLength: 0 })), {}),
    ready: s.optional(
      s.object({
        pattern: s
          .string()
          .describe(
            'A regular expression matched on stdout and stderr; its groups become processes.NAME.GROUP template values (group 1: url).',
          ),
        timeoutMs: s.optional(s.duration({ positive: true }), 15_000),
      }),
    ),
    stopTimeoutMs: s.optional(s.duration(), 3_000),
  }),
  file: s.object({
    type: s.oneOf(['file'] as const),
    name,
    content: s.string({ minLength: 0 }),
    extension: s.optional(s.string(), ''),
  }),
};

/** One setup step, parsed. */
export type SetupSpec = Infer<(typeof setup)[keyof typeof setup]>;

const load = s.object({
  url: s.string(),
  method: s.optional(s.string(), 'GET'),
  headers: s.optional(s.record(s.string({ minLength: 0 })), {}),
  body: s.optional(s.string({ minLength: 0 })),
  rate: s.number({ above: 0, max: 100_000 }).describe('Requests per second, sent on schedule (open loop).'),
  timeoutMs: s.optional(s.duration({ positive: true }), 5_000),
  ok: s.optional(statusRange, { min: 200, max: 399 }).describe('Statuses counted as a success.'),
  maxInFlight: s.optional(s.int({ min: 1 }), 10_000),
});

const experimentShape = {
  title: s.string(),
  description: s.optional(s.string({ minLength: 0 }), ''),
  tags: s.optional(s.array(s.string()), []),
  setup: s.optional(s.array(tagged(setup, 'a setup step')), []),
  load: s.optional(load),
  control: s.optional(
    s.object({
      durationMs: ms('Length of the control run (no faults); 0: none.'),
      required: s
        .optional(s.boolean(), true)
        .describe('Stop before the method when the control run misses the hypothesis.'),
    }),
    { durationMs: 0, required: true },
  ),
  durationMs: ms('Length of the experiment run (load, method and recovery).'),
  warmupMs: s
    .optional(s.duration(), 0)
    .describe('Load sent and not recorded before the control run (connections, caches, JIT).'),
  settleMs: s.optional(s.duration(), 0).describe('Wait after the load stops before the end-of-run probes.'),
  'steady-state-hypothesis': s.object({
    title: s.optional(s.string(), 'steady state'),
    probes: s.array(probeSchema, { min: 1 }),
  }),
  method: s.array(activitySchema, { min: 1 }),
  rollbacks: s.optional(s.array(activitySchema), []),
  abort: s.optional(
    s.object({
      probes: s.array(probeSchema, { min: 1 }),
      everyMs: s.optional(s.duration({ positive: true }), 200),
      windowMs: s.optional(s.duration({ positive: true }), 1_000),
      graceMs: s.optional(s.duration(), 0).describe('No abort check before this long into the run.'),
    }),
  ),
  ci: s.optional(
    s.record(s.unknown()).describe('Overrides merged in for a CI-sized run (--ci or BULWARK_CHAOS_CI=1).'),
  ),
};

/** The schema of an experiment file. */
export const experimentSchema = s.object(experimentShape);

/** An experiment, parsed and defaults filled. */
export type Experiment = Infer<typeof experimentSchema>;

/**
 * Validates an experiment value (parsed YAML or JSON); throws `ConfigError` naming the path.
 *
 * @example
 * ```ts
 * import { parseExperiment } from 'bulwark/chaos';
 * const e = parseExperiment({
 *   title: 't', durationMs: 1000,
 *   'steady-state-hypothesis': { probes: [{ name: 'ok', type: 'successRatio', tolerance: { min: 0.99 } }] },
 *   method: [{ type: 'sleep', durationMs: 10 }],
 * });
 * console.log(e.control.durationMs); // 0
 * ```
 */
export function parseExperiment(value: unknown): Experiment {
  return experimentSchema.parse(value, '$');
}

/**
 * The JSON Schema of experiment files (draft 2020-12), from the rules `parseExperiment` applies.
 *
 * @example
 * ```ts
 * import { experimentJsonSchema } from 'bulwark/chaos';
 * console.log(experimentJsonSchema().title); // bulwark chaos experiment
 * ```
 */
export function experimentJsonSchema(): JsonSchema {
  // Deliberate repetition: a JSON Schema document's header ($schema, $id, title), as the gateway's has;
  // the values name this document.
  return {
    $schema: 'https://json-schema.org/draft/2020-12/schema',
    $id: 'https://bulwark.dev/chaos-experiment.schema.json',
    title: 'bulwark chaos experiment',
    ...experimentSchema.json(),
  };
}
