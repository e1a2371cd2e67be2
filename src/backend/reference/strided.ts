/**
 * Strided View traversal for the elementwise kernels. A view is read into a dense Float64Array
 * (or BigInt64Array for exact int64 math) in row-major order of its shape, and results are written
 * back the same way. Traversal is an index counter over the outer dims with a tight inner loop;
 * strides may be 0 (broadcast) or negative, and the offset anything inside the storage.
 */
import { type DType, f32ToBf16 } from "../../core/dtype.ts";
import { ShapeError, fmtShape } from "../../core/errors.ts";
import type { View } from "../Backend.ts";
import { checkStorage } from "./storage.ts";

export function viewNumel(v: View): number {
  let n = 1;
  for (const d of v.shape) n *= d;
  return n;
}

/** Checks that a view's shape/strides/offset stay inside its storage and that its dtype matches. */
export function checkView(op: string, name: string, v: View): void {
  checkStorage(op, name, v.data, v.dtype);
  if (v.shape.length !== v.strides.length) {
    throw new ShapeError(op, `${name} has shape ${fmtShape(v.shape)} but strides ${fmtShape(v.strides)}`);
  }
  let lo = v.offset;
  let hi = v.offset;
  for (let d = 0; d < v.shape.length; d++) {
    const size = v.shape[d]!;
    if (!Number.isInteger(size) || size < 0) throw new ShapeError(op, `${name} has an invalid shape ${fmtShape(v.shape)}`);
    if (size === 0) return;
    const span = (size - 1) * v.strides[d]!;
    if (span > 0) hi += span;
    else lo += span;
  }
  if (!Number.isInteger(lo) || lo < 0 || hi >= v.data.length) {
    throw new ShapeError(
      op,
      `${name} of shape ${fmtShape(v.shape)}, strides ${fmtShape(v.strides)}, offset ${v.offset} reaches elements ` +
        `${lo}..${hi} of a storage of ${v.data.length}`,
    );
  }
}

/** Throws unless `v` has exactly `shape`. */
export function checkSameShape(op: string, name: string, v: View, shape: readonly number[]): void {
  if (v.shape.length !== shape.length || v.shape.some((d, i) => d !== shape[i])) {
    throw new ShapeError(op, `${name} has shape ${fmtShape(v.shape)}, expected ${fmtShape(shape)}`);
  }
}

/**
 * Calls `inner(base, count, stride, pos)` once per run of the innermost dim: `base` is the storage
 * offset of the run's first element, `pos` the dense position of that element.
 */
function forEachRun(v: View, inner: (base: number, count: number, stride: number, pos: number) => void): void {
  const nd = v.shape.length;
  if (viewNumel(v) === 0) return;
  if (nd === 0) {
    inner(v.offset, 1, 0, 0);
    return;
  }
  const count = v.shape[nd - 1]!;
  const stride = v.strides[nd - 1]!;
  const idx = new Array<number>(nd - 1).fill(0);
  let base = v.offset;
  let pos = 0;
  for (;;) {
    inner(base, count, stride, pos);
    pos += count;
    let d = nd - 2;
    for (; d >= 0; d--) {
      base += v.strides[d]!;
      if (++idx[d]! < v.shape[d]!) break;
      base -= v.strides[d]! * v.shape[d]!;
      idx[d] = 0;
    }
    if (d < 0) return;
  }
}

/** The view's elements as float64 numbers, dense row-major (bf16 decoded, int64 narrowed). */
export function gather(v: View): Float64Array {
  const out = new Float64Array(viewNumel(v));
  const data = v.data;
  switch (v.dtype) {
    case "bfloat16": {
      const u = data as Uint16Array;
      const bits = new Uint32Array(1);
      const f = new Float32Array(bits.buffer);
      forEachRun(v, (base, count, stride, pos) => {
        for (let j = 0; j < count; j++) {
          bits[0] = u[base + j * stride]! << 16;
          out[pos + j] = f[0]!;
        }
      });
      return out;
    }
    case "int64": {
      const b = data as BigInt64Array;
      forEachRun(v, (base, count, stride, pos) => {
        for (let j = 0; j < count; j++) out[pos + j] = Number(b[base + j * stride]!);
      });
      return out;
    }
    default: {
      const a = data as Float64Array | Float32Array | Int32Array;
      forEachRun(v, (base, count, stride, pos) => {
        for (let j = 0; j < count; j++) out[pos + j] = a[base + j * stride]!;
      });
      return out;
    }
  }
}

/** The elements of an int64 view, exactly, dense row-major. */
export function gatherBig(v: View): BigInt64Array {
  const out = new BigInt64Array(viewNumel(v));
  if (v.dtype === "int64") {
    const b = v.data as BigInt64Array;
    forEachRun(v, (base, count, stride, pos) => {
      for (let j = 0; j < count; j++) out[pos + j] = b[base + j * stride]!;
    });
  } else {
    const f = gather(v);
    for (let i = 0; i < f.length; i++) out[i] = toBigInt(f[i]!);
  }
  return out;
}

/** float → int64 as torch does on x86 for finite values (truncation); NaN → 0, ±Inf saturate. */
export function toBigInt(x: number): bigint {
  if (Number.isNaN(x)) return 0n;
  if (x >= 9223372036854775807) return 9223372036854775807n;
  if (x <= -9223372036854775808) return -9223372036854775808n;
  return BigInt(Math.trunc(x));
}

/** Writes dense row-major values into a view (bf16 rounded to nearest even, ints truncated). */
export function scatter(values: Float64Array, v: View): void {
  const data = v.data;
  switch (v.dtype as DType) {
    case "bfloat16": {
      const u = data as Uint16Array;
      forEachRun(v, (base, count, stride, pos) => {
        for (let j = 0; j < count; j++) u[base + j * stride] = f32ToBf16(values[pos + j]!);
      });
      return;
    }
    case "int64": {
      const b = data as BigInt64Array;
      forEachRun(v, (base, count, stride, pos) => {
        for (let j = 0; j < count; j++) b[base + j * stride] = toBigInt(values[pos + j]!);
      });
      return;
    }
    case "int32": {
      const a = data as Int32Array;
      forEachRun(v, (base, count, stride, pos) => {
        // Math.trunc then the Int32Array store wraps modulo 2^32 (NaN → 0), like a C cast of an int64.
        for (let j = 0; j < count; j++) a[base + j * stride] = Math.trunc(values[pos + j]!);
      });
      return;
    }
    default: {
      const a = data as Float64Array | Float32Array;
      forEachRun(v, (base, count, stride, pos) => {
        for (let j = 0; j < count; j++) a[base + j * stride] = values[pos + j]!;
      });
    }
  }
}

/** Writes dense row-major int64 values into an int64 view. */
export function scatterBig(values: BigInt64Array, v: View): void {
  const b = v.data as BigInt64Array;
  forEachRun(v, (base, count, stride, pos) => {
    for (let j = 0; j < count; j++) b[base + j * stride] = values[pos + j]!;
  });
}
