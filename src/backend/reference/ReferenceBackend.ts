/**
 * The pure-TypeScript backend: every Backend op for float64, float32 and bfloat16 (int32/int64
 * for copy, fill, binary, where and reduce). It is the oracle native kernels are tested against:
 * clarity and float64 accumulation over speed. Saved statistics (loss, lse, rstd, mean) may be
 * Float64Array as well as Float32Array, so float64 gradchecks keep full precision.
 * Each op family lives in its own file; this class only routes.
 */
import type { DType, Storage } from "../../core/dtype.ts";
import type {
  AdamWArgs,
  AttentionArgs,
  Backend,
  BinaryOp,
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
import { adamw } from "./adamw.ts";
import { attention, attentionBackward } from "./attention.ts";
import { copy, fill, unary, unaryBackward, binary, where } from "./elementwise.ts";
import { embedding, embeddingBackward } from "./embedding.ts";
import { gemm } from "./gemm.ts";
import { layernorm, layernormBackward, rmsnorm, rmsnormBackward } from "./norm.ts";
import { nf4Dequantize, nf4Matmul } from "./nf4.ts";
import { qmatmul } from "./qmatmul.ts";
import { reduce } from "./reduce.ts";
import { rope } from "./rope.ts";
import { crossEntropy, crossEntropyBackward, softmax, softmaxBackward } from "./softmax.ts";
import type { StatArray } from "./storage.ts";
import { swiglu, swigluBackward } from "./swiglu.ts";

export class ReferenceBackend implements Backend {
  readonly name = "reference";

  copy(src: View, dst: View): void {
    copy(src, dst);
  }

  fill(dst: View, value: number): void {
    fill(dst, value);
  }

  unary(op: UnaryOp, x: View, out: View): void {
    unary(op, x, out);
  }

  unaryBackward(op: UnaryOp, x: View, gy: View, gx: View): void {
    unaryBackward(op, x, gy, gx);
  }

  binary(op: BinaryOp, a: View, b: View, out: View): void {
    binary(op, a, b, out);
  }

  where(cond: View, a: View, b: View, out: View): void {
    where(cond, a, b, out);
  }

  reduce(op: ReduceOp, x: Storage, xDtype: DType, outer: number, n: number, inner: number, out: Storage): void {
    reduce(op, x, xDtype, outer, n, inner, out);
  }

  gemm(a: Storage, b: Storage, c: Storage, dtype: DType, cDtype: DType, args: GemmArgs): void {
    gemm(a, b, c, dtype, cDtype, args);
  }

  softmax(x: Storage, y: Storage, dtype: DType, N: number, C: number, log: boolean): void {
    softmax(x, y, dtype, N, C, log);
  }

  softmaxBackward(y: Storage, gy: Storage, gx: Storage, dtype: DType, N: number, C: number, log: boolean): void {
    softmaxBackward(y, gy, gx, dtype, N, C, log);
  }

  crossEntropy(
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
    crossEntropy(logits, dtype, targets, N, V, ignoreIndex, labelSmoothing, loss, lse);
  }

  crossEntropyBackward(
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
    crossEntropyBackward(logits, dtype, targets, lse, gLoss, N, V, ignoreIndex, labelSmoothing, gLogits);
  }

  swiglu(gate: Storage, up: Storage, out: Storage, dtype: DType, n: number): void {
    swiglu(gate, up, out, dtype, n);
  }

  swigluBackward(gate: Storage, up: Storage, gOut: Storage, gGate: Storage, gUp: Storage, dtype: DType, n: number): void {
    swigluBackward(gate, up, gOut, gGate, gUp, dtype, n);
  }

  rmsnorm(x: Storage, w: Storage | null, y: Storage, rstd: StatArray, dtype: DType, N: number, C: number, eps: number): void {
    rmsnorm(x, w, y, rstd, dtype, N, C, eps);
  }

  rmsnormBackward(
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
    rmsnormBackward(x, w, rstd, gy, gx, gw, dtype, N, C);
  }

  layernorm(
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
    layernorm(x, w, b, y, mean, rstd, dtype, N, C, eps);
  }

  layernormBackward(
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
    layernormBackward(x, w, mean, rstd, gy, gx, gw, gb, dtype, N, C);
  }

  rope(x: Storage, out: Storage, dtype: DType, positions: Int32Array, args: RopeArgs): void {
    rope(x, out, dtype, positions, args);
  }

  embedding(weight: Storage, ids: Int32Array, out: Storage, dtype: DType, N: number, V: number, C: number): void {
    embedding(weight, ids, out, dtype, N, V, C);
  }

  embeddingBackward(gOut: Storage, ids: Int32Array, gWeight: Storage, dtype: DType, N: number, V: number, C: number): void {
    embeddingBackward(gOut, ids, gWeight, dtype, N, V, C);
  }

  attention(q: Storage, k: Storage, v: Storage, out: Storage, lse: StatArray, dtype: DType, args: AttentionArgs): void {
    attention(q, k, v, out, lse, dtype, args);
  }

  attentionBackward(
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
    attentionBackward(q, k, v, out, lse, gOut, gq, gk, gv, dtype, args);
  }

  adamw(param: Float32Array | Float64Array, grad: Float32Array | Float64Array, m: Float32Array | Float64Array, v: Float32Array | Float64Array, n: number, args: AdamWArgs): void {
    adamw(param, grad, m, v, n, args);
  }

  qmatmul(x: Storage, xDtype: DType, qs: Uint8Array, scales: Uint16Array, out: Storage, args: QMatmulArgs): void {
    qmatmul(x, xDtype, qs, scales, out, args);
  }

  nf4Matmul(x: Storage, xDtype: DType, packed: Uint8Array, absmax: Float32Array, out: Storage, args: Nf4Args): void {
    nf4Matmul(x, xDtype, packed, absmax, out, args);
  }

  nf4Dequantize(packed: Uint8Array, absmax: Float32Array, blockSize: number, n: number, out: Storage, outDtype: DType): void {
    nf4Dequantize(packed, absmax, blockSize, n, out, outDtype);
  }

  decoderLayer(h: Storage, dtype: DType, w: DecoderLayerWeights, kCache: Storage, vCache: Storage, args: DecoderLayerArgs): void {
    composeDecoderLayer(this, h, dtype, w, kCache, vCache, args);
  }

  decoderStack(h: Storage, dtype: DType, layers: readonly DecoderStackLayer[], args: Omit<DecoderLayerArgs, "past" | "capacity" | "keyMask">): void {
    composeDecoderStack(this, h, dtype, layers, args);
  }
}
