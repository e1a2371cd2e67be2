/**
 * Backend.decoderLayer (and decoderStack) composed from a backend's own kernels, one op at a time
 * (rmsnorm, gemm or qmatmul, binary add, rope, copy, attention, swiglu) exactly as the model's
 * unfused forward runs them: the reference backend's implementation, and the native backend's
 * fallback where the add-on has no fused kernel for the dtypes at hand.
 */
import { type DType, type Storage, allocStorage } from "../core/dtype.ts";
import { ShapeError } from "../core/errors.ts";
import type { Backend, DecodeProjection, DecoderLayerArgs, DecoderLayerWeights, DecoderStackLayer, View } from "./Backend.ts";

function view(data: Storage, dtype: DType, shape: readonly number[], strides: readonly number[], offset = 0): View {
  return { data, dtype, shape, strides, offset };
}

function dense(data: Storage, dtype: DType, shape: readonly number[]): View {
  const strides = new Array<number>(shape.length);
  let s = 1;
  for (let i = shape.length - 1; i >= 0; i--) {
    strides[i] = s;
    s *= shape[i]!;
  }
  return view(data, dtype, shape, strides);
}

/** y [M, N] = x [M, K] @ W^T (+ bias), as Linear / QuantizedLinear compute it. */
function project(be: Backend, x: Storage, dtype: DType, M: number, K: number, N: number, p: DecodeProjection): Storage {
  const y = allocStorage(dtype, M * N);
  if (p.kind === "float") {
    be.gemm(x, p.weight, y, dtype, dtype, {
      batch: 1,
      m: M,
      n: N,
      k: K,
      transA: false,
      transB: true,
      lda: K,
      ldb: K,
      ldc: N,
      offsetA: 0,
      offsetB: 0,
      offsetC: 0,
      strideA: M * K,
      strideB: 0,
      strideC: M * N,
      alpha: 1,
      beta: 0,
    });
  } else be.qmatmul(x, dtype, p.qs, p.scales, y, { m: M, n: N, k: K, type: p.type });
  if (p.bias) be.binary("add", dense(y, dtype, [M, N]), view(p.bias, dtype, [M, N], [0, 1]), dense(y, dtype, [M, N]));
  return y;
}

/** The checks of a layer's cache positions and key mask (op: the Backend method, for the error). */
function checkLayer(op: string, a: Pick<DecoderLayerArgs, "B" | "T" | "past" | "capacity" | "keyMask">): void {
  const S = a.past + a.T;
  if (a.past + a.T > a.capacity) throw new ShapeError(op, `${a.past} cached + ${a.T} new positions exceed the capacity ${a.capacity}`);
  if (a.keyMask && a.keyMask.length !== a.B * S) throw new ShapeError(op, `keyMask has ${a.keyMask.length} elements, expected B * (past + T) = ${a.B * S}`);
}

/** Backend.decoderStack as decoderLayer calls, layer by layer, after every layer's checks passed. */
export function composeDecoderStack(
  be: Backend,
  h: Storage,
  dtype: DType,
  layers: readonly DecoderStackLayer[],
  args: Omit<DecoderLayerArgs, "past" | "capacity" | "keyMask">,
): void {
  layers.forEach((l, i) => checkLayer(`decoderStack: layer ${i}`, { ...args, past: l.past, capacity: l.capacity, keyMask: l.keyMask }));
  for (const l of layers) be.decoderLayer(h, dtype, l.w, l.kCache, l.vCache, { ...args, past: l.past, capacity: l.capacity, keyMask: l.keyMask });
}

export function composeDecoderLayer(
  be: Backend,
  h: Storage,
  dtype: DType,
  w: DecoderLayerWeights,
  kCache: Storage,
  vCache: Storage,
  args: DecoderLayerArgs,
): void {
  const { B, T, C, F, Hq, Hkv, D, past, capacity, eps, theta, positions, keyMask } = args;
  const M = B * T;
  const S = past + T;
  checkLayer("decoderLayer", args);
  const stat = (n: number) => (dtype === "float64" ? new Float64Array(n) : new Float32Array(n)) as Float32Array;
  const hv = dense(h, dtype, [M, C]);

  // Attention block.
  let x = allocStorage(dtype, M * C);
  be.rmsnorm(h, w.inputNorm, x, stat(M), dtype, M, C, eps);
  const q = project(be, x, dtype, M, C, Hq * D, w.q);
  const k = project(be, x, dtype, M, C, Hkv * D, w.k);
  const v = project(be, x, dtype, M, C, Hkv * D, w.v);
  const rope = { B, T, D, rotaryDim: D, theta, style: "half", inverse: false } as const;
  be.rope(q, q, dtype, positions, { ...rope, H: Hq });
  be.rope(k, k, dtype, positions, { ...rope, H: Hkv });
  // [B, T, Hkv, D] seen as [B, Hkv, T, D] → cache positions past .. past + T - 1.
  const newKv = (data: Storage) => view(data, dtype, [B, Hkv, T, D], [T * Hkv * D, D, Hkv * D, 1]);
  const slots = (cache: Storage) => view(cache, dtype, [B, Hkv, T, D], [Hkv * capacity * D, capacity * D, D, 1], past * D);
  be.copy(newKv(k), slots(kCache));
  be.copy(newKv(v), slots(vCache));
  const filled = (cache: Storage) => {
    const out = allocStorage(dtype, B * Hkv * S * D);
    be.copy(view(cache, dtype, [B, Hkv, S, D], [Hkv * capacity * D, capacity * D, D, 1]), dense(out, dtype, [B, Hkv, S, D]));
    return out;
  };
  const qh = allocStorage(dtype, M * Hq * D);
  be.copy(view(q, dtype, [B, Hq, T, D], [T * Hq * D, D, Hq * D, 1]), dense(qh, dtype, [B, Hq, T, D]));
  const att = allocStorage(dtype, M * Hq * D);
  be.attention(qh, filled(kCache), filled(vCache), att, stat(B * Hq * T), dtype, {
    B,
    Hq,
    Hkv,
    T,
    S,
    D,
    scale: 1 / Math.sqrt(D),
    causal: true,
    keyMask,
  });
  const attBt = allocStorage(dtype, M * Hq * D);
  be.copy(view(att, dtype, [B, T, Hq, D], [Hq * T * D, D, T * D, 1]), dense(attBt, dtype, [B, T, Hq, D]));
  const o = project(be, attBt, dtype, M, Hq * D, C, w.o);
  be.binary("add", hv, dense(o, dtype, [M, C]), hv);

  // MLP block.
  x = allocStorage(dtype, M * C);
  be.rmsnorm(h, w.postNorm, x, stat(M), dtype, M, C, eps);
  const g = project(be, x, dtype, M, C, F, w.gate);
  const u = project(be, x, dtype, M, C, F, w.up);
  const a = allocStorage(dtype, M * F);
  be.swiglu(g, u, a, dtype, M * F);
  const d = project(be, a, dtype, M, F, C, w.down);
  be.binary("add", hv, dense(d, dtype, [M, C]), hv);
}
