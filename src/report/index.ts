/** Reporting: TensorBoard event files, JSONL metric logs, loss-curve plots, a progress bar. */
export { TfEventsWriter, type TfEventsWriterOptions } from "./TfEventsWriter.ts";
export { JsonlLogger, type JsonlLoggerOptions } from "./JsonlLogger.ts";
export {
  plotLossCurve,
  lossCurveSpec,
  renderPng,
  writeLossCurve,
  type LossCurve,
  type LossCurveOptions,
  type LossPoint,
  type LossSeries,
  type RenderPngOptions,
} from "./plotLossCurve.ts";
export { ProgressBar, isInteractive, fmtDuration, type ProgressBarOptions, type ProgressMetrics } from "./progress.ts";
export { crc32c, maskedCrc32c } from "./crc32c.ts";
