/**
 * The tensor vocabulary shared by every format: our dtypes plus a few raw ones that only files have
 * (float16, int16, int8, uint8, bool), the typed arrays that hold them, float16 conversion, and
 * little-endian byte (de)coding. Readers return float16 data converted to float32; bfloat16 stays as
 * raw bits in a Uint16Array, as in core/dtype.ts.
 */
import type { DType, Storage } from "../core/dtype.ts";
import { GraftError } from "../core/errors.ts";
import { endianness } from "node:os";

/** Our dtypes plus the raw ones a file may hold. */
export type TensorDType = DType | "float16" | "int16" | "int8" | "uint8" | "bool";

/** The typed array for each TensorDType (float16 as raw bits in a Uint16Array, bool as 0/1 bytes). */
export type TensorData = Storage | Int16Array | Int8Array | Uint8Array;

/** A tensor handed to a writer or returned by a reader. `shape` is in PyTorch order. */
export interface TensorEntry {
  dtype: TensorDType;
  shape: number[];
  data: TensorData;
}

/** A named set of tensors, as writers accept them. */
export type TensorMap = Record<string, TensorEntry>;

/** Where a tensor lives in a file; `dtype` is what `read` returns, `fileDType` the format's own name. */
export interface TensorInfo {
  name: string;
  dtype: TensorDType;
  fileDType: string;
  shape: number[];
  /** Absolute offset of the tensor's bytes in the file. */
  byteOffset: number;
  byteLength: number;
}

/** A lazily read tensor file: infos are parsed up front, data is read by offset on demand. */
export interface TensorReader {
  readonly path: string;
  readonly tensors: readonly TensorInfo[];
  has(name: string): boolean;
  info(name: string): TensorInfo;
  read(name: string): TensorEntry;
  /** The tensor's bytes exactly as stored in the file. */
  readBytes(name: string): Uint8Array;
  close(): void;
}

export const TENSOR_DTYPES: readonly TensorDType[] = ["float64", "float32", "bfloat16", "float16", "int64", "int32", "int16", "int8", "uint8", "bool"];

if (endianness() !== "LE") throw new GraftError("graft formats need a little-endian host");

export function elementSize(dtype: TensorDType): number {
  switch (dtype) {
    case "float64":
    case "int64":
      return 8;
    case "float32":
    case "int32":
      return 4;
    case "bfloat16":
    case "float16":
    case "int16":
      return 2;
    case "int8":
    case "uint8":
    case "bool":
      return 1;
  }
}

export function numelOf(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

/** A shape is valid when every dim is a non-negative safe integer. */
export function isValidShape(shape: unknown): shape is number[] {
  return Array.isArray(shape) && shape.every((d) => typeof d === "number" && Number.isSafeInteger(d) && d >= 0) && Number.isSafeInteger(numelOf(shape as number[]));
}

/** The typed-array class a dtype's data must be (float16 accepted as Float32Array too, on write). */
export function dataMatchesDType(data: TensorData, dtype: TensorDType): boolean {
  switch (dtype) {
    case "float64":
      return data instanceof Float64Array;
    case "float32":
      return data instanceof Float32Array;
    case "bfloat16":
      return data instanceof Uint16Array;
    case "float16":
      return data instanceof Uint16Array || data instanceof Float32Array;
    case "int64":
      return data instanceof BigInt64Array;
    case "int32":
      return data instanceof Int32Array;
    case "int16":
      return data instanceof Int16Array;
    case "int8":
      return data instanceof Int8Array;
    case "uint8":
    case "bool":
      return data instanceof Uint8Array;
  }
}

// ---- float16 ----

let f16Table: Float32Array | null = null;

function halfBitsToFloat(h: number): number {
  const s = h & 0x8000 ? -1 : 1;
  const e = (h >> 10) & 0x1f;
  const m = h & 0x3ff;
  if (e === 0) return s * m * 2 ** -24;
  if (e === 31) return m ? NaN : s * Infinity;
  return s * (1 + m / 1024) * 2 ** (e - 15);
}

/** float16 bits → float32 value (table lookup). */
export function f16ToF32(h: number): number {
  if (!f16Table) {
    f16Table = new Float32Array(65536);
    for (let i = 0; i < 65536; i++) f16Table[i] = halfBitsToFloat(i);
  }
  return f16Table[h & 0xffff]!;
}

const cvF32 = new Float32Array(1);
const cvU32 = new Uint32Array(cvF32.buffer);

/** float32 value → float16 bits, round to nearest even; overflow → ±Inf, NaN stays NaN. */
export function f32ToF16(x: number): number {
  cvF32[0] = x;
  const bits = cvU32[0]!;
  const sign = (bits >>> 16) & 0x8000;
  const exp = (bits >>> 23) & 0xff;
  let mant = bits & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 | (mant >>> 13) : 0);
  const e = exp - 127 + 15;
  if (e >= 31) return sign | 0x7c00;
  if (e <= 0) {
    if (e < -10) return sign;
    mant |= 0x800000;
    const shift = 14 - e;
    const half = 1 << (shift - 1);
    let r = mant >>> shift;
    const rem = mant & ((1 << shift) - 1);
    if (rem > half || (rem === half && r & 1)) r++;
    return sign | r;
  }
  let r = (e << 10) | (mant >>> 13);
  const rem = mant & 0x1fff;
  if (rem > 0x1000 || (rem === 0x1000 && r & 1)) r++;
  return sign | r;
}

