/**
 * The native backend: float32 and bfloat16 kernels in the C++ add-on (SIMD, multithreaded); every
 * other dtype or combination (float64, int64, mixed dtypes, float64 statistics) is delegated to the
 * reference backend. The add-on validates every array length against the sizes it is given and
 * throws "<op>: ..." errors, so a wrong size never reads or writes out of bounds.
 */
import { constants as bufferConstants } from "node:buffer";
import { type DType, type Storage, setLargeArrayAllocator } from "../../core/dtype.ts";
import { ShapeError } from "../../core/errors.ts";
import type {
  AdamWArgs,
  AttentionArgs,
  Backend,
  BinaryOp,
  DecodeProjection,
  DecoderLayerArgs,
  DecoderLayerWeights,
  DecoderStackLayer,
  GemmArgs,
  Nf4Args,
  QMatmulArgs,
  ReduceOp,
  RopeArgs,
  UnaryOp,
  View,
} from "../Backend.ts";
import { composeDecoderLayer, composeDecoderStack } from "../decoderLayer.ts";
import { ReferenceBackend } from "../reference/ReferenceBackend.ts";
import { type Addon, loadAddon } from "./addon.ts";
import { nativeGemm } from "./gemm.ts";
import { tryNativeGemv, tryNativeNf4Dequantize, tryNativeNf4Matmul, tryNativeQMatmul } from "./quant.ts";

// Op codes: the order of the enums in native/ops_kernels.h.
const UNARY_CODES: Record<UnaryOp, number> = {
  neg: 0,
  exp: 1,
  log: 2,
  sqrt: 3,
  rsqrt: 4,
  tanh: 5,
  sigmoid: 6,
  silu: 7,
  gelu: 8,
  gelu_erf: 9,
  relu: 10,
  abs: 11,
  sin: 12,
  cos: 13,
  square: 14,
  reciprocal: 15,
};
const BINARY_CODES: Record<BinaryOp, number> = {
  add: 0,
  sub: 1,
  mul: 2,
  div: 3,
  pow: 4,
  maximum: 5,
  minimum: 6,
  eq: 7,
  ne: 8,
  lt: 9,
  le: 10,
  gt: 11,
  ge: 12,
};
const REDUCE_CODES: Record<ReduceOp, number> = { sum: 0, mean: 1, max: 2, min: 3, argmax: 4, argmin: 5 };

/**
 * Query rows per head up to which attention runs the decode kernel (native/ops_k_decode.h: the rows
 * of all query heads sharing a kv head against its keys, threads over kv heads) instead of the flash
 * kernel, built for training shapes, whose per-head layout and tiling cost more than a decode step's work.
 */
export const DECODE_ATTENTION_MAX_T = 4;

/** The add-on's dtype code for a float kernel dtype whose storage matches, else null. */
function floatCode(dtype: DType, ...storages: (Storage | null)[]): number | null {
  if (dtype === "float32") return storages.every((s) => s === null || s instanceof Float32Array) ? 0 : null;
  if (dtype === "bfloat16") return storages.every((s) => s === null || s instanceof Uint16Array) ? 1 : null;
  return null;
}

/** Like floatCode, for views (copy, fill and where's condition also take int32). */
function viewCode(v: View, allowInt: boolean): number | null {
  if (allowInt && v.dtype === "int32") return v.data instanceof Int32Array ? 2 : null;
  return floatCode(v.dtype, v.data);
}

function sameShapes(out: View, ...views: View[]): boolean {
  return views.every((v) => v.shape.length === out.shape.length && v.shape.every((d, i) => d === out.shape[i]));
}

function isF32(...arrays: unknown[]): boolean {
  return arrays.every((a) => a instanceof Float32Array);
}

/** Slack that lets an array start at a 2 MiB boundary inside a malloc'd block (16-byte aligned at least). */
const HUGE_PAGE_SLACK = (2 << 20) - 16;

/** A Buffer over a fresh block with `bytes` bytes at a 2 MiB boundary, as hugePageArray lays it out. */
function hugePageBuffer(place: (raw: Uint8Array, bytes: number, zero: boolean) => number, bytes: number, zero: boolean): { buffer: ArrayBuffer; byteOffset: number } | null {
  if (bytes + HUGE_PAGE_SLACK > bufferConstants.MAX_LENGTH) return null;
  const raw = Buffer.allocUnsafeSlow(bytes + HUGE_PAGE_SLACK);
  const offset = place(raw, bytes, zero);
  return offset < 0 ? null : { buffer: raw.buffer as ArrayBuffer, byteOffset: raw.byteOffset + offset };
}

