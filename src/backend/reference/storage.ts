/**
 * Storage helpers shared by the reference kernels: argument checks that throw named errors, and
 * conversion between a dtype's storage and plain JS numbers (bf16 decoded to float32 values,
 * results rounded back with f32ToBf16).
 */
import { type DType, type Storage, bf16ToF32, f32ToBf16 } from "../../core/dtype.ts";
import { DTypeError, ShapeError } from "../../core/errors.ts";

/** A typed array whose elements read as JS numbers. */
export type NumArray = Float64Array | Float32Array | Int32Array;

/** A float array holding saved statistics (lse, rstd, mean, loss): float32, or float64 for gradchecks. */
export type StatArray = Float32Array | Float64Array;

const STORAGE_OF: Record<DType, string> = {
  float64: "Float64Array",
  float32: "Float32Array",
  bfloat16: "Uint16Array",
  int32: "Int32Array",
  int64: "BigInt64Array",
};

function storageMatches(s: Storage, dtype: DType): boolean {
  switch (dtype) {
    case "float64":
      return s instanceof Float64Array;
    case "float32":
      return s instanceof Float32Array;
    case "bfloat16":
      return s instanceof Uint16Array;
    case "int32":
      return s instanceof Int32Array;
    case "int64":
      return s instanceof BigInt64Array;
  }
}

/** Throws unless `s` is the typed array `dtype` is stored in. */
export function checkStorage(op: string, name: string, s: Storage, dtype: DType): void {
  if (!storageMatches(s, dtype)) {
    throw new DTypeError(op, `${name} is a ${s.constructor.name} but dtype ${dtype} is stored in a ${STORAGE_OF[dtype]}`);
  }
}

/** Throws unless `dtype` is a floating point dtype. */
export function checkFloat(op: string, dtype: DType): void {
  if (dtype !== "float64" && dtype !== "float32" && dtype !== "bfloat16") {
    throw new DTypeError(op, `dtype ${dtype} is not supported (float64, float32 or bfloat16 only)`);
  }
}

/** Checks a float storage: float dtype, matching typed array, at least `need` elements. */
export function checkFloatStorage(op: string, name: string, s: Storage, dtype: DType, need: number, dims: string): void {
  checkFloat(op, dtype);
  checkStorage(op, name, s, dtype);
  checkLength(op, name, s, need, dims);
}

/** Throws when an array holds fewer than `need` elements; `dims` describes the declared shape. */
export function checkLength(op: string, name: string, s: { length: number }, need: number, dims: string): void {
  if (s.length < need) throw new ShapeError(op, `${name} has ${s.length} elements but ${dims} needs ${need}`);
}

/** Throws unless a saved-statistics array is a Float32Array or Float64Array with `need` elements. */
export function checkStat(op: string, name: string, s: StatArray, need: number, dims: string): void {
  if (!(s instanceof Float32Array) && !(s instanceof Float64Array)) {
    throw new DTypeError(op, `${name} must be a Float32Array or Float64Array, got ${(s as object).constructor.name}`);
  }
  checkLength(op, name, s, need, dims);
}

/** Throws unless every size is a non-negative integer. */
export function checkSizes(op: string, sizes: Record<string, number>): void {
  for (const [k, v] of Object.entries(sizes)) {
    if (!Number.isInteger(v) || v < 0) throw new ShapeError(op, `${k} must be a non-negative integer, got ${v}`);
  }
}

/**
 * The values of a float storage as numbers: the storage itself for float64/float32, a decoded
 * Float32Array copy for bfloat16.
 */
export function readable(s: Storage, dtype: DType, n = s.length): NumArray {
  if (dtype === "bfloat16") {
    const out = new Float32Array(n);
    for (let i = 0; i < n; i++) out[i] = bf16ToF32(s[i] as number);
    return out;
  }
  if (dtype === "int64") return Float64Array.from(s as BigInt64Array, Number);
  return s as NumArray;
}

/**
 * A float array to write `n` results into: the storage itself for float64/float32, a scratch
 * Float64Array for bfloat16 (hand it to `commit`, which rounds it into the storage).
 */
export function writable(s: Storage, dtype: DType, n: number): Float64Array | Float32Array {
  if (dtype === "float64" || dtype === "float32") return s as Float64Array | Float32Array;
  return new Float64Array(n);
}

/** Finishes a `writable`: rounds the scratch values into a bf16 storage (no-op for float64/float32). */
export function commit(w: Float64Array | Float32Array, s: Storage, dtype: DType, n: number): void {
  if (w === s) return;
  if (dtype !== "bfloat16") throw new DTypeError("commit", `cannot write results into ${dtype}`);
  const u = s as Uint16Array;
  for (let i = 0; i < n; i++) u[i] = f32ToBf16(w[i]!);
}

/** dst[i] += add[i] for a float storage (bf16 read, added in float64, rounded once). */
export function addInto(dst: Storage, dtype: DType, add: Float64Array, dstOffset = 0): void {
  const n = add.length;
  if (dtype === "bfloat16") {
    const u = dst as Uint16Array;
    for (let i = 0; i < n; i++) u[dstOffset + i] = f32ToBf16(bf16ToF32(u[dstOffset + i]!) + add[i]!);
  } else {
    const f = dst as Float64Array | Float32Array;
    for (let i = 0; i < n; i++) f[dstOffset + i] = f[dstOffset + i]! + add[i]!;
  }
}

/** "[N=2, C=3]" for error messages. */
export function dimsOf(sizes: Record<string, number>): string {
  return `[${Object.entries(sizes)
    .map(([k, v]) => `${k}=${v}`)
    .join(", ")}]`;
}
