/**
 * The Backend interface: every kernel graft runs, over raw storage. Backends never see Tensor or
 * autograd. All outputs are preallocated by the caller; kernels write (or, where a doc says so,
 * accumulate `+=`) into them. Unless a parameter is a `View`, buffers are dense row-major and start
 * at element 0 of the given typed array (callers pass `subarray`s for offsets).
 *
 * dtypes: `reference` implements every op for float64, float32 and bfloat16 (bf16 math is done in
 * float32, results rounded to bf16) and int32/int64 where an op makes sense for integers. `native`
 * implements float32 and bfloat16 for its kernels and delegates anything else to `reference`.
 * Dimension names follow llm.c: B batch, T query positions, S key positions, H heads, D head dim,
 * C channels, V vocabulary, N rows.
 */
import type { DType, Storage } from "../core/dtype.ts";

/** A strided view of a storage: element (i0, i1, ...) lives at offset + sum(ik * strides[k]). */
export interface View {
  data: Storage;
  dtype: DType;
  shape: readonly number[];
  strides: readonly number[];
  offset: number;
}

export type UnaryOp =
  | "neg"
  | "exp"
  | "log"
  | "sqrt"
  | "rsqrt"
  | "tanh"
  | "sigmoid"
  | "silu"
  | "gelu" // tanh approximation (GPT-2 / "gelu_pytorch_tanh" / "gelu_new")
  | "gelu_erf" // exact erf GELU (BERT "gelu")
  | "relu"
  | "abs"
  | "sin"
  | "cos"
  | "square"
  | "reciprocal";

export type BinaryOp =
  | "add"
  | "sub"
  | "mul"
  | "div"
  | "pow"
  | "maximum"
  | "minimum"
  // comparisons write 1 or 0 in the output dtype
  | "eq"
  | "ne"
  | "lt"
  | "le"
  | "gt"
  | "ge";

export type ReduceOp = "sum" | "mean" | "max" | "min" | "argmax" | "argmin";

export interface GemmArgs {
  /** Number of matrices; batch strides of 0 broadcast an operand. */
  batch: number;
  m: number;
  n: number;
  k: number;
  /** false: A is stored [m, k] (row stride lda); true: A is stored [k, m] and used transposed. */
  transA: boolean;
  /** false: B is stored [k, n] (row stride ldb); true: B is stored [n, k] and used transposed. */
  transB: boolean;
  /** Leading (row) strides in elements of the stored matrices, and C's. */
  lda: number;
  ldb: number;
  ldc: number;
  /** Element offsets of matrix 0 and the distance between consecutive matrices. */
  offsetA: number;
  offsetB: number;
  offsetC: number;
  strideA: number;
  strideB: number;
  strideC: number;
  /** C = alpha * op(A) @ op(B) + beta * C. beta = 0 must ignore C's prior contents (even NaN). */
  alpha: number;
  beta: number;
  /**
   * A float32 C gets each value rounded to bfloat16 first: what a bfloat16 C widened afterwards
   * would hold (a bfloat16 model's logits, upcast), in one pass. Needs beta = 0.
   */
  roundToBf16?: boolean;
}

export interface AttentionArgs {
  B: number;
  Hq: number;
  /** Key/value heads; Hq % Hkv == 0, query head h uses kv head floor(h / (Hq / Hkv)) (GQA). */
  Hkv: number;
  T: number;
  S: number;
  D: number;
  scale: number;
  /** Causal: query t attends to keys s <= t + (S - T) (the last T of S positions are the queries). */
  causal: boolean;
  /** Optional key mask [B, S], 1 = attend, 0 = masked (padding). A fully masked row outputs 0. */
  keyMask?: Uint8Array | null;
}

export interface RopeArgs {
  /** x is [B, T, H, D] contiguous; positions is Int32Array [B * T] (position of each (b, t)). */
  B: number;
  T: number;
  H: number;
  D: number;
  /** Rotary dims (<= D, even); the first `rotaryDim` of each head rotate, the rest pass through. */
  rotaryDim: number;
  theta: number;
  /**
   * "half" (HF Llama/Qwen2 rotate_half: pairs (i, i + rotaryDim/2)) or "interleaved" (pairs (2i, 2i+1)).
   * Frequency of pair i: theta^(-2i / rotaryDim).
   */
  style: "half" | "interleaved";
  /** true applies the inverse rotation (the backward pass). */
  inverse: boolean;
}

export interface AdamWArgs {
  lr: number;
  beta1: number;
  beta2: number;
  eps: number;
  weightDecay: number;
  /** 1-based step used for bias correction. */
  step: number;
}

/**
 * Quantized weight formats of `qmatmul`: ggml's Q8_0 and Q4_0 blocks of 32 along K, held as two
 * arrays. q8_0: qs int8 [N, K] (as bytes), w = q * d. q4_0: qs [N, K/2], block b of row n is the 16
 * bytes at n*K/2 + b*16, byte j holding element j (low nibble) and j+16 (high nibble), w = (q - 8) * d.
 * scales: the blocks' float16 d, [N, K/32].
 */
export type QuantType = "q8_0" | "q4_0";