// ---- bytes ----

/** Copies bytes into a fresh, aligned ArrayBuffer. */
function aligned(bytes: Uint8Array): ArrayBuffer {
  const buf = new ArrayBuffer(bytes.byteLength);
  new Uint8Array(buf).set(bytes);
  return buf;
}

/**
 * Little-endian bytes of `n` elements of the file dtype → the typed array `read` returns.
 * float16 converts to float32 (returned dtype "float32"); everything else keeps its dtype.
 */
export function decodeTensorBytes(bytes: Uint8Array, dtype: TensorDType, n: number): { dtype: TensorDType; data: TensorData } {
  const buf = aligned(bytes.subarray(0, n * elementSize(dtype)));
  switch (dtype) {
    case "float64":
      return { dtype, data: new Float64Array(buf) };
    case "float32":
      return { dtype, data: new Float32Array(buf) };
    case "bfloat16":
      return { dtype, data: new Uint16Array(buf) };
    case "float16": {
      const h = new Uint16Array(buf);
      const out = new Float32Array(n);
      for (let i = 0; i < n; i++) out[i] = f16ToF32(h[i]!);
      return { dtype: "float32", data: out };
    }
    case "int64":
      return { dtype, data: new BigInt64Array(buf) };
    case "int32":
      return { dtype, data: new Int32Array(buf) };
    case "int16":
      return { dtype, data: new Int16Array(buf) };
    case "int8":
      return { dtype, data: new Int8Array(buf) };
    case "uint8":
      return { dtype, data: new Uint8Array(buf) };
    case "bool": {
      const out = new Uint8Array(buf);
      for (let i = 0; i < n; i++) out[i] = out[i] ? 1 : 0;
      return { dtype, data: out };
    }
  }
}

/** A tensor's data → little-endian bytes in the dtype's file layout (float16 from Float32Array is rounded). */
export function encodeTensorBytes(dtype: TensorDType, data: TensorData): Uint8Array {
  if (dtype === "float16" && data instanceof Float32Array) {
    const h = new Uint16Array(data.length);
    for (let i = 0; i < data.length; i++) h[i] = f32ToF16(data[i]!);
    return new Uint8Array(h.buffer);
  }
  if (dtype === "bool") {
    const out = new Uint8Array(data.length);
    for (let i = 0; i < data.length; i++) out[i] = (data as Uint8Array)[i] ? 1 : 0;
    return out;
  }
  return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
}

/**
 * Checks a writer's input tensor: known dtype, valid shape, matching array type and length.
 * `fail` builds the format's named error.
 */
export function checkEntry(name: string, t: TensorEntry, fail: (message: string) => Error): void {
  if (!TENSOR_DTYPES.includes(t.dtype)) throw fail(`tensor "${name}": unknown dtype ${String(t.dtype)}`);
  if (!isValidShape(t.shape)) throw fail(`tensor "${name}": invalid shape ${JSON.stringify(t.shape)}`);
  if (!dataMatchesDType(t.data, t.dtype)) throw fail(`tensor "${name}": data is a ${t.data?.constructor?.name}, which cannot hold dtype ${t.dtype}`);
  const n = numelOf(t.shape);
  if (t.data.length !== n) throw fail(`tensor "${name}": shape [${t.shape.join(", ")}] has ${n} elements but data has ${t.data.length}`);
}
