/**
 * `bulwark/metrics`: Prometheus and OpenTelemetry metrics, alert rules, SLOs and structured logs.
 *
 * @example
 * ```ts
 * import { pipeline, retry, timeout } from 'bulwark';
 * import { createMetrics, prometheusExporter } from 'bulwark/metrics';
 * const metrics = createMetrics();
 * const policy = metrics.track(pipeline(timeout(1_000), retry({ maxAttempts: 3 })), 'api');
 * await policy.execute(() => 42);
 * const exporter = prometheusExporter({ metrics });
 * const { contentType, body } = await exporter();
 * console.log(contentType, body.includes('bulwark_calls_total'));
 * ```
 * @module
 */

export {
  type Alert,
  type AlertContext,
  type AlertExpr,
  AlertManager,
  type AlertNotification,
  type AlertOp,
  type AlertRule,
  type AlertState,
  type AlertsOptions,
  type AlertTransition,
  createAlerts,
  type DefaultRulesOptions,
  defaultAlertRules,
  type LabelMatch,
  type Notifier,
  renderTemplate,
  type Selector,
  type SeriesValue,
} from './alerts.js';
export {
  BulwarkLogs,
  createLogs,
  isSecretKey,
  type LoggerLike,
  type LogsOptions,
  REDACT_PATHS,
  SECRET_KEY_PARTS,
  SECRET_KEYS,
  scrubSecrets,
  scrubString,
} from './logs.js';
export { logNotifier, WebhookError, type WebhookOptions, webhookNotifier } from './notifiers.js';
export {
  type MeterLike,
  type OtelAttributesLike,
  type OtelBatchObservableResultLike,
  type OtelHistogramLike,
  type OtelObservableLike,
  type OtelOptions,
  otelMetrics,
  otelName,
} from './otel.js';
export {
  type MetricsExporter,
  type PrometheusExporterOptions,
  type PromRegistryLike,
  prometheusExporter,
  registerPrometheus,
} from './prometheus.js';
export {
  CALL_OUTCOMES,
  type CallObserver,
  type CallOutcome,
  CallRecorder,
  CIRCUIT_STATES,
  classifyError,
  createMetrics,
  DEFAULT_BUCKETS,
  flatten,
  type HealthLike,
  type HistogramSample,
  METRIC_FAMILIES,
  type MetricFamily,
  Metrics,
  type MetricsOptions,
  type NamedSample,
  type QueueLike,
  type Sample,
  type SloSource,
} from './sink.js';
export {
  BURN_WINDOWS,
  PAGE_BURN_RATE,
  RollingWindow,
  type SliStatus,
  type SloOptions,
  type SloStatus,
  SloTracker,
  sliStatus,
  sloAlertRules,
  sloTracker,
  TICKET_BURN_RATE,
  type WindowCounts,
} from './slo.js';
export { parseOptions } from './validate.js';
