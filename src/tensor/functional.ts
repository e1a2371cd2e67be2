/**
 * Fused neural-network primitives over the backend's kernels: cross-entropy, RMSNorm, LayerNorm,
 * RoPE, embedding lookup, scaled dot-product attention and a linear layer over a frozen weight made
 * on demand. Each records one autograd node.
 */
import { type DType, isFloat } from "../core/dtype.ts";
import { DTypeError, ShapeError, fmtShape } from "../core/errors.ts";
import { noGrad, record } from "./autograd.ts";
import { Tensor } from "./Tensor.ts";
import { backend, cast, contiguous, div, matmul, mul, silu, sum } from "./ops.ts";

/** Saved statistics are float64 when computing in float64 (reference gradchecks), else float32. */
export function statArray(dtype: DType, n: number): Float32Array {
  return (dtype === "float64" ? new Float64Array(n) : new Float32Array(n)) as unknown as Float32Array;
}

/** Integer ids as an Int32Array (int64 ids are narrowed; float ids are rejected). */
export function idsOf(op: string, ids: Tensor): Int32Array {
  if (ids.dtype !== "int32" && ids.dtype !== "int64") {
    throw new DTypeError(op, `expected int32 or int64 indices, got ${ids.dtype} of shape ${fmtShape(ids.shape)}`);
  }
  const c = ids.dtype === "int32" ? contiguous(ids) : cast(ids, "int32");
  return c.data() as Int32Array;
}

function floatInput(op: string, x: Tensor): Tensor {
  if (!isFloat(x.dtype)) throw new DTypeError(op, `expected a floating point tensor, got ${x.dtype}`);
  return contiguous(x);
}

/**
 * bfloat16 logits upcast to float32 on the way in (`logits.to("float32")`, as causal-LM heads return
 * them) are read in bfloat16: the upcast is exact and the kernels compute in float32 either way, so
 * loss and gradient are bit-identical, without a float32 gradient of [N, V] nor its cast back.
 */
function lossless(logits: Tensor): Tensor {
  const node = logits.node;
  const src = node?.op === "cast" ? node.inputs[0] : null;
  return src && logits.dtype === "float32" && src.dtype === "bfloat16" && src.requiresGrad ? src : logits;
}

export interface CrossEntropyOptions {
  ignoreIndex?: number;
  labelSmoothing?: number;
  reduction?: "mean" | "sum" | "none";
}

/**
 * Cross-entropy of logits [..., V] against integer targets [...]. "mean" averages over the
 * targets that are not ignoreIndex (default -100), like torch.nn.functional.cross_entropy.
 */
export function crossEntropy(logits: Tensor, targets: Tensor, opts: CrossEntropyOptions = {}): Tensor {
  const ignoreIndex = opts.ignoreIndex ?? -100;
  const eps = opts.labelSmoothing ?? 0;
  const V = logits.shape[logits.ndim - 1]!;
  const N = logits.numel / V;
  if (logits.ndim < 1 || targets.numel !== N || !targets.shape.every((d, i) => d === logits.shape[i])) {
    throw new ShapeError(
      "crossEntropy",
      `logits ${fmtShape(logits.shape)} need targets of shape ${fmtShape(logits.shape.slice(0, -1))}, got ${fmtShape(targets.shape)}`,
    );
  }
  const x = floatInput("crossEntropy", lossless(logits));
  const t = idsOf("crossEntropy", targets);
  for (let i = 0; i < N; i++) {
    const id = t[i]!;
    if (id !== ignoreIndex && (id < 0 || id >= V)) {
      throw new ShapeError("crossEntropy", `target ${id} at position ${i} is out of range for ${V} classes`);
    }
  }
  const lossDtype: DType = x.dtype === "float64" ? "float64" : "float32";
  const losses = Tensor.empty(targets.shape, lossDtype);
  const lse = statArray(x.dtype, N);
  backend().crossEntropy(x.storage, x.dtype, t, N, V, ignoreIndex, eps, losses.storage as Float32Array, lse);
  const rows = record("cross_entropy", [x], losses, { targets: t, lse, N, V, ignoreIndex, eps });
  const reduction = opts.reduction ?? "mean";
  if (reduction === "none") return rows;
  const total = sum(rows);
  if (reduction === "sum") return total;
  let count = 0;
  for (let i = 0; i < N; i++) if (t[i] !== ignoreIndex) count++;
  return div(total, count);
}

/**
 * SwiGLU, the gated MLP activation of Llama / Qwen2: silu(gate) * up in one fused kernel (one
 * autograd node, no silu(gate) intermediate). Operands of different shapes or dtypes broadcast
 * through the unfused ops.
 */
