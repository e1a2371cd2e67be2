/**
 * Training progress: a cli-progress bar on a terminal, plain log lines elsewhere.
 *
 *   const bar = new ProgressBar({ total: steps, label: "train" });
 *   for (...) { ...; bar.update(step, { loss, tokens: batchTokens }); }
 *   bar.stop();                                // always (it owns a redraw timer in bar mode)
 *
 * The bar shows step/total, loss, tokens/s and ETA. When the stream is not a TTY or the CI
 * environment variable is set (and not "false"/"0"), it prints one line every `logEvery` steps
 * (and at the last step) instead:
 *   train step 100/1000 (10%) | loss 2.3104 | 5,321 tok/s | elapsed 0:42 | ETA 6:18
 * Rates and the ETA are averaged over a sliding window of recent updates.
 */
import cliProgress from "cli-progress";
import { GraftError } from "../core/errors.ts";

export interface ProgressBarOptions {
  /** Total number of steps. */
  total: number;
  /** Shown before the counts, e.g. "train" or "epoch 2". */
  label?: string;
  /** Where to write (default process.stdout). */
  stream?: NodeJS.WritableStream & { isTTY?: boolean };
  /** "auto" (default) picks "bar" on a TTY outside CI, else "lines"; "off" prints nothing. */
  mode?: "auto" | "bar" | "lines" | "off";
  /** In lines mode, print every N steps (default: about 20 lines per run, at least 1). */
  logEvery?: number;
  /** The first step number (e.g. when resuming); default 0. */
  startStep?: number;
}

export interface ProgressMetrics {
  loss?: number;
  /** Tokens processed since the previous update (adds to the tokens/s rate). */
  tokens?: number;
  /** Any other values to show, formatted with 4 significant digits (e.g. { lr: 3e-4 }). */
  extra?: Record<string, number>;
}

const WINDOW = 20;

export class ProgressBar {
  readonly mode: "bar" | "lines" | "off";
  readonly total: number;
  private readonly label: string;
  private readonly stream: NodeJS.WritableStream & { isTTY?: boolean };
  private readonly logEvery: number;
  private multi: cliProgress.MultiBar | undefined;
  private bar: cliProgress.SingleBar | undefined;
  private readonly startTime = Date.now();
  private step: number;
  private tokens = 0;
  /** Recent (time ms, step, cumulative tokens) samples for the rates. */
  private samples: [number, number, number][] = [];
  /** The step of the last printed line (lines mode). */
  private lastLogged: number;
  private stopped = false;

  constructor(opts: ProgressBarOptions) {
    if (!Number.isInteger(opts.total) || opts.total < 0) throw new GraftError(`ProgressBar: total must be a non-negative integer, got ${opts.total}`);
    this.total = opts.total;
    this.label = opts.label ?? "";
    this.stream = opts.stream ?? process.stdout;
    this.step = opts.startStep ?? 0;
    this.lastLogged = this.step;
    this.samples.push([this.startTime, this.step, 0]);
    this.logEvery = Math.max(1, Math.floor(opts.logEvery ?? Math.ceil(this.total / 20)));
    const mode = opts.mode ?? "auto";
    this.mode = mode === "auto" ? (isInteractive(this.stream) ? "bar" : "lines") : mode;
    if (this.mode === "bar") {
      this.multi = new cliProgress.MultiBar({
        stream: this.stream,
        format: `${this.label ? this.label + " " : ""}|{bar}| {value}/{total} | loss {loss} | {tps} tok/s | {elapsedText} < {etaText}{extraText}`,
        barCompleteChar: "█",
        barIncompleteChar: "░",
        // Leave about 75 columns for the text around the bar (cli-progress cuts lines at the width).
        barsize: Math.max(10, Math.min(30, ((this.stream as { columns?: number }).columns ?? 80) - 75)),
        hideCursor: true,
        fps: 5,
        autopadding: true,
      });
      this.bar = this.multi.create(this.total, this.step, this.payload());
    }
  }