export class NativeBackend implements Backend {
  readonly name = "native";
  private readonly addon: Addon;
  private readonly ref = new ReferenceBackend();

  constructor(addon: Addon = loadAddon()) {
    this.addon = addon;
    // Large tensors in 2 MiB-aligned huge-page memory (the add-on's hugePageArray); GRAFT_HUGE_PAGES=0 keeps plain typed arrays.
    const place = addon["hugePageArray"];
    if (place && process.env["GRAFT_HUGE_PAGES"] !== "0") setLargeArrayAllocator((bytes, zero) => hugePageBuffer(place, bytes, zero));
  }

  copy(src: View, dst: View): void {
    const s = viewCode(src, true);
    const d = viewCode(dst, true);
    if (s === null || d === null || !sameShapes(dst, src)) return this.ref.copy(src, dst);
    this.addon.copy(src.data, src.offset, src.strides, s, dst.data, dst.offset, dst.strides, d, dst.shape);
  }

  fill(dst: View, value: number): void {
    const d = viewCode(dst, true);
    if (d === null) return this.ref.fill(dst, value);
    this.addon.fill(dst.data, dst.offset, dst.strides, d, dst.shape, value);
  }

  unary(op: UnaryOp, x: View, out: View): void {
    const c = floatCode(x.dtype, x.data, out.data);
    if (c === null || out.dtype !== x.dtype || !sameShapes(out, x)) return this.ref.unary(op, x, out);
    this.addon.unary(UNARY_CODES[op], x.data, x.offset, x.strides, out.data, out.offset, out.strides, out.shape, c);
  }

  unaryBackward(op: UnaryOp, x: View, gy: View, gx: View): void {
    const c = floatCode(x.dtype, x.data, gy.data, gx.data);
    if (c === null || gy.dtype !== x.dtype || gx.dtype !== x.dtype || !sameShapes(gx, x, gy)) return this.ref.unaryBackward(op, x, gy, gx);
    this.addon.unaryBackward(
      UNARY_CODES[op],
      x.data,
      x.offset,
      x.strides,
      gy.data,
      gy.offset,
      gy.strides,
      gx.data,
      gx.offset,
      gx.strides,
      gx.shape,
      c,
    );
  }

  binary(op: BinaryOp, a: View, b: View, out: View): void {
    const c = floatCode(out.dtype, a.data, b.data, out.data);
    if (c === null || a.dtype !== out.dtype || b.dtype !== out.dtype || !sameShapes(out, a, b)) return this.ref.binary(op, a, b, out);
    this.addon.binary(BINARY_CODES[op], a.data, a.offset, a.strides, b.data, b.offset, b.strides, out.data, out.offset, out.strides, out.shape, c);
  }

  where(cond: View, a: View, b: View, out: View): void {
    const cc = viewCode(cond, true);
    const c = floatCode(out.dtype, a.data, b.data, out.data);
    if (cc === null || c === null || a.dtype !== out.dtype || b.dtype !== out.dtype || !sameShapes(out, cond, a, b)) return this.ref.where(cond, a, b, out);
    this.addon.where(
      cond.data,
      cond.offset,
      cond.strides,
      cc,
      a.data,
      a.offset,
      a.strides,
      b.data,
      b.offset,
      b.strides,
      out.data,
      out.offset,
      out.strides,
      out.shape,
      c,
    );
  }

  reduce(op: ReduceOp, x: Storage, xDtype: DType, outer: number, n: number, inner: number, out: Storage): void {
    const c = floatCode(xDtype, x);
    if (c === null || n === 0) return this.ref.reduce(op, x, xDtype, outer, n, inner, out);
    this.addon.reduce(REDUCE_CODES[op], x, c, outer, n, inner, out);
  }

  gemm(a: Storage, b: Storage, c: Storage, dtype: DType, cDtype: DType, args: GemmArgs): void {
    if (floatCode(dtype, a, b) === null || floatCode(cDtype, c) === null) return this.ref.gemm(a, b, c, dtype, cDtype, args);
    if (tryNativeGemv(this.addon, a, b, c, dtype, cDtype, args)) return; // decode-sized X W^T
    if (args.roundToBf16 === true && cDtype === "float32") {
      // The GEMM kernels store float32 or bfloat16: a bfloat16 C, then widened into c.
      if (args.beta !== 0) throw new ShapeError("gemm", `roundToBf16 needs beta = 0, got ${args.beta}`);
      const tmp = new Uint16Array(c.length);
      nativeGemm(this.addon, a, b, tmp, dtype, "bfloat16", args);
      const view = (data: Storage, dt: DType): View => ({ data, dtype: dt, shape: [args.batch, args.m, args.n], strides: [args.strideC, args.ldc, 1], offset: args.offsetC });
      this.copy(view(tmp, "bfloat16"), view(c, "float32"));
      return;
    }
    nativeGemm(this.addon, a, b, c, dtype, cDtype, args);
  }