export interface QMatmulArgs {
  m: number;
  n: number;
  /** A multiple of 32. */
  k: number;
  type: QuantType;
}

/**
 * NF4 weights (bitsandbytes layout, src/quant/nf4.ts) as the kernels take them: element i of the
 * flattened weight has code packed[i >> 1] >> 4 (i even) or & 0xf (i odd) and the value
 * NF4_CODEBOOK[code] * absmax[floor(i / blockSize)]; absmax is the per-block float32 scale with any
 * double quantization already undone.
 */
export interface Nf4Args {
  m: number;
  n: number;
  k: number;
  blockSize: number;
}

/**
 * One projection of a fused decoder layer: y [M, n] = x [M, k] @ W^T (+ bias [n]), W [n, k] dense in
 * the activations' dtype, or quantized (see QuantType). bias is in the activations' dtype.
 */
export type DecodeProjection =
  | { kind: "float"; weight: Storage; bias: Storage | null }
  | { kind: "quant"; type: QuantType; qs: Uint8Array; scales: Uint16Array; bias: Storage | null };

/** The weights of a pre-norm Llama / Qwen2 decoder layer (norm weights in the activations' dtype). */
export interface DecoderLayerWeights {
  inputNorm: Storage;
  postNorm: Storage;
  q: DecodeProjection;
  k: DecodeProjection;
  v: DecodeProjection;
  o: DecodeProjection;
  gate: DecodeProjection;
  up: DecodeProjection;
  down: DecodeProjection;
}

export interface DecoderLayerArgs {
  B: number;
  /** New positions per sequence (a decode step: 1). */
  T: number;
  /** Hidden size and MLP intermediate size. */
  C: number;
  F: number;
  Hq: number;
  Hkv: number;
  D: number;
  /** Positions already in the caches; this call writes positions past .. past + T - 1. */
  past: number;
  /** The caches' third dim: kCache, vCache are [B, Hkv, capacity, D]. */
  capacity: number;
  /** RMSNorm epsilon and the RoPE base (default "half" rotary embedding over all D, frequencies theta^(-2i/D)). */
  eps: number;
  theta: number;
  /** Int32Array [B * T], the position of each new (b, t). */
  positions: Int32Array;
  /** [B, past + T], 1 = attend, 0 = padding; null attends everywhere (causally). */
  keyMask: Uint8Array | null;
}

/** One layer of Backend.decoderStack: its weights, caches and how far they are filled. */
export interface DecoderStackLayer {
  w: DecoderLayerWeights;
  kCache: Storage;
  vCache: Storage;
  past: number;
  capacity: number;
  /** [B, past + T] or null, as DecoderLayerArgs.keyMask. */
  keyMask: Uint8Array | null;
}

export interface Backend {
  readonly name: string;

  /** dst[...] = cast(src[...]); same shape, both arbitrary strides, any dtypes (bf16 rounds to nearest even). */
  copy(src: View, dst: View): void;
  /** Fills a view with a value. */
  fill(dst: View, value: number): void;

  /** out = op(x); x any strides, out a View of the same shape (usually contiguous). float dtypes. */
  unary(op: UnaryOp, x: View, out: View): void;
  /** gx = gy * op'(x), all same shape; x, gy any strides, gx contiguous. Not for comparisons. */
  unaryBackward(op: UnaryOp, x: View, gy: View, gx: View): void;
  /** out = a op b; a, b, out have out's shape (broadcast dims carry stride 0). */
  binary(op: BinaryOp, a: View, b: View, out: View): void;
  /** out = where(cond != 0, a, b); cond, a, b broadcast to out's shape as for binary. */
  where(cond: View, a: View, b: View, out: View): void;

  /**
   * Reduces the middle axis of a dense x seen as [outer, n, inner] into out [outer, inner].
   * argmax/argmin write Int32Array indices (first occurrence on ties); other ops write x's dtype.
   */
  reduce(op: ReduceOp, x: Storage, xDtype: DType, outer: number, n: number, inner: number, out: Storage): void;

  /** Batched GEMM, float32 or bfloat16 operands (a and b the same dtype), c float32 or bfloat16. */
  gemm(a: Storage, b: Storage, c: Storage, dtype: DType, cDtype: DType, args: GemmArgs): void;

  /** Row-wise softmax (or log-softmax) of x [N, C] into y [N, C]. */
  softmax(x: Storage, y: Storage, dtype: DType, N: number, C: number, log: boolean): void;
  /**
   * Backward of softmax/log-softmax from its output y: softmax gx = y * (gy - sum(gy * y));
   * log-softmax gx = gy - exp(y) * sum(gy). gx is overwritten.
   */
  softmaxBackward(y: Storage, gy: Storage, gx: Storage, dtype: DType, N: number, C: number, log: boolean): void;

