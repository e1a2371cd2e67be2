/**
 * A minimal protobuf encoder: just the wire types the TensorBoard Event needs (varint, 64-bit,
 * length-delimited, 32-bit). Fields are written in call order; nested messages are encoded first
 * and then written as bytes.
 */

const enum WireType {
  Varint = 0,
  Fixed64 = 1,
  LengthDelimited = 2,
  Fixed32 = 5,
}

const utf8 = new TextEncoder();

export class ProtoWriter {
  private buf = new Uint8Array(64);
  private len = 0;
  private readonly scratch = new DataView(new ArrayBuffer(8));

  /** int64 / uint64 / int32 field (negative values take ten bytes, as in protobuf). */
  int64(field: number, value: number | bigint): this {
    this.tag(field, WireType.Varint);
    this.varint(value);
    return this;
  }

  double(field: number, value: number): this {
    this.tag(field, WireType.Fixed64);
    this.scratch.setFloat64(0, value, true);
    this.raw(new Uint8Array(this.scratch.buffer, 0, 8));
    return this;
  }

  float(field: number, value: number): this {
    this.tag(field, WireType.Fixed32);
    this.scratch.setFloat32(0, value, true);
    this.raw(new Uint8Array(this.scratch.buffer, 0, 4));
    return this;
  }

  string(field: number, value: string): this {
    return this.bytes(field, utf8.encode(value));
  }

  bytes(field: number, value: Uint8Array): this {
    this.tag(field, WireType.LengthDelimited);
    this.varint(value.length);
    this.raw(value);
    return this;
  }

  /** An embedded message field. */
  message(field: number, msg: ProtoWriter): this {
    return this.bytes(field, msg.finish());
  }

  /** The encoded bytes (a copy). */
  finish(): Uint8Array {
    return this.buf.slice(0, this.len);
  }

  private tag(field: number, wire: WireType): void {
    this.varint(field * 8 + wire);
  }

  private varint(value: number | bigint): void {
    if (typeof value === "number" && Number.isSafeInteger(value) && value >= 0) {
      let v = value;
      while (v >= 0x80) {
        this.byte((v % 0x80) | 0x80);
        v = Math.floor(v / 0x80);
      }
      this.byte(v);
      return;
    }
    let v = BigInt.asUintN(64, BigInt(value));
    while (v >= 0x80n) {
      this.byte(Number(v & 0x7fn) | 0x80);
      v >>= 7n;
    }
    this.byte(Number(v));
  }

  private byte(b: number): void {
    this.reserve(1);
    this.buf[this.len++] = b;
  }

  private raw(bytes: Uint8Array): void {
    this.reserve(bytes.length);
    this.buf.set(bytes, this.len);
    this.len += bytes.length;
  }

  private reserve(n: number): void {
    if (this.len + n <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.len + n) size *= 2;
    const next = new Uint8Array(size);
    next.set(this.buf.subarray(0, this.len));
    this.buf = next;
  }
}
