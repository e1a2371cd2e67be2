/**
 * TensorBoard event-file writer for scalars.
 *
 *   const tb = new TfEventsWriter("runs/exp1");
 *   tb.addScalar("train/loss", 2.31, step);
 *   tb.close();                      // flushes and fsyncs
 *
 * The file is `<logDir>/events.out.tfevents.<unix-secs>.<hostname>[suffix]`, a TFRecord stream:
 * per record u64 LE length, u32 masked CRC-32C of those 8 bytes, the Event proto, u32 masked
 * CRC-32C of the proto. The first Event carries file_version "brain.Event:2"; each scalar is an
 * Event{wall_time=1, step=2, summary=5{value=1{tag=1, simple_value=2}}}.
 * Records are buffered and appended on flush(), when the buffer passes 64 KiB, every flushSecs
 * (checked when a scalar is added), on close(), and at process exit.
 */
import { closeSync, fsyncSync, mkdirSync, openSync, writeSync } from "node:fs";
import { hostname } from "node:os";
import { join } from "node:path";
import { GraftError } from "../core/errors.ts";
import { ProtoWriter } from "./ProtoWriter.ts";
import { maskedCrc32c } from "./crc32c.ts";

export interface TfEventsWriterOptions {
  /** Appended to the file name, as SummaryWriter's filename_suffix. */
  filenameSuffix?: string;
  /** Buffered events are written at least this often (seconds, default 10). */
  flushSecs?: number;
}

const MAX_PENDING_BYTES = 1 << 16;

export class TfEventsWriter {
  /** Full path of the event file. */
  readonly path: string;
  private fd: number | undefined;
  private pending: Uint8Array[] = [];
  private pendingBytes = 0;
  private lastFlush = Date.now();
  private readonly flushMs: number;
  private readonly onExit = (): void => this.flush();

  constructor(
    readonly logDir: string,
    opts: TfEventsWriterOptions = {},
  ) {
    this.flushMs = (opts.flushSecs ?? 10) * 1000;
    mkdirSync(logDir, { recursive: true });
    const now = Date.now() / 1000;
    const base = `events.out.tfevents.${Math.floor(now)}.${hostname()}${opts.filenameSuffix ?? ""}`;
    let path = join(logDir, base);
    // Two writers in one directory within a second must not share a file.
    for (let n = 1; ; n++) {
      try {
        this.fd = openSync(path, "ax");
        break;
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== "EEXIST" || n > 1000) throw e;
        path = join(logDir, `${base}.${n}`);
      }
    }
    this.path = path;
    this.writeEvent(new ProtoWriter().double(1, now).string(3, "brain.Event:2"));
    this.flush();
    process.on("exit", this.onExit);
  }

  /** Logs one scalar; wallTime is in seconds since the epoch (default: now). */
  addScalar(tag: string, value: number, step: number, wallTime: number = Date.now() / 1000): void {
    if (this.fd === undefined) throw new GraftError(`TfEventsWriter.addScalar: the writer for ${this.path} is closed`);
    if (typeof tag !== "string" || tag === "") throw new GraftError(`TfEventsWriter.addScalar: tag must be a non-empty string, got ${JSON.stringify(tag)}`);
    if (typeof value !== "number") throw new GraftError(`TfEventsWriter.addScalar(${tag}): value must be a number, got ${typeof value} (call .item() on a tensor)`);
    if (!Number.isSafeInteger(step)) throw new GraftError(`TfEventsWriter.addScalar(${tag}): step must be an integer, got ${step}`);
    const val = new ProtoWriter().string(1, tag).float(2, value);
    const summary = new ProtoWriter().message(1, val);
    this.writeEvent(new ProtoWriter().double(1, wallTime).int64(2, step).message(5, summary));
    if (this.pendingBytes >= MAX_PENDING_BYTES || Date.now() - this.lastFlush >= this.flushMs) this.flush();
  }

  /** Appends the buffered events to the file. */
  flush(): void {
    this.lastFlush = Date.now();
    if (this.fd === undefined || this.pendingBytes === 0) return;
    const data = Buffer.concat(this.pending, this.pendingBytes);
    this.pending = [];
    this.pendingBytes = 0;
    let off = 0;
    while (off < data.length) off += writeSync(this.fd, data, off, data.length - off);
  }

  /** Flushes, fsyncs and closes the file. Further addScalar calls throw; close is idempotent. */
  close(): void {
    if (this.fd === undefined) return;
    this.flush();
    fsyncSync(this.fd);
    closeSync(this.fd);
    this.fd = undefined;
    process.off("exit", this.onExit);
  }

  private writeEvent(event: ProtoWriter): void {
    const data = event.finish();
    const rec = new Uint8Array(16 + data.length);
    const view = new DataView(rec.buffer);
    view.setBigUint64(0, BigInt(data.length), true);
    view.setUint32(8, maskedCrc32c(rec.subarray(0, 8)), true);
    rec.set(data, 12);
    view.setUint32(12 + data.length, maskedCrc32c(data), true);
    this.pending.push(rec);
    this.pendingBytes += rec.length;
  }
}