  /** Reports progress: `step` is the number of steps done so far (1-based count after a step). */
  update(step: number, metrics: ProgressMetrics = {}): void {
    if (this.stopped) return;
    this.step = step;
    if (metrics.tokens) this.tokens += metrics.tokens;
    const now = Date.now();
    this.samples.push([now, step, this.tokens]);
    if (this.samples.length > WINDOW) this.samples.shift();
    const payload = this.payload(metrics);
    if (this.mode === "bar") this.bar!.update(step, payload);
    else if (this.mode === "lines" && step !== this.lastLogged && (Math.floor(step / this.logEvery) > Math.floor(this.lastLogged / this.logEvery) || step >= this.total)) {
      this.lastLogged = step;
      this.stream.write(this.line(payload) + "\n");
    }
  }

  /** Prints a message above the bar (or as its own line). */
  log(message: string): void {
    if (this.mode === "off") return;
    const text = message.endsWith("\n") ? message : message + "\n";
    if (this.mode === "bar" && !this.stopped) {
      this.multi!.log(text);
      this.multi!.update(); // redraw now: prints the message above the bar
    }
    else this.stream.write(text);
  }

  /** Finishes the bar (final redraw, cursor restored). Idempotent. */
  stop(): void {
    if (this.stopped) return;
    this.stopped = true;
    this.multi?.stop();
  }

  /** Steps per second and tokens per second over the recent window. */
  rates(): { stepsPerSec: number; tokensPerSec: number } {
    const first = this.samples[0]!;
    const last = this.samples[this.samples.length - 1]!;
    const dt = (last[0] - first[0]) / 1000;
    if (dt <= 0) return { stepsPerSec: 0, tokensPerSec: 0 };
    return { stepsPerSec: (last[1] - first[1]) / dt, tokensPerSec: (last[2] - first[2]) / dt };
  }

  private payload(metrics: ProgressMetrics = {}): Record<string, string> {
    const { stepsPerSec, tokensPerSec } = this.rates();
    const remaining = this.total - this.step;
    const eta = stepsPerSec > 0 ? remaining / stepsPerSec : NaN;
    const extra = Object.entries(metrics.extra ?? {})
      .map(([k, v]) => ` | ${k} ${fmtNumber(v)}`)
      .join("");
    return {
      loss: metrics.loss === undefined ? "-" : metrics.loss.toFixed(4),
      tps: Math.round(tokensPerSec).toLocaleString("en-US"),
      elapsedText: fmtDuration((Date.now() - this.startTime) / 1000),
      etaText: remaining <= 0 ? "0:00" : fmtDuration(eta),
      extraText: extra,
    };
  }

  private line(p: Record<string, string>): string {
    const pct = this.total > 0 ? ` (${Math.floor((100 * this.step) / this.total)}%)` : "";
    const label = this.label ? this.label + " " : "";
    return `${label}step ${this.step}/${this.total}${pct} | loss ${p.loss} | ${p.tps} tok/s | elapsed ${p.elapsedText} | ETA ${p.etaText}${p.extraText}`;
  }
}

/** A TTY outside CI. */
export function isInteractive(stream: { isTTY?: boolean }, env: NodeJS.ProcessEnv = process.env): boolean {
  const ci = env.CI;
  const inCi = ci !== undefined && ci !== "" && ci !== "false" && ci !== "0";
  return stream.isTTY === true && !inCi;
}

/** Seconds as m:ss or h:mm:ss; "?" when unknown. */
export function fmtDuration(secs: number): string {
  if (!Number.isFinite(secs) || secs < 0) return "?";
  const s = Math.round(secs);
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const ss = String(s % 60).padStart(2, "0");
  return h > 0 ? `${h}:${String(m).padStart(2, "0")}:${ss}` : `${m}:${ss}`;
}

function fmtNumber(v: number): string {
  if (!Number.isFinite(v)) return String(v);
  const a = Math.abs(v);
  return a !== 0 && (a < 1e-3 || a >= 1e5) ? v.toExponential(2) : String(Number(v.toPrecision(4)));
}
