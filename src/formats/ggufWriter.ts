/**
 * GGUF v3 writer: typed metadata (explicit `{type, value}` or inferred from JS values), tensor infos
 * with reversed dims, every tensor's data aligned to `general.alignment` (default 32). Tensors are
 * written as F32/F16/BF16/F64/I8..I64 from matching arrays, or quantized to Q8_0/Q4_0 from float32.
 * Written atomically.
 */
import { GgufError } from "./FormatError.ts";
import { writeAtomic } from "./atomicWrite.ts";
import { GGUF_DEFAULT_ALIGNMENT, GGUF_MAGIC, GGUF_MAX_DIMS, GGUF_VALUE_TYPES, GGUF_VERSION, type GgufType, type GgufValue } from "./gguf.ts";
import { GGML_TYPE_BY_NAME, ggmlByteLength, quantizeQ4_0, quantizeQ8_0, type GgmlTypeName } from "./ggmlQuant.ts";
import { bf16ToF32, f32ToBf16 } from "../core/dtype.ts";
import { encodeTensorBytes, f16ToF32, isValidShape, numelOf, type TensorData, type TensorDType } from "./tensorData.ts";

/** A metadata value with its GGUF type spelled out (use for floats such as rope.freq_base). */
export interface GgufTypedValue {
  type: GgufType;
  value: GgufValue;
}

/**
 * A tensor to write. `type` defaults from `dtype` (float32 → F32, bfloat16 → BF16, float16 → F16, ...).
 * Q8_0/Q4_0 take float data (float32/bfloat16/float16/float64) and quantize it, or a Uint8Array of
 * already-quantized blocks.
 */
export interface GgufTensorInput {
  dtype: TensorDType;
  shape: number[];
  data: TensorData;
  type?: GgmlTypeName;
}

export interface GgufWriteInput {
  metadata?: Record<string, GgufValue | GgufTypedValue>;
  tensors?: Record<string, GgufTensorInput>;
}

const DEFAULT_TYPE: Partial<Record<TensorDType, GgmlTypeName>> = {
  float32: "F32", float16: "F16", bfloat16: "BF16", float64: "F64", int8: "I8", int16: "I16", int32: "I32", int64: "I64",
};

function isTyped(v: unknown): v is GgufTypedValue {
  return typeof v === "object" && v !== null && !Array.isArray(v) && "type" in v && "value" in v;
}

/** Infers a GGUF type: integers → uint32 / int32 / int64, other numbers → float32, bigint → uint64 / int64. */
export function inferGgufType(v: GgufValue, key: string, file = "<gguf>"): GgufType {
  if (typeof v === "string") return "string";
  if (typeof v === "boolean") return "bool";
  if (typeof v === "bigint") return v < 0n ? "int64" : "uint64";
  if (typeof v === "number") {
    if (!Number.isInteger(v)) return "float32";
    if (v >= 0 && v <= 0xffffffff) return "uint32";
    if (v >= -0x80000000 && v <= 0x7fffffff) return "int32";
    return "int64";
  }
  if (Array.isArray(v)) {
    if (v.length === 0) throw new GgufError(file, `metadata "${key}": an empty array needs an explicit {type, value}`);
    if (v.every((x) => typeof x === "number")) {
      const nums = v as number[];
      if (nums.every((x) => Number.isInteger(x) && x >= -0x80000000 && x <= 0x7fffffff)) return { array: "int32" };
      return { array: "float32" };
    }
    return { array: inferGgufType(v[0]!, `${key}[0]`, file) };
  }
  throw new GgufError(file, `metadata "${key}": cannot store a ${typeof v}`);
}

/** Grows as bytes are appended; little-endian. */
class ByteWriter {
  private buf = new Uint8Array(1 << 16);
  private view = new DataView(this.buf.buffer);
  length = 0;
  private reserve(n: number): number {
    if (this.length + n > this.buf.length) {
      let size = this.buf.length * 2;
      while (size < this.length + n) size *= 2;
      const next = new Uint8Array(size);
      next.set(this.buf.subarray(0, this.length));
      this.buf = next;
      this.view = new DataView(next.buffer);
    }
    const at = this.length;
    this.length += n;
    return at;
  }
  // reserve() may reallocate buf/view, so it runs before they are read (`this.view.set(this.reserve())`
  // would write into the old buffer once the header passes 64 KiB, e.g. a 150k-token vocabulary).
  u8(v: number) { const at = this.reserve(1); this.view.setUint8(at, v); }
  i8(v: number) { const at = this.reserve(1); this.view.setInt8(at, v); }
  u16(v: number) { const at = this.reserve(2); this.view.setUint16(at, v, true); }
  i16(v: number) { const at = this.reserve(2); this.view.setInt16(at, v, true); }
  u32(v: number) { const at = this.reserve(4); this.view.setUint32(at, v, true); }
  i32(v: number) { const at = this.reserve(4); this.view.setInt32(at, v, true); }
  u64(v: bigint) { const at = this.reserve(8); this.view.setBigUint64(at, v, true); }
  i64(v: bigint) { const at = this.reserve(8); this.view.setBigInt64(at, v, true); }
  f32(v: number) { const at = this.reserve(4); this.view.setFloat32(at, v, true); }
  f64(v: number) { const at = this.reserve(8); this.view.setFloat64(at, v, true); }
  bytes(b: Uint8Array) { const at = this.reserve(b.length); this.buf.set(b, at); }
  string(s: string) {
    const b = new TextEncoder().encode(s);
    this.u64(BigInt(b.length));
    this.bytes(b);
  }
  pad(alignment: number) {
    const n = (alignment - (this.length % alignment)) % alignment;
    this.reserve(n);
  }
  result(): Uint8Array { return this.buf.slice(0, this.length); }
}

