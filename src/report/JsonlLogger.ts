/**
 * Metric log as JSON Lines: one object per call, `{"step":10,"split":"train","loss":2.31,"time":...}`
 * where time is seconds since the epoch. Non-finite values are written as the strings "NaN",
 * "Infinity" and "-Infinity" so the file stays valid JSON and a diverged loss stays visible.
 *
 *   const log = new JsonlLogger("runs/exp1/metrics.jsonl");
 *   log.log(step, "train", { loss, lr });
 *   log.close();
 *
 * Lines are buffered and appended on flush(), every flushSecs (checked on log), on close(), and at
 * process exit. An existing file is appended to (a resumed run continues its log) unless
 * `append: false`.
 */
import { closeSync, fsyncSync, mkdirSync, openSync, writeSync } from "node:fs";
import { dirname } from "node:path";
import { GraftError } from "../core/errors.ts";

export interface JsonlLoggerOptions {
  /** Append to an existing file (default true); false truncates it. */
  append?: boolean;
  /** Buffered lines are written at least this often (seconds, default 5; 0 writes every line). */
  flushSecs?: number;
}

const RESERVED = new Set(["step", "split", "time"]);

export class JsonlLogger {
  private fd: number | undefined;
  private pending: string[] = [];
  private lastFlush = Date.now();
  private readonly flushMs: number;
  private readonly onExit = (): void => this.flush();

  constructor(
    readonly path: string,
    opts: JsonlLoggerOptions = {},
  ) {
    this.flushMs = (opts.flushSecs ?? 5) * 1000;
    mkdirSync(dirname(path), { recursive: true });
    this.fd = openSync(path, opts.append === false ? "w" : "a");
    process.on("exit", this.onExit);
  }

  /** Records metrics for one step of one split ("train", "eval", ...). */
  log(step: number, split: string, metrics: Record<string, number>, time: number = Date.now() / 1000): void {
    if (this.fd === undefined) throw new GraftError(`JsonlLogger.log: the logger for ${this.path} is closed`);
    if (!Number.isSafeInteger(step)) throw new GraftError(`JsonlLogger.log: step must be an integer, got ${step}`);
    const rec: Record<string, unknown> = { step, split };
    for (const [name, value] of Object.entries(metrics)) {
      if (RESERVED.has(name)) throw new GraftError(`JsonlLogger.log: metric name "${name}" is reserved (step, split, time)`);
      if (typeof value !== "number") throw new GraftError(`JsonlLogger.log: metric "${name}" must be a number, got ${typeof value} (call .item() on a tensor)`);
      rec[name] = Number.isFinite(value) ? value : String(value);
    }
    rec.time = time;
    this.pending.push(JSON.stringify(rec) + "\n");
    if (Date.now() - this.lastFlush >= this.flushMs) this.flush();
  }

  /** Appends the buffered lines to the file. */
  flush(): void {
    this.lastFlush = Date.now();
    if (this.fd === undefined || this.pending.length === 0) return;
    const data = Buffer.from(this.pending.join(""), "utf8");
    this.pending = [];
    let off = 0;
    while (off < data.length) off += writeSync(this.fd, data, off, data.length - off);
  }

  /** Flushes, fsyncs and closes; idempotent. */
  close(): void {
    if (this.fd === undefined) return;
    this.flush();
    fsyncSync(this.fd);
    closeSync(this.fd);
    this.fd = undefined;
    process.off("exit", this.onExit);
  }
}
