/**
 * NF4 on the backend kernels: the weight of src/quant/nf4.ts (bitsandbytes layout) dequantized
 * natively (for a QLoRA base's forward, whose matmul then keeps autograd for x) or multiplied
 * directly without materialising it (inference: decode reads 4.5 bits per weight).
 */
import { getBackend } from "../backend/registry.ts";
import type { DType } from "../core/dtype.ts";
import { fmtShape } from "../core/errors.ts";
import { Tensor, contiguous, isGradEnabled } from "../tensor/index.ts";
import { type NF4Tensor, QuantError, dequantizeBlockwise8 } from "./nf4.ts";

const absmaxCache = new WeakMap<NF4Tensor, Float32Array>();

/** The per-block float32 absmax of an NF4 tensor (double quantization undone), cached per tensor. */
export function nf4Absmax(w: NF4Tensor): Float32Array {
  let a = absmaxCache.get(w);
  if (!a) {
    a = dequantizeBlockwise8(w.absmax);
    for (let i = 0; i < a.length; i++) a[i] = a[i]! + w.offset;
    absmaxCache.set(w, a);
  }
  return a;
}

/** The values of an NF4 tensor as a float32 or bfloat16 Tensor of its shape (no gradient). */
export function dequantizeNF4Tensor(w: NF4Tensor, dtype: DType = "float32"): Tensor {
  const out = Tensor.empty(w.shape, dtype);
  getBackend().nf4Dequantize(w.packed, nf4Absmax(w), w.blockSize, out.numel, out.storage, dtype);
  return out;
}

/** x [..., K] @ W^T for an NF4 weight [N, K] → [..., N] in x's dtype. Inference-only, as qmatmul. */
export function nf4Matmul(x: Tensor, w: NF4Tensor, what = "nf4Matmul"): Tensor {
  if (w.shape.length !== 2) throw new QuantError(`${what}: expected a 2-D NF4 weight [out, in], got ${fmtShape(w.shape)}`);
  const [n, k] = w.shape as [number, number];
  if (isGradEnabled() && x.requiresGrad) {
    throw new QuantError(`${what}: the NF4 matmul is inference-only; for gradients multiply by dequantizeNF4Tensor(w) instead`);
  }
  if (x.ndim === 0 || x.shape[x.ndim - 1] !== k) throw new QuantError(`${what}: input ${fmtShape(x.shape)} does not end in in_features=${k}`);
  if (x.dtype !== "float32" && x.dtype !== "bfloat16" && x.dtype !== "float64") throw new QuantError(`${what}: expected a floating point input, got ${x.dtype}`);
  const xc = contiguous(x.dtype === "float64" ? x.to("float32") : x);
  const m = xc.numel / k;
  const out = Tensor.empty([...x.shape.slice(0, -1), n], xc.dtype);
  if (m > 0 && n > 0) getBackend().nf4Matmul(xc.data(), xc.dtype, w.packed, nf4Absmax(w), out.storage, { m, n, k, blockSize: w.blockSize });
  return out;
}