function typeId(t: GgufType): number {
  return typeof t === "string" ? GGUF_VALUE_TYPES[t] : GGUF_VALUE_TYPES.array;
}

function writeValue(w: ByteWriter, type: GgufType, v: GgufValue, key: string, fail: (m: string) => Error): void {
  const bad = () => fail(`metadata "${key}": ${JSON.stringify(v, (_k, x) => (typeof x === "bigint" ? String(x) : x))} is not a valid ${typeof type === "string" ? type : "array"}`);
  const int = (lo: number, hi: number) => {
    if (typeof v !== "number" || !Number.isInteger(v) || v < lo || v > hi) throw bad();
    return v;
  };
  const big = (lo: bigint, hi: bigint) => {
    if (typeof v !== "bigint" && !(typeof v === "number" && Number.isSafeInteger(v))) throw bad();
    const b = BigInt(v);
    if (b < lo || b > hi) throw bad();
    return b;
  };
  if (typeof type === "object") {
    if (!Array.isArray(v)) throw bad();
    w.u32(typeId(type.array));
    w.u64(BigInt(v.length));
    v.forEach((x, i) => writeValue(w, type.array, x, `${key}[${i}]`, fail));
    return;
  }
  switch (type) {
    case "uint8": return w.u8(int(0, 0xff));
    case "int8": return w.i8(int(-0x80, 0x7f));
    case "uint16": return w.u16(int(0, 0xffff));
    case "int16": return w.i16(int(-0x8000, 0x7fff));
    case "uint32": return w.u32(int(0, 0xffffffff));
    case "int32": return w.i32(int(-0x80000000, 0x7fffffff));
    case "uint64": return w.u64(big(0n, 0xffffffffffffffffn));
    case "int64": return w.i64(big(-(1n << 63n), (1n << 63n) - 1n));
    case "float32":
      if (typeof v !== "number") throw bad();
      return w.f32(v);
    case "float64":
      if (typeof v !== "number") throw bad();
      return w.f64(v);
    case "bool":
      if (typeof v !== "boolean") throw bad();
      return w.u8(v ? 1 : 0);
    case "string":
      if (typeof v !== "string") throw bad();
      return w.string(v);
    default:
      throw fail(`metadata "${key}": unknown type ${String(type)}`);
  }
}

function toFloat32(t: GgufTensorInput): Float32Array {
  const d = t.data;
  if (d instanceof Float32Array) return d;
  if (d instanceof Float64Array) return Float32Array.from(d);
  if (t.dtype === "bfloat16" && d instanceof Uint16Array) return Float32Array.from(d, (b) => bf16ToF32(b));
  if (t.dtype === "float16" && d instanceof Uint16Array) return Float32Array.from(d, (b) => f16ToF32(b));
  throw new TypeError(`${t.dtype} data cannot be converted to float`);
}

