/**
 * Rotary position embedding over x [B, T, H, D]. Pair i (i < rotaryDim / 2) rotates by
 * angle = position * theta^(-2i / rotaryDim) (negated for the inverse, which is the transpose and
 * so the backward); "half" pairs dims (i, i + rotaryDim/2) (HF rotate_half), "interleaved" pairs
 * (2i, 2i + 1). Dims past rotaryDim pass through. Angles and products in float64; out may alias x.
 */
import type { DType, Storage } from "../../core/dtype.ts";
import { ShapeError } from "../../core/errors.ts";
import type { RopeArgs } from "../Backend.ts";
import { checkFloatStorage, checkLength, checkSizes, commit, dimsOf, readable, writable } from "./storage.ts";

export function rope(x: Storage, out: Storage, dtype: DType, positions: Int32Array, args: RopeArgs): void {
  const { B, T, H, D, rotaryDim, theta, style, inverse } = args;
  const op = inverse ? "ropeBackward" : "rope";
  checkSizes(op, { B, T, H, D, rotaryDim });
  if (rotaryDim % 2 !== 0 || rotaryDim > D) throw new ShapeError(op, `rotaryDim ${rotaryDim} must be even and <= D=${D}`);
  if (style !== "half" && style !== "interleaved") throw new ShapeError(op, `unknown style "${style as string}"`);
  const n = B * T * H * D;
  const dims = dimsOf({ B, T, H, D });
  checkFloatStorage(op, "x", x, dtype, n, dims);
  checkFloatStorage(op, "out", out, dtype, n, dims);
  checkLength(op, "positions", positions, B * T, `[B*T=${B * T}]`);
  const half = rotaryDim / 2;
  const invFreq = new Float64Array(half);
  for (let i = 0; i < half; i++) invFreq[i] = Math.pow(theta, (-2 * i) / rotaryDim);
  // For interleaved, pair i is (2i, 2i+1); for half, (i, i + half).
  const stepA = style === "half" ? 1 : 2;
  const secondOffset = style === "half" ? half : 1;
  const xs = readable(x, dtype, n);
  const ys = writable(out, dtype, n);
  const cos = new Float64Array(half);
  const sin = new Float64Array(half);
  for (let bt = 0; bt < B * T; bt++) {
    const pos = positions[bt]!;
    for (let i = 0; i < half; i++) {
      const angle = pos * invFreq[i]!;
      cos[i] = Math.cos(angle);
      sin[i] = inverse ? -Math.sin(angle) : Math.sin(angle);
    }
    for (let h = 0; h < H; h++) {
      const o = (bt * H + h) * D;
      for (let i = 0; i < half; i++) {
        const ia = o + i * stepA;
        const ib = ia + secondOffset;
        const a = xs[ia]!;
        const b = xs[ib]!;
        ys[ia] = a * cos[i]! - b * sin[i]!;
        ys[ib] = b * cos[i]! + a * sin[i]!;
      }
      if (ys !== xs) for (let j = rotaryDim; j < D; j++) ys[o + j] = xs[o + j]!;
    }
  }
  commit(ys, out, dtype, n);
}
