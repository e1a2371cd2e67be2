/**
 * Scaled dot-product attention, forward and backward, one (b, h, t) query row at a time: the row's
 * scores over the S keys are materialised (O(S) memory), masked, softmaxed in float64. Query head h
 * reads kv head floor(h / (Hq / Hkv)); causal rows see keys s <= t + (S - T); keyMask [B, S] zeros
 * hide keys. A row with no visible key outputs 0, saves lse = -Infinity and gets no gradient.
 */
import type { DType, Storage } from "../../core/dtype.ts";
import { ShapeError } from "../../core/errors.ts";
import type { AttentionArgs } from "../Backend.ts";
import { type NumArray, type StatArray, checkFloatStorage, checkLength, checkSizes, checkStat, commit, dimsOf, readable, writable } from "./storage.ts";

function checkAttention(op: string, args: AttentionArgs, dtype: DType, bufs: Record<string, Storage>, lse: StatArray): void {
  const { B, Hq, Hkv, T, S, D } = args;
  checkSizes(op, { B, Hq, Hkv, T, S, D });
  if (Hkv === 0 ? Hq !== 0 : Hq % Hkv !== 0) throw new ShapeError(op, `Hq=${Hq} is not a multiple of Hkv=${Hkv}`);
  const qDims = dimsOf({ B, Hq, T, D });
  const kDims = dimsOf({ B, Hkv, S, D });
  for (const [name, s] of Object.entries(bufs)) {
    const isKv = name === "k" || name === "v" || name === "gk" || name === "gv";
    checkFloatStorage(op, name, s, dtype, isKv ? B * Hkv * S * D : B * Hq * T * D, isKv ? kDims : qDims);
  }
  checkStat(op, "lse", lse, B * Hq * T, dimsOf({ B, Hq, T }));
  if (args.keyMask) checkLength(op, "keyMask", args.keyMask, B * S, dimsOf({ B, S }));
}

/**
 * Scaled, masked scores of query row (b, h, t) into `p` (masked keys -Infinity), softmaxed in place.
 * Returns the row's log-sum-exp, -Infinity when every key is masked (p then all 0).
 */
function rowProbs(q: NumArray, k: NumArray, args: AttentionArgs, b: number, h: number, t: number, p: Float64Array): number {
  const { Hq, Hkv, T, S, D, scale, causal, keyMask } = args;
  const hk = Math.floor(h / (Hq / Hkv));
  const qo = ((b * Hq + h) * T + t) * D;
  const kBase = (b * Hkv + hk) * S * D;
  const last = causal ? t + (S - T) : S - 1;
  let max = -Infinity;
  for (let s = 0; s < S; s++) {
    if (s > last || (keyMask && keyMask[b * S + s] === 0)) {
      p[s] = -Infinity;
      continue;
    }
    const ko = kBase + s * D;
    let dot = 0;
    for (let d = 0; d < D; d++) dot += q[qo + d]! * k[ko + d]!;
    const sc = dot * scale;
    p[s] = sc;
    if (sc > max || sc !== sc) max = Math.max(max, sc);
  }
  if (max === -Infinity) {
    p.fill(0);
    return -Infinity;
  }
  let sum = 0;
  for (let s = 0; s < S; s++) {
    const e = Math.exp(p[s]! - max); // exp(-Infinity) = 0 for masked keys
    p[s] = e;
    sum += e;
  }
  for (let s = 0; s < S; s++) p[s] = p[s]! / sum;
  return max + Math.log(sum);
}