/** Encodes one tensor's data in a ggml type; returns the bytes. */
function encodeTensor(name: string, t: GgufTensorInput, type: GgmlTypeName, fail: (m: string) => Error): Uint8Array {
  const n = numelOf(t.shape);
  if (t.data.length !== n && !(t.data instanceof Uint8Array && (type === "Q8_0" || type === "Q4_0"))) {
    throw fail(`tensor "${name}": shape [${t.shape.join(", ")}] has ${n} elements but data has ${t.data.length}`);
  }
  const want = (ok: boolean) => {
    if (!ok) throw fail(`tensor "${name}": ${t.dtype} data (${t.data.constructor.name}) cannot be written as ${type}`);
  };
  switch (type) {
    case "Q8_0":
    case "Q4_0": {
      const info = GGML_TYPE_BY_NAME.get(type)!;
      const inner = t.shape.length ? t.shape[t.shape.length - 1]! : 1;
      if (inner % info.blockSize !== 0) throw fail(`tensor "${name}": last dim ${inner} is not a multiple of the ${type} block size ${info.blockSize}`);
      if (t.data instanceof Uint8Array && t.dtype === "uint8") {
        if (t.data.length !== ggmlByteLength(info, n)) throw fail(`tensor "${name}": ${t.data.length} bytes of ${type} blocks, expected ${ggmlByteLength(info, n)}`);
        return t.data;
      }
      want(["float32", "float64", "bfloat16", "float16"].includes(t.dtype));
      const f = toFloat32(t);
      return type === "Q8_0" ? quantizeQ8_0(f) : quantizeQ4_0(f);
    }
    case "F32":
      want(t.data instanceof Float32Array || t.data instanceof Float64Array || (t.data instanceof Uint16Array && (t.dtype === "bfloat16" || t.dtype === "float16")));
      return encodeTensorBytes("float32", toFloat32(t));
    case "F16":
      want(t.dtype === "float16" || t.data instanceof Float32Array || t.data instanceof Float64Array);
      return encodeTensorBytes("float16", t.dtype === "float16" && t.data instanceof Uint16Array ? t.data : toFloat32(t));
    case "BF16":
      if (t.dtype === "bfloat16" && t.data instanceof Uint16Array) return encodeTensorBytes("bfloat16", t.data);
      want(t.data instanceof Float32Array || t.data instanceof Float64Array);
      return encodeTensorBytes("bfloat16", Uint16Array.from(t.data as Float32Array, (x) => f32ToBf16(x)));
    case "F64":
      want(t.data instanceof Float64Array);
      return encodeTensorBytes("float64", t.data);
    case "I8":
      want(t.data instanceof Int8Array);
      return encodeTensorBytes("int8", t.data);
    case "I16":
      want(t.data instanceof Int16Array);
      return encodeTensorBytes("int16", t.data);
    case "I32":
      want(t.data instanceof Int32Array);
      return encodeTensorBytes("int32", t.data);
    case "I64":
      want(t.data instanceof BigInt64Array);
      return encodeTensorBytes("int64", t.data);
    default:
      throw fail(`tensor "${name}": graft cannot write ggml type ${String(type)}`);
  }
}

/** Builds the whole GGUF file in memory as a list of chunks (header, then aligned tensor data). */
export function serializeGgufChunks(input: GgufWriteInput, file = "<gguf>"): Uint8Array[] {
  const fail = (m: string) => new GgufError(file, m);
  const metadata = input.metadata ?? {};
  const tensors = input.tensors ?? {};
  let alignment = GGUF_DEFAULT_ALIGNMENT;
  const kv: [string, GgufType, GgufValue][] = [];
  for (const [key, raw] of Object.entries(metadata)) {
    const [type, value] = isTyped(raw) ? [raw.type, raw.value] : [inferGgufType(raw, key, file), raw];
    if (key === "general.alignment") {
      if (type !== "uint32") throw fail(`"general.alignment" must be uint32, got ${JSON.stringify(type)}`);
      const a = value as number;
      if (!Number.isInteger(a) || a <= 0 || a > 1 << 30 || (a & (a - 1)) !== 0) throw fail(`"general.alignment" = ${a} is not a positive power of two`);
      alignment = a;
    }
    kv.push([key, type, value]);
  }
  const w = new ByteWriter();
  w.u32(GGUF_MAGIC);
  w.u32(GGUF_VERSION);
  const names = Object.keys(tensors);
  w.u64(BigInt(names.length));
  w.u64(BigInt(kv.length));
  for (const [key, type, value] of kv) {
    w.string(key);
    w.u32(typeId(type));
    writeValue(w, type, value, key, fail);
  }
  const datas: Uint8Array[] = [];
  let offset = 0;
  for (const name of names) {
    const t = tensors[name]!;
    if (!isValidShape(t.shape)) throw fail(`tensor "${name}": invalid shape ${JSON.stringify(t.shape)}`);
    if (t.shape.length > GGUF_MAX_DIMS) throw fail(`tensor "${name}": ${t.shape.length} dims exceed GGUF's ${GGUF_MAX_DIMS}`);
    const type = t.type ?? DEFAULT_TYPE[t.dtype];
    if (!type) throw fail(`tensor "${name}": dtype ${t.dtype} has no GGUF type; pass an explicit type`);
    const bytes = encodeTensor(name, t, type, fail);
    w.string(name);
    w.u32(t.shape.length);
    for (let d = t.shape.length - 1; d >= 0; d--) w.u64(BigInt(t.shape[d]!));
    w.u32(GGML_TYPE_BY_NAME.get(type)!.id);
    w.u64(BigInt(offset));
    datas.push(bytes);
    offset += Math.ceil(bytes.length / alignment) * alignment;
  }
  w.pad(alignment);
  const chunks = [w.result()];
  for (const d of datas) {
    chunks.push(d);
    const pad = (alignment - (d.length % alignment)) % alignment;
    if (pad) chunks.push(new Uint8Array(pad));
  }
  return chunks;
}

/** Serializes a GGUF file to bytes in memory. */
export function serializeGguf(input: GgufWriteInput): Uint8Array {
  const chunks = serializeGgufChunks(input);
  const out = new Uint8Array(chunks.reduce((s, c) => s + c.length, 0));
  let off = 0;
  for (const c of chunks) {
    out.set(c, off);
    off += c.length;
  }
  return out;
}

/** Writes a GGUF v3 file atomically (temp file in the same directory, fsync, rename). */
export function writeGguf(file: string, input: GgufWriteInput): void {
  const chunks = serializeGgufChunks(input, file);
  writeAtomic(file, (write) => chunks.forEach(write));
}
