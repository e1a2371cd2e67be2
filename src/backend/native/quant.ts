/**
 * The native decode-path kernels (native/quant_*.cpp): Backend.qmatmul, and the GEMV fast path that
 * Backend.gemm takes for X W^T with few rows of X (decode steps), where the blocked GEMM's packing
 * costs more than the weights' single streaming pass. An add-on built without them falls back.
 */
import type { DType, Storage } from "../../core/dtype.ts";
import type { GemmArgs, Nf4Args, QMatmulArgs } from "../Backend.ts";
import type { Addon } from "./addon.ts";

/** Rows of X up to which GEMV beats GEMM (each weight row is read once for all of them). */
export const GEMV_MAX_ROWS = 4;

function code(dtype: DType, s: Storage): number | null {
  if (dtype === "float32" && s instanceof Float32Array) return 0;
  if (dtype === "bfloat16" && s instanceof Uint16Array) return 1;
  return null;
}

/**
 * Runs C = alpha * A B^T (B stored [n, k]) as a GEMV when it has at most GEMV_MAX_ROWS rows (after
 * folding a batch whose B is shared and whose A and C rows are evenly spaced). Returns false, having
 * done nothing, for any other problem.
 */
export function tryNativeGemv(addon: Addon, a: Storage, b: Storage, c: Storage, dtype: DType, cDtype: DType, args: GemmArgs): boolean {
  if (typeof addon["gemv"] !== "function" || args.transA || !args.transB || args.beta !== 0) return false;
  let { m, batch } = args;
  if (batch > 1 && args.strideB === 0 && args.strideA === m * args.lda && args.strideC === m * args.ldc) {
    m *= batch;
    batch = 1;
  }
  if (batch !== 1 || m > GEMV_MAX_ROWS || m === 0) return false;
  const dc = code(dtype, a);
  const cc = code(cDtype, c);
  if (dc === null || cc === null || code(dtype, b) !== dc) return false;
  // y code 2: float32 rounded to bfloat16 (GemmArgs.roundToBf16)
  const yc = args.roundToBf16 === true && cc === 0 ? 2 : cc;
  addon["gemv"](a, b, c, dc, yc, m, args.n, args.k, args.lda, args.ldb, args.ldc, args.offsetA, args.offsetB, args.offsetC, args.alpha);
  return true;
}

/** Backend.qmatmul on the add-on; false when the add-on lacks it or the dtype is not float32/bfloat16. */
export function tryNativeQMatmul(addon: Addon, x: Storage, xDtype: DType, qs: Uint8Array, scales: Uint16Array, out: Storage, args: QMatmulArgs): boolean {
  const c = code(xDtype, x);
  if (typeof addon["qmatmul"] !== "function" || c === null || code(xDtype, out) !== c) return false;
  addon["qmatmul"](x, c, qs, scales, out, c, args.m, args.n, args.k, args.type === "q8_0" ? 0 : 1);
  return true;
}

/** Backend.nf4Matmul on the add-on; false when the add-on lacks it or the dtype is not float32/bfloat16. */
export function tryNativeNf4Matmul(addon: Addon, x: Storage, xDtype: DType, packed: Uint8Array, absmax: Float32Array, out: Storage, args: Nf4Args): boolean {
  const c = code(xDtype, x);
  if (typeof addon["nf4Matmul"] !== "function" || c === null || code(xDtype, out) !== c) return false;
  addon["nf4Matmul"](x, c, packed, absmax, out, args.m, args.n, args.k, args.blockSize);
  return true;
}

/** Backend.nf4Dequantize on the add-on; false when the add-on lacks it or out is not float32/bfloat16. */
export function tryNativeNf4Dequantize(addon: Addon, packed: Uint8Array, absmax: Float32Array, blockSize: number, n: number, out: Storage, outDtype: DType): boolean {
  const c = code(outDtype, out);
  if (typeof addon["nf4Dequantize"] !== "function" || c === null) return false;
  addon["nf4Dequantize"](packed, absmax, blockSize, n, out, c);
  return true;
}