  softmax(x: Storage, y: Storage, dtype: DType, N: number, C: number, log: boolean): void {
    const c = floatCode(dtype, x, y);
    if (c === null) return this.ref.softmax(x, y, dtype, N, C, log);
    this.addon.softmax(x, y, c, N, C, log);
  }

  softmaxBackward(y: Storage, gy: Storage, gx: Storage, dtype: DType, N: number, C: number, log: boolean): void {
    const c = floatCode(dtype, y, gy, gx);
    if (c === null) return this.ref.softmaxBackward(y, gy, gx, dtype, N, C, log);
    this.addon.softmaxBackward(y, gy, gx, c, N, C, log);
  }

  crossEntropy(
    logits: Storage,
    dtype: DType,
    targets: Int32Array,
    N: number,
    V: number,
    ignoreIndex: number,
    labelSmoothing: number,
    loss: Float32Array,
    lse: Float32Array,
  ): void {
    const c = floatCode(dtype, logits);
    if (c === null || !isF32(loss, lse) || !(targets instanceof Int32Array)) {
      return this.ref.crossEntropy(logits, dtype, targets, N, V, ignoreIndex, labelSmoothing, loss, lse);
    }
    this.addon.crossEntropy(logits, c, targets, N, V, ignoreIndex, labelSmoothing, loss, lse);
  }

  crossEntropyBackward(
    logits: Storage,
    dtype: DType,
    targets: Int32Array,
    lse: Float32Array,
    gLoss: Float32Array,
    N: number,
    V: number,
    ignoreIndex: number,
    labelSmoothing: number,
    gLogits: Storage,
  ): void {
    const c = floatCode(dtype, logits, gLogits);
    if (c === null || !isF32(lse, gLoss) || !(targets instanceof Int32Array)) {
      return this.ref.crossEntropyBackward(logits, dtype, targets, lse, gLoss, N, V, ignoreIndex, labelSmoothing, gLogits);
    }
    this.addon.crossEntropyBackward(logits, c, targets, lse, gLoss, N, V, ignoreIndex, labelSmoothing, gLogits);
  }

  swiglu(gate: Storage, up: Storage, out: Storage, dtype: DType, n: number): void {
    const c = floatCode(dtype, gate, up, out);
    // An add-on built before the fused kernel existed composes it from silu and mul.
    if (c !== null && !this.addon["swiglu"]) return this.swigluComposed(gate, up, out, dtype, n);
    if (c === null) return this.ref.swiglu(gate, up, out, dtype, n);
    this.addon.swiglu(gate, up, out, c, n);
  }

  swigluBackward(gate: Storage, up: Storage, gOut: Storage, gGate: Storage, gUp: Storage, dtype: DType, n: number): void {
    const c = floatCode(dtype, gate, up, gOut, gGate, gUp);
    if (c !== null && !this.addon["swigluBackward"]) {
      const v = (data: Storage): View => ({ data, dtype, shape: [n], strides: [1], offset: 0 });
      this.swigluComposed(gate, null, gUp, dtype, n); // gUp = silu(gate) ...
      this.binary("mul", v(gUp), v(gOut), v(gUp)); // ... * gOut
      this.binary("mul", v(gOut), v(up), v(gGate)); // gGate = gOut * up ...
      this.unaryBackward("silu", v(gate), v(gGate), v(gGate)); // ... * silu'(gate)
      return;
    }
    if (c === null) return this.ref.swigluBackward(gate, up, gOut, gGate, gUp, dtype, n);
    this.addon.swigluBackward(gate, up, gOut, gGate, gUp, c, n);
  }

  /** out = silu(gate) (* up when given) with the unary and binary kernels. */
  private swigluComposed(gate: Storage, up: Storage | null, out: Storage, dtype: DType, n: number): void {
    const v = (data: Storage): View => ({ data, dtype, shape: [n], strides: [1], offset: 0 });
    this.unary("silu", v(gate), v(out));
    if (up) this.binary("mul", v(out), v(up), v(out));
  }

  rmsnorm(x: Storage, w: Storage | null, y: Storage, rstd: Float32Array, dtype: DType, N: number, C: number, eps: number): void {
    const c = floatCode(dtype, x, w, y);
    if (c === null || !isF32(rstd)) return this.ref.rmsnorm(x, w, y, rstd, dtype, N, C, eps);
    this.addon.rmsnorm(x, w, y, rstd, c, N, C, eps);
  }

