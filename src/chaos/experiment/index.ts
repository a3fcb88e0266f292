/**
 * Chaos experiments: `runExperiment` and its parts (format, load generator, probes, report).
 *
 * @example
 * ```ts nocheck
 * import { loadExperiment, runExperiment, htmlReport } from 'bulwark/chaos';
 * const result = await runExperiment(await loadExperiment('experiment.yaml'));
 * ```
 * @module
 */
export { type ActionEnv, type CustomAction, describeActivity, runActivity, type Undo } from './actions.js';
export {
  ExperimentFileError,
  type LoadExperimentOptions,
  loadExperiment,
  parseExperimentText,
} from './load.js';
export {
  type CustomProbe,
  importExport,
  type ProbeContext,
  type ProbeResult,
  readMetric,
  runProbe,
  withinTolerance,
} from './probes.js';
export { htmlReport, textReport } from './report.js';
export {
  type ActivityRecord,
  type ExperimentEvent,
  type ExperimentProgress,
  type ExperimentResult,
  type FaultWindow,
  type RunExperimentOptions,
  type RunResult,
  runExperiment,
  type SeriesPoint,
} from './runner.js';
export {
  type ActivitySpec,
  type Experiment,
  experimentJsonSchema,
  experimentSchema,
  type ProbeSpec,
  parseExperiment,
} from './schema.js';
export { SCORE_FORMULA, scoreOf } from './score.js';
export { fillDeep, fillTemplate, World } from './setup.js';
export {
  type Bucket,
  type HttpSenderOptions,
  httpSender,
  percentile,
  Recorder,
  type Sender,
  type SendOutcome,
  startTraffic,
  type Traffic,
  type TrafficOptions,
  type WindowStats,
} from './traffic.js';