export function swiglu(gate: Tensor, up: Tensor): Tensor {
  const same = gate.dtype === up.dtype && gate.ndim === up.ndim && gate.shape.every((d, i) => d === up.shape[i]);
  if (!same) return mul(silu(gate), up);
  const g = floatInput("swiglu", gate);
  const u = floatInput("swiglu", up);
  const out = Tensor.uninit(g.shape, g.dtype);
  backend().swiglu(g.data(), u.data(), out.storage, g.dtype, g.numel);
  return record("swiglu", [g, u], out);
}

/** RMSNorm over the last dim: x * rsqrt(mean(x^2) + eps) * weight. */
export function rmsNorm(x: Tensor, weight: Tensor | null, eps = 1e-6): Tensor {
  const C = x.shape[x.ndim - 1]!;
  if (weight && (weight.ndim !== 1 || weight.shape[0] !== C)) {
    throw new ShapeError("rmsNorm", `weight ${fmtShape(weight.shape)} does not match the last dim of input ${fmtShape(x.shape)}`);
  }
  const xc = floatInput("rmsNorm", x);
  const w = weight ? contiguous(weight.dtype === xc.dtype ? weight : cast(weight, xc.dtype)) : null;
  const N = xc.numel / C;
  const out = Tensor.uninit(xc.shape, xc.dtype);
  const rstd = statArray(xc.dtype, N);
  backend().rmsnorm(xc.storage, w ? w.storage : null, out.storage, rstd, xc.dtype, N, C, eps);
  return record("rmsnorm", [xc, w], out, { rstd, N, C });
}

/** LayerNorm over the last dim (biased variance), with optional affine weight and bias. */
export function layerNorm(x: Tensor, weight: Tensor | null, bias: Tensor | null, eps = 1e-5): Tensor {
  const C = x.shape[x.ndim - 1]!;
  for (const [name, p] of [["weight", weight], ["bias", bias]] as const) {
    if (p && (p.ndim !== 1 || p.shape[0] !== C)) {
      throw new ShapeError("layerNorm", `${name} ${fmtShape(p.shape)} does not match the last dim of input ${fmtShape(x.shape)}`);
    }
  }
  const xc = floatInput("layerNorm", x);
  const w = weight ? contiguous(weight.dtype === xc.dtype ? weight : cast(weight, xc.dtype)) : null;
  const b = bias ? contiguous(bias.dtype === xc.dtype ? bias : cast(bias, xc.dtype)) : null;
  const N = xc.numel / C;
  const out = Tensor.empty(xc.shape, xc.dtype);
  const mean = statArray(xc.dtype, N);
  const rstd = statArray(xc.dtype, N);
  backend().layernorm(xc.storage, w ? w.storage : null, b ? b.storage : null, out.storage, mean, rstd, xc.dtype, N, C, eps);
  return record("layernorm", [xc, w, b], out, { mean, rstd, N, C });
}

export interface RopeOptions {
  theta?: number;
  rotaryDim?: number;
  style?: "half" | "interleaved";
}

/**
 * Rotary position embedding of x [B, T, H, D] at positions [T] or [B, T] (int), HF Llama/Qwen2
 * "rotate_half" style by default.
 */
export function rope(x: Tensor, positions: Tensor | number[], opts: RopeOptions = {}): Tensor {
  if (x.ndim !== 4) throw new ShapeError("rope", `expected x of shape [B, T, H, D], got ${fmtShape(x.shape)}`);
  const [B, T, H, D] = x.shape as [number, number, number, number];
  const rotaryDim = opts.rotaryDim ?? D;
  if (rotaryDim % 2 !== 0 || rotaryDim > D) throw new ShapeError("rope", `rotaryDim ${rotaryDim} must be even and <= head dim ${D}`);
  const posTensor = Array.isArray(positions) ? Tensor.empty([positions.length], "int32") : positions;
  if (Array.isArray(positions)) (posTensor.storage as Int32Array).set(positions);
  const p = idsOf("rope", posTensor);
  let pos: Int32Array;
  if (p.length === T) {
    pos = new Int32Array(B * T);
    for (let b = 0; b < B; b++) pos.set(p, b * T);
  } else if (p.length === B * T) pos = p;
  else throw new ShapeError("rope", `positions of shape ${fmtShape(posTensor.shape)} match neither [T=${T}] nor [B=${B}, T=${T}]`);
  const xc = floatInput("rope", x);
  const args = { B, T, H, D, rotaryDim, theta: opts.theta ?? 10000, style: opts.style ?? "half", inverse: false } as const;
  const out = Tensor.uninit(xc.shape, xc.dtype);
  backend().rope(xc.storage, out.storage, xc.dtype, pos, args);
  return record("rope", [xc], out, { pos, args });
}