  rmsnormBackward(
    x: Storage,
    w: Storage | null,
    rstd: Float32Array,
    gy: Storage,
    gx: Storage,
    gw: Storage | null,
    dtype: DType,
    N: number,
    C: number,
  ): void {
    const c = floatCode(dtype, x, w, gy, gx, gw);
    if (c === null || !isF32(rstd)) return this.ref.rmsnormBackward(x, w, rstd, gy, gx, gw, dtype, N, C);
    this.addon.rmsnormBackward(x, w, rstd, gy, gx, gw, c, N, C);
  }

  layernorm(
    x: Storage,
    w: Storage | null,
    b: Storage | null,
    y: Storage,
    mean: Float32Array,
    rstd: Float32Array,
    dtype: DType,
    N: number,
    C: number,
    eps: number,
  ): void {
    const c = floatCode(dtype, x, w, b, y);
    if (c === null || !isF32(mean, rstd)) return this.ref.layernorm(x, w, b, y, mean, rstd, dtype, N, C, eps);
    this.addon.layernorm(x, w, b, y, mean, rstd, c, N, C, eps);
  }

  layernormBackward(
    x: Storage,
    w: Storage | null,
    mean: Float32Array,
    rstd: Float32Array,
    gy: Storage,
    gx: Storage,
    gw: Storage | null,
    gb: Storage | null,
    dtype: DType,
    N: number,
    C: number,
  ): void {
    const c = floatCode(dtype, x, w, gy, gx, gw, gb);
    if (c === null || !isF32(mean, rstd)) return this.ref.layernormBackward(x, w, mean, rstd, gy, gx, gw, gb, dtype, N, C);
    this.addon.layernormBackward(x, w, mean, rstd, gy, gx, gw, gb, c, N, C);
  }

  rope(x: Storage, out: Storage, dtype: DType, positions: Int32Array, args: RopeArgs): void {
    const c = floatCode(dtype, x, out);
    if (c === null || (args.style !== "half" && args.style !== "interleaved")) return this.ref.rope(x, out, dtype, positions, args);
    const { B, T, H, D, rotaryDim, theta, style, inverse } = args;
    this.addon.rope(x, out, c, positions, B, T, H, D, rotaryDim, theta, style === "interleaved", inverse);
  }

  embedding(weight: Storage, ids: Int32Array, out: Storage, dtype: DType, N: number, V: number, C: number): void {
    const c = floatCode(dtype, weight, out);
    if (c === null) return this.ref.embedding(weight, ids, out, dtype, N, V, C);
    this.addon.embedding(weight, ids, out, c, N, V, C);
  }

  embeddingBackward(gOut: Storage, ids: Int32Array, gWeight: Storage, dtype: DType, N: number, V: number, C: number): void {
    const c = floatCode(dtype, gOut, gWeight);
    if (c === null) return this.ref.embeddingBackward(gOut, ids, gWeight, dtype, N, V, C);
    this.addon.embeddingBackward(gOut, ids, gWeight, c, N, V, C);
  }

  attention(q: Storage, k: Storage, v: Storage, out: Storage, lse: Float32Array, dtype: DType, args: AttentionArgs): void {
    const c = floatCode(dtype, q, k, v, out);
    if (c === null || !isF32(lse)) return this.ref.attention(q, k, v, out, lse, dtype, args);
    const { B, Hq, Hkv, T, S, D, scale, causal } = args;
    const kernel = T <= DECODE_ATTENTION_MAX_T && this.addon["decodeAttention"] ? "decodeAttention" : "attention";
    this.addon[kernel]!(q, k, v, out, lse, c, B, Hq, Hkv, T, S, D, scale, causal, args.keyMask ?? null);
  }

  attentionBackward(
    q: Storage,
    k: Storage,
    v: Storage,
    out: Storage,
    lse: Float32Array,
    gOut: Storage,
    gq: Storage,
    gk: Storage,
    gv: Storage,
    dtype: DType,
    args: AttentionArgs,
  ): void {
    const c = floatCode(dtype, q, k, v, out, gOut, gq, gk, gv);
    if (c === null || !isF32(lse)) return this.ref.attentionBackward(q, k, v, out, lse, gOut, gq, gk, gv, dtype, args);
    const { B, Hq, Hkv, T, S, D, scale, causal } = args;
    this.addon.attentionBackward(q, k, v, out, lse, gOut, gq, gk, gv, c, B, Hq, Hkv, T, S, D, scale, causal, args.keyMask ?? null);
  }

