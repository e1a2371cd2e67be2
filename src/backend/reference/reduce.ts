/**
 * Reductions of the middle axis of a dense [outer, n, inner] array into [outer, inner].
 * sum/mean accumulate in float64 (int64 exactly in BigInt); max/min propagate NaN;
 * argmax/argmin return the first index of the extreme (a NaN counts as the extreme, as in torch).
 */
import { type DType, type Storage, f32ToBf16 } from "../../core/dtype.ts";
import { DTypeError, ShapeError } from "../../core/errors.ts";
import type { ReduceOp } from "../Backend.ts";
import { checkLength, checkSizes, checkStorage, dimsOf, readable } from "./storage.ts";

export function reduce(op: ReduceOp, x: Storage, xDtype: DType, outer: number, n: number, inner: number, out: Storage): void {
  const name = `reduce(${op})`;
  checkSizes(name, { outer, n, inner });
  checkStorage(name, "x", x, xDtype);
  const dims = dimsOf({ outer, n, inner });
  checkLength(name, "x", x, outer * n * inner, dims);
  checkLength(name, "out", out, outer * inner, `[outer=${outer}, inner=${inner}]`);
  const isArg = op === "argmax" || op === "argmin";
  if (isArg) {
    if (!(out instanceof Int32Array)) throw new DTypeError(name, `out must be an Int32Array, got ${out.constructor.name}`);
  } else {
    checkStorage(name, "out", out, xDtype);
  }
  if (n === 0 && op !== "sum" && op !== "mean") throw new ShapeError(name, `cannot reduce an empty axis ${dims}`);
  if (xDtype === "int64" && (op === "sum" || op === "mean" || op === "max" || op === "min")) {
    reduceBig(op, x as BigInt64Array, outer, n, inner, out as BigInt64Array);
    return;
  }
  const xs = readable(x, xDtype, outer * n * inner);
  const acc = new Float64Array(inner);
  const idx = new Int32Array(inner);
  for (let o = 0; o < outer; o++) {
    const base = o * n * inner;
    switch (op) {
      case "sum":
      case "mean": {
        acc.fill(0);
        for (let j = 0; j < n; j++) {
          const row = base + j * inner;
          for (let i = 0; i < inner; i++) acc[i] += xs[row + i]!;
        }
        if (op === "mean") for (let i = 0; i < inner; i++) acc[i] /= n;
        break;
      }
      case "max":
      case "min": {
        const isMax = op === "max";
        for (let i = 0; i < inner; i++) acc[i] = xs[base + i]!;
        for (let j = 1; j < n; j++) {
          const row = base + j * inner;
          for (let i = 0; i < inner; i++) {
            const v = xs[row + i]!;
            const a = acc[i]!;
            if (a !== a) continue; // NaN already found
            if (v !== v || (isMax ? v > a : v < a)) acc[i] = v;
          }
        }
        break;
      }
      case "argmax":
      case "argmin": {
        const isMax = op === "argmax";
        for (let i = 0; i < inner; i++) {
          acc[i] = xs[base + i]!;
          idx[i] = 0;
        }
        for (let j = 1; j < n; j++) {
          const row = base + j * inner;
          for (let i = 0; i < inner; i++) {
            const v = xs[row + i]!;
            const a = acc[i]!;
            if (a !== a) continue;
            if (v !== v || (isMax ? v > a : v < a)) {
              acc[i] = v;
              idx[i] = j;
            }
          }
        }
        (out as Int32Array).set(idx, o * inner);
        continue;
      }
      default:
        throw new DTypeError("reduce", `unknown op "${op as string}"`);
    }
    writeRow(out, xDtype, o * inner, acc);
  }
}

function writeRow(out: Storage, dtype: DType, at: number, acc: Float64Array): void {
  const n = acc.length;
  switch (dtype) {
    case "bfloat16":
      for (let i = 0; i < n; i++) (out as Uint16Array)[at + i] = f32ToBf16(acc[i]!);
      return;
    case "int32":
      for (let i = 0; i < n; i++) (out as Int32Array)[at + i] = Math.trunc(acc[i]!);
      return;
    default:
      (out as Float64Array | Float32Array).set(acc, at);
  }
}

function reduceBig(op: "sum" | "mean" | "max" | "min", x: BigInt64Array, outer: number, n: number, inner: number, out: BigInt64Array): void {
  for (let o = 0; o < outer; o++) {
    for (let i = 0; i < inner; i++) {
      const at = o * n * inner + i;
      let r = op === "sum" || op === "mean" ? 0n : x[at]!;
      for (let j = 0; j < n; j++) {
        const v = x[at + j * inner]!;
        if (op === "sum" || op === "mean") r += v;
        else if (op === "max" ? v > r : v < r) r = v;
      }
      // mean of integers truncates toward zero (BigInt division); empty mean gives 0.
      if (op === "mean") r = n === 0 ? 0n : r / BigInt(n);
      out[o * inner + i] = BigInt.asIntN(64, r);
    }
  }
}