  /**
   * Cross-entropy forward for logits [N, V] and Int32 targets [N]: loss[i] = lse_i - x[i, t_i]
   * (with label smoothing eps: (1 - eps) * that + eps * (lse_i - mean_j x[i, j])); rows whose target
   * equals ignoreIndex get loss 0. lse [N] (float32) is saved for the backward. loss is float32.
   */
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
  ): void;
  /**
   * gLogits[i, :] = gLoss[i] * (softmax(x_i) - (1 - eps) * onehot(t_i) - eps / V); ignored rows get 0.
   * gLogits (logits' dtype) is overwritten.
   */
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
  ): void;

  /** SwiGLU (Llama/Qwen2 MLP): out = silu(gate) * up over n dense elements. */
  swiglu(gate: Storage, up: Storage, out: Storage, dtype: DType, n: number): void;
  /** Backward of swiglu: gGate = gOut * up * silu'(gate), gUp = gOut * silu(gate); both overwritten. */
  swigluBackward(gate: Storage, up: Storage, gOut: Storage, gGate: Storage, gUp: Storage, dtype: DType, n: number): void;

  /** RMSNorm over the last dim: y = x * rstd * w (w may be null); rstd [N] float32 saved. */
  rmsnorm(x: Storage, w: Storage | null, y: Storage, rstd: Float32Array, dtype: DType, N: number, C: number, eps: number): void;
  /** gx is overwritten; gw (if given) is accumulated (+=). */
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
  ): void;
  /** LayerNorm over the last dim: y = (x - mean) * rstd * w + b (w, b may be null). */
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
  ): void;
  /** gx overwritten; gw, gb accumulated (+=). */
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
  ): void;

  /** Rotary embedding of x [B, T, H, D] into out (same layout; out may alias x). */
  rope(x: Storage, out: Storage, dtype: DType, positions: Int32Array, args: RopeArgs): void;

  /** out[i, :] = weight[ids[i], :] for weight [V, C], ids [N]; throws naming the bad id if out of range. */
  embedding(weight: Storage, ids: Int32Array, out: Storage, dtype: DType, N: number, V: number, C: number): void;
  /** gWeight[ids[i], :] += gOut[i, :] (scatter-add). */
  embeddingBackward(gOut: Storage, ids: Int32Array, gWeight: Storage, dtype: DType, N: number, V: number, C: number): void;

  /**
   * Scaled dot-product attention. q [B, Hq, T, D], k and v [B, Hkv, S, D], out [B, Hq, T, D]; lse
   * [B, Hq, T] float32 (log-sum-exp of the scaled, masked scores) saved for the backward.
   * Memory beyond the outputs must not be O(T * S) per head (flash-style online softmax).
   */
  attention(q: Storage, k: Storage, v: Storage, out: Storage, lse: Float32Array, dtype: DType, args: AttentionArgs): void;
  /** gq, gk, gv are overwritten. gk/gv sum over the query heads sharing a kv head. */
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
  ): void;

  /** One AdamW step in place on float32 param/m/v with float32 grad (decoupled weight decay). */
  adamw(param: Float32Array, grad: Float32Array, m: Float32Array, v: Float32Array, n: number, args: AdamWArgs): void;

  /**
   * out [M, N] = x [M, K] @ W^T for a quantized W [N, K] (see QuantType); x and out dense, in xDtype.
   * As llama.cpp's Q8_0 x Q8_0 dot: each row of x is quantized per block of 32 to int8 (d = amax / 127
   * in float32, q = round-half-even(x * (1 / d))), each block's integer dot is exact and scaled by
   * dx * dw, and the blocks are summed in float32.
   */
  qmatmul(x: Storage, xDtype: DType, qs: Uint8Array, scales: Uint16Array, out: Storage, args: QMatmulArgs): void;

  /** out [M, N] = x [M, K] @ W^T for an NF4 W [N, K] (see Nf4Args); x, out dense in xDtype, float32 sums. */
  nf4Matmul(x: Storage, xDtype: DType, packed: Uint8Array, absmax: Float32Array, out: Storage, args: Nf4Args): void;
  /** The n values of an NF4 tensor (see Nf4Args) into out (float32 or bfloat16, rounded once). */
  nf4Dequantize(packed: Uint8Array, absmax: Float32Array, blockSize: number, n: number, out: Storage, outDtype: DType): void;

  /**
   * A whole pre-norm decoder layer (Llama / Qwen2) for the T new positions of a decode step, no
   * autograd; h [B * T, C] (dtype) is updated in place:
   *   x = rmsnorm(h) · q, k, v = x W^T + b · RoPE(q, k) · k, v → caches at past .. past + T - 1 ·
   *   a = causal GQA attention of q over the caches' past + T positions (keyMask) · h += a Wo^T (+ b) ·
   *   x = rmsnorm(h) · h += swiglu(x Wg^T, x Wu^T) Wd^T (+ biases).
   * Each step rounds to dtype as the separate ops do, so it equals running those ops one by one.
   */
  decoderLayer(h: Storage, dtype: DType, w: DecoderLayerWeights, kCache: Storage, vCache: Storage, args: DecoderLayerArgs): void;
  /**
   * decoderLayer for consecutive layers over the same h in one call (a decode step's whole stack):
   * the same numbers as calling it layer by layer. A bad layer's arguments throw before any layer runs.
   */
  decoderStack(h: Storage, dtype: DType, layers: readonly DecoderStackLayer[], args: Omit<DecoderLayerArgs, "past" | "capacity" | "keyMask">): void;
}