  adamw(param: Float32Array, grad: Float32Array, m: Float32Array, v: Float32Array, n: number, args: AdamWArgs): void {
    if (!isF32(param, grad, m, v)) return this.ref.adamw(param, grad, m, v, n, args);
    const { lr, beta1, beta2, eps, weightDecay, step } = args;
    this.addon.adamw(param, grad, m, v, n, lr, beta1, beta2, eps, weightDecay, step);
  }

  qmatmul(x: Storage, xDtype: DType, qs: Uint8Array, scales: Uint16Array, out: Storage, args: QMatmulArgs): void {
    if (!tryNativeQMatmul(this.addon, x, xDtype, qs, scales, out, args)) this.ref.qmatmul(x, xDtype, qs, scales, out, args);
  }

  nf4Matmul(x: Storage, xDtype: DType, packed: Uint8Array, absmax: Float32Array, out: Storage, args: Nf4Args): void {
    if (!tryNativeNf4Matmul(this.addon, x, xDtype, packed, absmax, out, args)) this.ref.nf4Matmul(x, xDtype, packed, absmax, out, args);
  }

  nf4Dequantize(packed: Uint8Array, absmax: Float32Array, blockSize: number, n: number, out: Storage, outDtype: DType): void {
    if (!tryNativeNf4Dequantize(this.addon, packed, absmax, blockSize, n, out, outDtype)) this.ref.nf4Dequantize(packed, absmax, blockSize, n, out, outDtype);
  }

  decoderLayer(h: Storage, dtype: DType, w: DecoderLayerWeights, kCache: Storage, vCache: Storage, args: DecoderLayerArgs): void {
    const fused = this.fusedLayerArgs(dtype, w);
    // An add-on without the fused layer, or dtypes it does not take: the same ops one by one.
    if (fused === null || floatCode(dtype, h, kCache, vCache) === null) return composeDecoderLayer(this, h, dtype, w, kCache, vCache, args);
    const { B, T, C, F, Hq, Hkv, D, past, capacity, eps, theta, positions, keyMask } = args;
    this.addon["decoderLayer"](h, fused.code, [B, T, C, F, Hq, Hkv, D, past, capacity], eps, theta, positions, keyMask, kCache, vCache, ...fused.weights);
  }

  decoderStack(h: Storage, dtype: DType, layers: readonly DecoderStackLayer[], args: Omit<DecoderLayerArgs, "past" | "capacity" | "keyMask">): void {
    const stack = this.addon["decoderStack"];
    const fused = layers.map((l) => (floatCode(dtype, l.kCache, l.vCache) === null ? null : this.fusedLayerArgs(dtype, l.w)));
    // An add-on without the fused stack, or a layer it does not take: layer by layer.
    if (!stack || floatCode(dtype, h) === null || fused.some((f) => f === null)) return composeDecoderStack(this, h, dtype, layers, args);
    const { B, T, C, F, Hq, Hkv, D, eps, theta, positions } = args;
    const list = layers.map((l, i) => [l.past, l.capacity, l.keyMask, l.kCache, l.vCache, ...fused[i]!.weights]);
    stack(h, fused[0]?.code ?? 0, [B, T, C, F, Hq, Hkv, D], eps, theta, positions, list);
  }

  /**
   * decoderLayer's weight arguments (norms, then kind, weight | qs, scales, bias per projection) and
   * dtype code, or null when the add-on or a dtype does not fit. Derived once per weights object: a
   * caller passes the same DecoderLayerWeights, unchanged, step after step.
   */
  private fusedLayerArgs(dtype: DType, w: DecoderLayerWeights): { code: number; weights: unknown[] } | null {
    const memo = this.fusedArgs.get(w);
    if (memo !== undefined && memo.dtype === dtype) return memo.args;
    const c = floatCode(dtype, w.inputNorm, w.postNorm);
    const projs = [w.q, w.k, w.v, w.o, w.gate, w.up, w.down];
    const fits = (p: DecodeProjection) => floatCode(dtype, p.bias) !== null && (p.kind === "quant" || floatCode(dtype, p.weight) !== null);
    let args: { code: number; weights: unknown[] } | null = null;
    if (c !== null && this.addon["decoderLayer"] && projs.every(fits)) {
      const flat = projs.flatMap((p) => (p.kind === "float" ? [c, p.weight, null, p.bias] : [p.type === "q8_0" ? 2 : 3, p.qs, p.scales, p.bias]));
      args = { code: c, weights: [w.inputNorm, w.postNorm, ...flat] };
    }
    this.fusedArgs.set(w, { dtype, args });
    return args;
  }

  private readonly fusedArgs = new WeakMap<DecoderLayerWeights, { dtype: DType; args: { code: number; weights: unknown[] } | null }>();
}
