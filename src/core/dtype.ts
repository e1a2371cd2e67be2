/** Data types and their storage. bfloat16 is stored as raw bits in a Uint16Array. */

export type DType = "float64" | "float32" | "bfloat16" | "int32" | "int64";

export type Storage = Float64Array | Float32Array | Uint16Array | Int32Array | BigInt64Array;

export const DTYPES: readonly DType[] = ["float64", "float32", "bfloat16", "int32", "int64"];

export function isFloat(dtype: DType): boolean {
  return dtype === "float64" || dtype === "float32" || dtype === "bfloat16";
}

export function bytesPerElement(dtype: DType): number {
  switch (dtype) {
    case "float64":
    case "int64":
      return 8;
    case "float32":
    case "int32":
      return 4;
    case "bfloat16":
      return 2;
  }
}

/** Arrays of at least this many bytes come from the large-array allocator, where one is set. */
export const LARGE_ARRAY_BYTES = 2 << 20;

/** Memory for an array of `bytes` bytes at buffer[byteOffset..], zeroed when asked, or null (the caller then allocates as usual). */
export type LargeArrayAllocator = (bytes: number, zero: boolean) => LargeBuffer | null;

export interface LargeBuffer {
  buffer: ArrayBuffer;
  byteOffset: number;
}

let largeAllocator: LargeArrayAllocator | null = null;

/**
 * Sets where large arrays come from (null: plain typed arrays again). The native backend sets its
 * 2 MiB-aligned memory backed by transparent huge pages, which whole-array reads such as decode's
 * weight streaming need for full bandwidth.
 */
export function setLargeArrayAllocator(fn: LargeArrayAllocator | null): void {
  largeAllocator = fn;
}

/** A buffer from the large-array allocator for an array of `bytes` bytes, or null when none applies. */
export function allocLargeBuffer(bytes: number, zero: boolean): LargeBuffer | null {
  return bytes >= LARGE_ARRAY_BYTES && largeAllocator ? largeAllocator(bytes, zero) : null;
}

/** A zeroed byte array (quantized weights' blocks), large ones from the large-array allocator. */
export function allocBytes(n: number): Uint8Array {
  const big = allocLargeBuffer(n, true);
  return big ? new Uint8Array(big.buffer, big.byteOffset, n) : new Uint8Array(n);
}

/** Zeroed storage of n elements; large arrays come from the large-array allocator where one is set. */
export function allocStorage(dtype: DType, n: number): Storage {
  const big = allocLargeBuffer(n * bytesPerElement(dtype), true);
  if (big) return storageOver(dtype, big.buffer, big.byteOffset, n);
  switch (dtype) {
    case "float64":
      return new Float64Array(n);
    case "float32":
      return new Float32Array(n);
    case "bfloat16":
      return new Uint16Array(n);
    case "int32":
      return new Int32Array(n);
    case "int64":
      return new BigInt64Array(n);
  }
}

/** A storage view of n elements of dtype over `buffer` from byte `byteOffset`. */
export function storageOver(dtype: DType, buffer: ArrayBufferLike, byteOffset: number, n: number): Storage {
  switch (dtype) {
    case "float64":
      return new Float64Array(buffer, byteOffset, n);
    case "float32":
      return new Float32Array(buffer, byteOffset, n);
    case "bfloat16":
      return new Uint16Array(buffer, byteOffset, n);
    case "int32":
      return new Int32Array(buffer, byteOffset, n);
    case "int64":
      return new BigInt64Array(buffer, byteOffset, n);
  }
}

export function dtypeOfStorage(s: Storage, hint?: DType): DType {
  if (s instanceof Float64Array) return "float64";
  if (s instanceof Float32Array) return "float32";
  if (s instanceof Uint16Array) return "bfloat16";
  if (s instanceof Int32Array) return "int32";
  if (s instanceof BigInt64Array) return "int64";
  return hint ?? "float32";
}

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/** float32 → bfloat16 bits, round to nearest even; NaN stays NaN. */
export function f32ToBf16(x: number): number {
  f32[0] = x;
  const bits = u32[0]!;
  if ((bits & 0x7fffffff) > 0x7f800000) return ((bits >>> 16) | 0x40) & 0xffff;
  const rounded = bits + 0x7fff + ((bits >>> 16) & 1);
  return (rounded >>> 16) & 0xffff;
}

/** bfloat16 bits → float32 value. */
export function bf16ToF32(b: number): number {
  u32[0] = (b & 0xffff) << 16;
  return f32[0]!;
}

/** Rounds a number through bfloat16 (the value a bf16 tensor would hold). */
export function roundBf16(x: number): number {
  return bf16ToF32(f32ToBf16(x));
}

/** Reads element i of a storage as a JS number (bf16 decoded, int64 narrowed). */
export function readElement(s: Storage, dtype: DType, i: number): number {
  if (dtype === "bfloat16") return bf16ToF32(s[i] as number);
  if (dtype === "int64") return Number((s as BigInt64Array)[i]!);
  return s[i] as number;
}

/** Writes a JS number into element i of a storage (bf16 rounded, ints truncated toward zero). */
export function writeElement(s: Storage, dtype: DType, i: number, v: number): void {
  switch (dtype) {
    case "bfloat16":
      (s as Uint16Array)[i] = f32ToBf16(v);
      return;
    case "int64":
      (s as BigInt64Array)[i] = BigInt(Math.trunc(v));
      return;
    case "int32":
      (s as Int32Array)[i] = Math.trunc(v);
      return;
    default:
      (s as Float32Array)[i] = v;
  }
}
