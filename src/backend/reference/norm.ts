/**
 * RMSNorm and LayerNorm over the last dim of [N, C], forward and backward, in float64.
 * Saved statistics (rstd, mean) are float32, or float64 arrays for float64 gradchecks.
 * Backward: gx overwritten, gw / gb accumulated (+=).
 */
import type { DType, Storage } from "../../core/dtype.ts";
import {
  type StatArray,
  addInto,
  checkFloatStorage,
  checkSizes,
  checkStat,
  commit,
  dimsOf,
  readable,
  writable,
} from "./storage.ts";

function checkNorm(op: string, N: number, C: number, dtype: DType, bufs: Record<string, Storage | null>, stats: Record<string, StatArray>): void {
  checkSizes(op, { N, C });
  const dims = dimsOf({ N, C });
  for (const [name, s] of Object.entries(bufs)) {
    if (!s) continue;
    const isParam = name === "w" || name === "b" || name === "gw" || name === "gb";
    checkFloatStorage(op, name, s, dtype, isParam ? C : N * C, isParam ? `[C=${C}]` : dims);
  }
  for (const [name, s] of Object.entries(stats)) checkStat(op, name, s, N, `[N=${N}]`);
}

/** y = x * rstd * w with rstd = 1 / sqrt(mean(x^2) + eps). */
export function rmsnorm(x: Storage, w: Storage | null, y: Storage, rstd: StatArray, dtype: DType, N: number, C: number, eps: number): void {
  checkNorm("rmsnorm", N, C, dtype, { x, w, y }, { rstd });
  const xs = readable(x, dtype, N * C);
  const ws = w ? readable(w, dtype, C) : null;
  const ys = writable(y, dtype, N * C);
  for (let r = 0; r < N; r++) {
    const o = r * C;
    let ss = 0;
    for (let j = 0; j < C; j++) ss += xs[o + j]! * xs[o + j]!;
    const rs = 1 / Math.sqrt(ss / C + eps);
    rstd[r] = rs;
    for (let j = 0; j < C; j++) ys[o + j] = xs[o + j]! * rs * (ws ? ws[j]! : 1);
  }
  commit(ys, y, dtype, N * C);
}

/**
 * With g = gy * w: gx = rstd * g - x * rstd^3 * mean(g * x); gw += sum_rows gy * x * rstd.
 */
export function rmsnormBackward(
  x: Storage,
  w: Storage | null,
  rstd: StatArray,
  gy: Storage,
  gx: Storage,
  gw: Storage | null,
  dtype: DType,
  N: number,
  C: number,
): void {
  checkNorm("rmsnormBackward", N, C, dtype, { x, w, gy, gx, gw }, { rstd });
  const xs = readable(x, dtype, N * C);
  const ws = w ? readable(w, dtype, C) : null;
  const gys = readable(gy, dtype, N * C);
  const gxs = writable(gx, dtype, N * C);
  const gwAcc = gw ? new Float64Array(C) : null;
  for (let r = 0; r < N; r++) {
    const o = r * C;
    const rs = rstd[r]!;
    let dot = 0;
    for (let j = 0; j < C; j++) dot += gys[o + j]! * (ws ? ws[j]! : 1) * xs[o + j]!;
    const k = (rs * rs * rs * dot) / C;
    if (gwAcc) for (let j = 0; j < C; j++) gwAcc[j] += gys[o + j]! * xs[o + j]! * rs;
    for (let j = 0; j < C; j++) gxs[o + j] = rs * gys[o + j]! * (ws ? ws[j]! : 1) - k * xs[o + j]!;
  }
  commit(gxs, gx, dtype, N * C);
  if (gw && gwAcc) addInto(gw, dtype, gwAcc);
}

/** y = (x - mean) * rstd * w + b, biased variance. */
export function layernorm(
  x: Storage,
  w: Storage | null,
  b: Storage | null,
  y: Storage,
  mean: StatArray,
  rstd: StatArray,
  dtype: DType,
  N: number,
  C: number,
  eps: number,
): void {
  checkNorm("layernorm", N, C, dtype, { x, w, b, y }, { mean, rstd });
  const xs = readable(x, dtype, N * C);
  const ws = w ? readable(w, dtype, C) : null;
  const bs = b ? readable(b, dtype, C) : null;
  const ys = writable(y, dtype, N * C);
  for (let r = 0; r < N; r++) {
    const o = r * C;
    let s = 0;
    for (let j = 0; j < C; j++) s += xs[o + j]!;
    const mu = s / C;
    let v = 0;
    for (let j = 0; j < C; j++) v += (xs[o + j]! - mu) * (xs[o + j]! - mu);
    const rs = 1 / Math.sqrt(v / C + eps);
    mean[r] = mu;
    rstd[r] = rs;
    for (let j = 0; j < C; j++) ys[o + j] = (xs[o + j]! - mu) * rs * (ws ? ws[j]! : 1) + (bs ? bs[j]! : 0);
  }
  commit(ys, y, dtype, N * C);
}

/**
 * With xhat = (x - mean) * rstd and g = gy * w: gx = rstd * (g - mean(g) - xhat * mean(g * xhat));
 * gw += sum_rows gy * xhat; gb += sum_rows gy.
 */
export function layernormBackward(
  x: Storage,
  w: Storage | null,
  mean: StatArray,
  rstd: StatArray,
  gy: Storage,
  gx: Storage,
  gw: Storage | null,
  gb: Storage | null,
  dtype: DType,
  N: number,
  C: number,
): void {
  checkNorm("layernormBackward", N, C, dtype, { x, w, gy, gx, gw, gb }, { mean, rstd });
  const xs = readable(x, dtype, N * C);
  const ws = w ? readable(w, dtype, C) : null;
  const gys = readable(gy, dtype, N * C);
  const gxs = writable(gx, dtype, N * C);
  const gwAcc = gw ? new Float64Array(C) : null;
  const gbAcc = gb ? new Float64Array(C) : null;
  const xhat = new Float64Array(C);
  for (let r = 0; r < N; r++) {
    const o = r * C;
    const mu = mean[r]!;
    const rs = rstd[r]!;
    let sg = 0;
    let sgx = 0;
    for (let j = 0; j < C; j++) {
      const xh = (xs[o + j]! - mu) * rs;
      xhat[j] = xh;
      const g = gys[o + j]! * (ws ? ws[j]! : 1);
      sg += g;
      sgx += g * xh;
    }
    sg /= C;
    sgx /= C;
    if (gwAcc) for (let j = 0; j < C; j++) gwAcc[j] += gys[o + j]! * xhat[j]!;
    if (gbAcc) for (let j = 0; j < C; j++) gbAcc[j] += gys[o + j]!;
    for (let j = 0; j < C; j++) gxs[o + j] = rs * (gys[o + j]! * (ws ? ws[j]! : 1) - sg - xhat[j]! * sgx);
  }
  commit(gxs, gx, dtype, N * C);
  if (gw && gwAcc) addInto(gw, dtype, gwAcc);
  if (gb && gbAcc) addInto(gb, dtype, gbAcc);
}
