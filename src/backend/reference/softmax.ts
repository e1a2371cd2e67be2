/**
 * Row-wise softmax / log-softmax (forward and backward) and fused cross-entropy over [N, C] rows.
 * All math in float64, max-subtracted for stability; bf16 results rounded once.
 */
import type { DType, Storage } from "../../core/dtype.ts";
import { ShapeError } from "../../core/errors.ts";
import { type StatArray, checkFloatStorage, checkLength, checkSizes, checkStat, commit, dimsOf, readable, writable } from "./storage.ts";

export function softmax(x: Storage, y: Storage, dtype: DType, N: number, C: number, log: boolean): void {
  const op = log ? "logSoftmax" : "softmax";
  checkSizes(op, { N, C });
  const dims = dimsOf({ N, C });
  checkFloatStorage(op, "x", x, dtype, N * C, dims);
  checkFloatStorage(op, "y", y, dtype, N * C, dims);
  const xs = readable(x, dtype, N * C);
  const ys = writable(y, dtype, N * C);
  for (let r = 0; r < N; r++) {
    const o = r * C;
    let max = -Infinity;
    for (let j = 0; j < C; j++) if (xs[o + j]! > max || xs[o + j] !== xs[o + j]) max = Math.max(max, xs[o + j]!);
    let sum = 0;
    for (let j = 0; j < C; j++) sum += Math.exp(xs[o + j]! - max);
    if (log) {
      const lse = max + Math.log(sum);
      for (let j = 0; j < C; j++) ys[o + j] = xs[o + j]! - lse;
    } else {
      for (let j = 0; j < C; j++) ys[o + j] = Math.exp(xs[o + j]! - max) / sum;
    }
  }
  commit(ys, y, dtype, N * C);
}

export function softmaxBackward(y: Storage, gy: Storage, gx: Storage, dtype: DType, N: number, C: number, log: boolean): void {
  const op = log ? "logSoftmaxBackward" : "softmaxBackward";
  checkSizes(op, { N, C });
  const dims = dimsOf({ N, C });
  checkFloatStorage(op, "y", y, dtype, N * C, dims);
  checkFloatStorage(op, "gy", gy, dtype, N * C, dims);
  checkFloatStorage(op, "gx", gx, dtype, N * C, dims);
  const ys = readable(y, dtype, N * C);
  const gys = readable(gy, dtype, N * C);
  const gxs = writable(gx, dtype, N * C);
  for (let r = 0; r < N; r++) {
    const o = r * C;
    if (log) {
      // gx = gy - exp(y) * sum(gy)
      let s = 0;
      for (let j = 0; j < C; j++) s += gys[o + j]!;
      for (let j = 0; j < C; j++) gxs[o + j] = gys[o + j]! - Math.exp(ys[o + j]!) * s;
    } else {
      // gx = y * (gy - sum(gy * y))
      let s = 0;
      for (let j = 0; j < C; j++) s += gys[o + j]! * ys[o + j]!;
      for (let j = 0; j < C; j++) gxs[o + j] = ys[o + j]! * (gys[o + j]! - s);
    }
  }
  commit(gxs, gx, dtype, N * C);
}

function checkTargets(op: string, targets: Int32Array, N: number, V: number, ignoreIndex: number): void {
  if (!(targets instanceof Int32Array)) throw new ShapeError(op, `targets must be an Int32Array`);
  checkLength(op, "targets", targets, N, `[N=${N}]`);
  for (let i = 0; i < N; i++) {
    const t = targets[i]!;
    if (t !== ignoreIndex && (t < 0 || t >= V)) {
      throw new ShapeError(op, `target ${t} at row ${i} is out of range for V=${V} classes (ignoreIndex ${ignoreIndex})`);
    }
  }
}

/** loss[i] = (1 - eps)(lse_i - x[i, t_i]) + eps (lse_i - mean_j x[i, j]); 0 for ignored rows. lse saved for every row. */
export function crossEntropy(
  logits: Storage,
  dtype: DType,
  targets: Int32Array,
  N: number,
  V: number,
  ignoreIndex: number,
  labelSmoothing: number,
  loss: StatArray,
  lse: StatArray,
): void {
  const op = "crossEntropy";
  checkSizes(op, { N, V });
  const dims = dimsOf({ N, V });
  checkFloatStorage(op, "logits", logits, dtype, N * V, dims);
  checkTargets(op, targets, N, V, ignoreIndex);
  checkStat(op, "loss", loss, N, `[N=${N}]`);
  checkStat(op, "lse", lse, N, `[N=${N}]`);
  const eps = labelSmoothing;
  const xs = readable(logits, dtype, N * V);
  for (let r = 0; r < N; r++) {
    const o = r * V;
    let max = -Infinity;
    let total = 0;
    for (let j = 0; j < V; j++) {
      const v = xs[o + j]!;
      if (v > max || v !== v) max = Math.max(max, v);
      total += v;
    }
    let sum = 0;
    for (let j = 0; j < V; j++) sum += Math.exp(xs[o + j]! - max);
    const l = max + Math.log(sum);
    lse[r] = l;
    const t = targets[r]!;
    if (t === ignoreIndex) {
      loss[r] = 0;
      continue;
    }
    const nll = l - xs[o + t]!;
    loss[r] = eps === 0 ? nll : (1 - eps) * nll + eps * (l - total / V);
  }
}

/** gLogits[i, :] = gLoss[i] * (softmax(x_i) - (1 - eps) onehot(t_i) - eps / V); ignored rows 0. */
export function crossEntropyBackward(
  logits: Storage,
  dtype: DType,
  targets: Int32Array,
  lse: StatArray,
  gLoss: StatArray,
  N: number,
  V: number,
  ignoreIndex: number,
  labelSmoothing: number,
  gLogits: Storage,
): void {
  const op = "crossEntropyBackward";
  checkSizes(op, { N, V });
  const dims = dimsOf({ N, V });
  checkFloatStorage(op, "logits", logits, dtype, N * V, dims);
  checkFloatStorage(op, "gLogits", gLogits, dtype, N * V, dims);
  checkTargets(op, targets, N, V, ignoreIndex);
  checkStat(op, "lse", lse, N, `[N=${N}]`);
  checkStat(op, "gLoss", gLoss, N, `[N=${N}]`);
  const eps = labelSmoothing;
  const xs = readable(logits, dtype, N * V);
  const gs = writable(gLogits, dtype, N * V);
  for (let r = 0; r < N; r++) {
    const o = r * V;
    const t = targets[r]!;
    if (t === ignoreIndex) {
      for (let j = 0; j < V; j++) gs[o + j] = 0;
      continue;
    }
    const g = gLoss[r]!;
    const l = lse[r]!;
    const spread = eps / V;
    for (let j = 0; j < V; j++) gs[o + j] = g * (Math.exp(xs[o + j]! - l) - spread - (j === t ? 1 - eps : 0));
  }
  commit(gs, gLogits, dtype, N * V);
}
