/**
 * `bulwark/health`: health checks in the IETF `application/health+json` format, liveness,
 * readiness and startup probes, degradation levels fed to the load shedder, HTTP endpoints for
 * node:http, Express and Fastify, and graceful shutdown.
 * @module
 */

export {
  type CheckFunction,
  type CheckOptions,
  type CheckOutcome,
  type CheckResult,
  type ComponentType,
  type CustomCheckOptions,
  customCheck,
  HEALTH_CHECK_DESCRIPTOR,
  HealthCheck,
  type HealthCheckEvent,
  type HealthCheckState,
  type HealthStatus,
  type LastRun,
} from './check.js';
export {
  type BreakerLike,
  breakerCheck,
  type EventLoopCheckOptions,
  eventLoopCheck,
  type HttpCheckOptions,
  httpCheck,
  type PgQueryable,
  type PostgresCheckOptions,
  postgresCheck,
  type QueueCheckOptions,
  type QueueStatsSource,
  queueCheck,
  type RedisCheckOptions,
  type RedisPingable,
  redisCheck,
  type TcpCheckOptions,
  tcpCheck,
} from './checks.js';
export {
  createDegradation,
  DEGRADATION_LEVELS,
  Degradation,
  type DegradationChange,
  type DegradationInput,
  type DegradationLevel,
  type DegradationOptions,
  type DegradationRule,
  defaultDegradationRule,
  Hysteresis,
  type LevelSink,
} from './degradation.js';
export {
  type DetailsPolicy,
  expressHealth,
  type FastifyHealthOptions,
  type FastifyLike,
  type FastifyReplyLike,
  type FastifyRequestLike,
  fastifyHealth,
  HEALTH_JSON,
  type HealthHandlerOptions,
  type HealthPaths,
  healthHandler,
  type MetricsBody,
  type NodeHealthHandler,
} from './handlers.js';
export type { HealthJson, HealthJsonCheck } from './health-json.js';
export { type LatencyPercentiles, LatencyWindow } from './latency.js';
export {
  type CheckReport,
  createHealthMonitor,
  HEALTH_MONITOR_DESCRIPTOR,
  HealthMonitor,
  type HealthMonitorEvent,
  type HealthMonitorOptions,
  type HealthMonitorState,
  type HealthReport,
  type ProbeKind,
  UnknownCheckError,
} from './monitor.js';
export {
  GracefulShutdown,
  type GracefulShutdownOptions,
  gracefulShutdown,
  type ServerLike,
  type ShutdownEvent,
  type ShutdownExitCodes,
  type ShutdownHook,
  type ShutdownLogger,
  type ShutdownPhase,
  type ShutdownResult,
  ShutdownTimeoutError,
} from './shutdown.js';
