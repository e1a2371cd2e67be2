/**
 * Random-access byte sources (a file read by offset, or bytes in memory) and a bounded little-endian
 * cursor over them. Every read is checked against the source size first, so a corrupt length can
 * never cause a huge allocation or a read past the end.
 */
import * as fs from "node:fs";
import { FormatError } from "./FormatError.ts";

export interface ByteSource {
  /** Name used in error messages (the file path, or a label for in-memory bytes). */
  readonly name: string;
  readonly size: number;
  /** Returns exactly `length` bytes starting at `offset`; throws when the range is out of bounds. */
  read(offset: number, length: number): Uint8Array;
  close(): void;
}

function checkRange(src: ByteSource, offset: number, length: number): void {
  if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(length) || offset < 0 || length < 0 || offset + length > src.size) {
    throw new FormatError(src.name, `read of ${length} bytes at offset ${offset} is outside the file (size ${src.size})`);
  }
}

/** A file opened for reading by offset; nothing is read until asked for. */
export class FileSource implements ByteSource {
  readonly name: string;
  readonly size: number;
  private fd: number | null;

  constructor(path: string) {
    this.name = path;
    this.fd = fs.openSync(path, "r");
    try {
      this.size = fs.fstatSync(this.fd).size;
    } catch (e) {
      fs.closeSync(this.fd);
      throw e;
    }
  }

  read(offset: number, length: number): Uint8Array {
    if (this.fd === null) throw new FormatError(this.name, "read after close");
    checkRange(this, offset, length);
    const out = new Uint8Array(length);
    let done = 0;
    while (done < length) {
      const n = fs.readSync(this.fd, out, done, length - done, offset + done);
      if (n === 0) throw new FormatError(this.name, `file shrank while reading: got ${done} of ${length} bytes at offset ${offset}`);
      done += n;
    }
    return out;
  }

  close(): void {
    if (this.fd !== null) fs.closeSync(this.fd);
    this.fd = null;
  }
}

/** Bytes already in memory (a fetched file, a zip entry, a test buffer). `read` returns views. */
export class BufferSource implements ByteSource {
  readonly size: number;
  constructor(
    readonly bytes: Uint8Array,
    readonly name = "<buffer>",
  ) {
    this.size = bytes.byteLength;
  }
  read(offset: number, length: number): Uint8Array {
    checkRange(this, offset, length);
    return this.bytes.subarray(offset, offset + length);
  }
  close(): void {}
}

/** Opens a path as a FileSource, or wraps bytes as a BufferSource. */
export function openSource(input: string | Uint8Array, name?: string): ByteSource {
  return typeof input === "string" ? new FileSource(input) : new BufferSource(input, name);
}

const utf8 = new TextDecoder("utf-8", { fatal: true });

/**
 * A sequential little-endian reader over a ByteSource with a read-ahead window.
 * `fail` builds the format's named error; every primitive checks the bytes left before reading.
 */
export class ByteReader {
  private window: Uint8Array = new Uint8Array(0);
  private view = new DataView(this.window.buffer);
  private windowStart = 0;

  constructor(
    readonly src: ByteSource,
    private readonly fail: (message: string) => Error,
    public pos = 0,
    private readonly chunk = 1 << 20,
  ) {}

  get remaining(): number {
    return this.src.size - this.pos;
  }

  /** Makes [pos, pos + n) available in the window; throws the format error when the file is too short. */
  private ensure(n: number, what: string): number {
    if (!Number.isSafeInteger(n) || n < 0 || n > this.remaining) {
      throw this.fail(`unexpected end of file reading ${what}: need ${n} bytes at offset ${this.pos}, ${Math.max(this.remaining, 0)} left`);
    }
    const rel = this.pos - this.windowStart;
    if (rel >= 0 && rel + n <= this.window.length) return rel;
    const len = Math.min(Math.max(n, this.chunk), this.src.size - this.pos);
    this.window = this.src.read(this.pos, len);
    this.view = new DataView(this.window.buffer, this.window.byteOffset, this.window.byteLength);
    this.windowStart = this.pos;
    return 0;
  }

  u8(what = "uint8"): number {
    const r = this.ensure(1, what);
    this.pos += 1;
    return this.view.getUint8(r);
  }
  i8(what = "int8"): number {
    const r = this.ensure(1, what);
    this.pos += 1;
    return this.view.getInt8(r);
  }
  u16(what = "uint16"): number {
    const r = this.ensure(2, what);
    this.pos += 2;
    return this.view.getUint16(r, true);
  }
  i16(what = "int16"): number {
    const r = this.ensure(2, what);
    this.pos += 2;
    return this.view.getInt16(r, true);
  }
  u32(what = "uint32"): number {
    const r = this.ensure(4, what);
    this.pos += 4;
    return this.view.getUint32(r, true);
  }
  i32(what = "int32"): number {
    const r = this.ensure(4, what);
    this.pos += 4;
    return this.view.getInt32(r, true);
  }
  u64(what = "uint64"): bigint {
    const r = this.ensure(8, what);
    this.pos += 8;
    return this.view.getBigUint64(r, true);
  }
  i64(what = "int64"): bigint {
    const r = this.ensure(8, what);
    this.pos += 8;
    return this.view.getBigInt64(r, true);
  }
  f32(what = "float32"): number {
    const r = this.ensure(4, what);
    this.pos += 4;
    return this.view.getFloat32(r, true);
  }
  f64(what = "float64"): number {
    const r = this.ensure(8, what);
    this.pos += 8;
    return this.view.getFloat64(r, true);
  }

  /** A uint64 count or length as a number; refuses values above `max` (default: bytes left). */
  count(what: string, max = this.remaining): number {
    const v = this.u64(what);
    if (v > BigInt(Math.max(max, 0))) throw this.fail(`${what} ${v} exceeds ${max} (bytes or items left in the file)`);
    return Number(v);
  }

  bytes(n: number, what = "bytes"): Uint8Array {
    const r = this.ensure(n, what);
    this.pos += n;
    return this.window.subarray(r, r + n);
  }

  /** Strict UTF-8 string of n bytes. */
  string(n: number, what = "string"): string {
    const b = this.bytes(n, what);
    try {
      return utf8.decode(b);
    } catch {
      throw this.fail(`${what} at offset ${this.pos - n} is not valid UTF-8`);
    }
  }

  skip(n: number, what = "padding"): void {
    this.ensure(0, what);
    if (!Number.isSafeInteger(n) || n < 0 || n > this.remaining) throw this.fail(`unexpected end of file skipping ${n} bytes of ${what} at offset ${this.pos}`);
    this.pos += n;
  }
}