export function attention(q: Storage, k: Storage, v: Storage, out: Storage, lse: StatArray, dtype: DType, args: AttentionArgs): void {
  checkAttention("attention", args, dtype, { q, k, v, out }, lse);
  const { B, Hq, Hkv, T, S, D } = args;
  const nq = B * Hq * T * D;
  const nk = B * Hkv * S * D;
  const qs = readable(q, dtype, nq);
  const ks = readable(k, dtype, nk);
  const vs = readable(v, dtype, nk);
  const os = writable(out, dtype, nq);
  const p = new Float64Array(S);
  const acc = new Float64Array(D);
  for (let b = 0; b < B; b++) {
    for (let h = 0; h < Hq; h++) {
      const vBase = (b * Hkv + Math.floor(h / (Hq / Hkv))) * S * D;
      for (let t = 0; t < T; t++) {
        lse[(b * Hq + h) * T + t] = rowProbs(qs, ks, args, b, h, t, p);
        acc.fill(0);
        for (let s = 0; s < S; s++) {
          const ps = p[s]!;
          if (ps === 0) continue;
          const vo = vBase + s * D;
          for (let d = 0; d < D; d++) acc[d] += ps * vs[vo + d]!;
        }
        const oo = ((b * Hq + h) * T + t) * D;
        for (let d = 0; d < D; d++) os[oo + d] = acc[d]!;
      }
    }
  }
  commit(os, out, dtype, nq);
}

/**
 * Recomputes each row's probabilities P from q and k (the saved out and lse are checked for size
 * but not relied on), then with dP = gOut . v and Dr = sum_s P dP:
 * dS = P (dP - Dr); gq = scale dS k; gk += scale dS q; gv += P gOut (summed over grouped heads).
 */
export function attentionBackward(
  q: Storage,
  k: Storage,
  v: Storage,
  out: Storage,
  lse: StatArray,
  gOut: Storage,
  gq: Storage,
  gk: Storage,
  gv: Storage,
  dtype: DType,
  args: AttentionArgs,
): void {
  checkAttention("attentionBackward", args, dtype, { q, k, v, out, gOut, gq, gk, gv }, lse);
  const { B, Hq, Hkv, T, S, D, scale } = args;
  const nq = B * Hq * T * D;
  const nk = B * Hkv * S * D;
  const qs = readable(q, dtype, nq);
  const ks = readable(k, dtype, nk);
  const vs = readable(v, dtype, nk);
  const gos = readable(gOut, dtype, nq);
  const gqs = writable(gq, dtype, nq);
  const gkAcc = new Float64Array(nk);
  const gvAcc = new Float64Array(nk);
  const p = new Float64Array(S);
  const dp = new Float64Array(S);
  const gqRow = new Float64Array(D);
  for (let b = 0; b < B; b++) {
    for (let h = 0; h < Hq; h++) {
      const kvBase = (b * Hkv + Math.floor(h / (Hq / Hkv))) * S * D;
      for (let t = 0; t < T; t++) {
        const qo = ((b * Hq + h) * T + t) * D;
        gqRow.fill(0);
        if (rowProbs(qs, ks, args, b, h, t, p) !== -Infinity) {
          let dr = 0;
          for (let s = 0; s < S; s++) {
            if (p[s] === 0) continue;
            const vo = kvBase + s * D;
            let dot = 0;
            for (let d = 0; d < D; d++) dot += gos[qo + d]! * vs[vo + d]!;
            dp[s] = dot;
            dr += p[s]! * dot;
          }
          for (let s = 0; s < S; s++) {
            const ps = p[s]!;
            if (ps === 0) continue;
            const ds = ps * (dp[s]! - dr) * scale;
            const ko = kvBase + s * D;
            for (let d = 0; d < D; d++) {
              gqRow[d] += ds * ks[ko + d]!;
              gkAcc[ko + d] += ds * qs[qo + d]!;
              gvAcc[ko + d] += ps * gos[qo + d]!;
            }
          }
        }
        for (let d = 0; d < D; d++) gqs[qo + d] = gqRow[d]!;
      }
    }
  }
  commit(gqs, gq, dtype, nq);
  const gkw = writable(gk, dtype, nk);
  const gvw = writable(gv, dtype, nk);
  gkw.set(gkAcc);
  gvw.set(gvAcc);
  commit(gkw, gk, dtype, nk);
  commit(gvw, gv, dtype, nk);
}
