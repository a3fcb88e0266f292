/**
 * `bulwark/metrics`: Prometheus and OpenTelemetry metrics, alert rules, SLOs and structured logs
 * of every component of a registry — read from their snapshots, descriptors and events only.
 *
 * @example
 * ```ts
 * import { createRegistry } from 'bulwark';
 * import { createAlerts, createMetrics, prometheusExporter } from 'bulwark/metrics';
 * const registry = createRegistry();
 * const metrics = createMetrics({ registry });
 * createAlerts({ metrics, registry });
 * const { contentType, body } = await prometheusExporter({ metrics })();
 * console.log(contentType, body.includes('bulwark_alert_manager_rules{name="alerts"}'));
 * ```
 * @module
 */

export { type DefaultRulesOptions, defaultAlertRules } from './default-rules.js';
export {
  type AlertContext,
  type AlertExpr,
  type AlertOp,
  type LabelMatch,
  renderTemplate,
  type Selector,
  type SeriesValue,
} from './expressions.js';
export {
  BulwarkLogs,
  createLogs,
  isSecretKey,
  type LoggerLike,
  type LogLevel,
  type LogsOptions,
  REDACT_PATHS,
  SECRET_KEY_PARTS,
  SECRET_KEYS,
  scrubSecrets,
  scrubString,
} from './logs.js';
export {
  ALERT_MANAGER_DESCRIPTOR,
  type Alert,
  AlertManager,
  type AlertManagerEvent,
  type AlertManagerState,
  type AlertNotification,
  type AlertRule,
  type AlertState,
  type AlertsOptions,
  type AlertTransition,
  createAlerts,
  type Notifier,
} from './manager.js';
export { createMetrics, type Metrics, type MetricsOptions } from './metrics.js';
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
  collectFamilies,
  type FamilySource,
  flatten,
  type HistogramSample,
  type MetricFamily,
  metricName,
  type NamedSample,
  type Sample,
  STATE_FAMILY,
  snakeCase,
} from './recorder.js';
export { MAX_SILENCE_MS, type Silence, type SilenceMatcher } from './silences.js';
export {
  BURN_WINDOWS,
  type BurnRow,
  PAGE_BURN_RATE,
  RollingWindow,
  SLO_DESCRIPTOR,
  type SliStatus,
  type SloEvent,
  type SloOptions,
  type SloState,
  type SloStatus,
  SloTracker,
  sliStatus,
  sloTracker,
  TICKET_BURN_RATE,
  type WindowCounts,
} from './slo.js';