/** out[..., :] = weight[ids[...], :]. */
export function embedding(ids: Tensor, weight: Tensor): Tensor {
  if (weight.ndim !== 2) throw new ShapeError("embedding", `weight must be [V, C], got ${fmtShape(weight.shape)}`);
  const [V, C] = weight.shape as [number, number];
  const idArr = idsOf("embedding", ids);
  const w = floatInput("embedding", weight);
  const out = Tensor.uninit([...ids.shape, C], w.dtype);
  backend().embedding(w.storage, idArr, out.storage, w.dtype, idArr.length, V, C);
  return record("embedding", [w], out, { ids: idArr, V, C });
}

/**
 * x [..., K] @ W^T for a frozen weight W [N, K] that `weight()` makes on demand (e.g. dequantizes a
 * 4-bit weight) → [..., N]. W is made for the forward and dropped; the backward makes it again for
 * dx = g W, so the graph never holds the full-precision weight (bitsandbytes' MatMul4Bit). W gets
 * no gradient. `weight()` must return the same values each call.
 */
export function frozenLinear(x: Tensor, weight: () => Tensor): Tensor {
  const out = noGrad(() => matmul(x, weight().T));
  return record("frozen_linear", [x], out, { weight });
}

export interface AttentionOptions {
  causal?: boolean;
  scale?: number;
  /** [B, S] with 1 = attend, 0 = padding. */
  keyMask?: Tensor | Uint8Array | null;
}

/**
 * Scaled dot-product attention: q [B, Hq, T, D], k and v [B, Hkv, S, D] (grouped-query when
 * Hkv < Hq) → [B, Hq, T, D]. Flash-style kernels; no [T, S] matrix is kept.
 */
export function scaledDotProductAttention(q: Tensor, k: Tensor, v: Tensor, opts: AttentionOptions = {}): Tensor {
  if (q.ndim !== 4 || k.ndim !== 4 || v.ndim !== 4) {
    throw new ShapeError("attention", `expected 4-D q, k, v; got ${fmtShape(q.shape)}, ${fmtShape(k.shape)}, ${fmtShape(v.shape)}`);
  }
  const [B, Hq, T, D] = q.shape as [number, number, number, number];
  const [B2, Hkv, S, D2] = k.shape as [number, number, number, number];
  const vs = v.shape;
  if (B2 !== B || D2 !== D || vs[0] !== B || vs[1] !== Hkv || vs[2] !== S || vs[3] !== D || Hq % Hkv !== 0) {
    throw new ShapeError(
      "attention",
      `incompatible shapes q ${fmtShape(q.shape)}, k ${fmtShape(k.shape)}, v ${fmtShape(v.shape)} (need k = v = [B, Hkv, S, D] with Hq % Hkv == 0)`,
    );
  }
  const dt = q.dtype;
  if (k.dtype !== dt || v.dtype !== dt) throw new DTypeError("attention", `q, k, v dtypes differ: ${q.dtype}, ${k.dtype}, ${v.dtype}`);
  let keyMask: Uint8Array | null = null;
  if (opts.keyMask) {
    if (opts.keyMask instanceof Tensor) {
      if (opts.keyMask.numel !== B * S) throw new ShapeError("attention", `keyMask ${fmtShape(opts.keyMask.shape)} must be [B=${B}, S=${S}]`);
      keyMask = Uint8Array.from(opts.keyMask.toArray(), (x) => (x !== 0 ? 1 : 0));
    } else keyMask = opts.keyMask;
    if (keyMask.length !== B * S) throw new ShapeError("attention", `keyMask of length ${keyMask.length} must be B*S = ${B * S}`);
  }
  const qc = floatInput("attention", q);
  const kc = floatInput("attention", k);
  const vc = floatInput("attention", v);
  const args = { B, Hq, Hkv, T, S, D, scale: opts.scale ?? 1 / Math.sqrt(D), causal: opts.causal ?? false, keyMask };
  const out = Tensor.uninit(qc.shape, dt);
  const lse = statArray(dt, B * Hq * T);
  backend().attention(qc.storage, kc.storage, vc.storage, out.storage, lse, dt, args);
  return record("attention", [qc, kc, vc], out, { lse, args });
}
