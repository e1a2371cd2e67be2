/** y = x W^T for a quantized W: the inference-only op QuantizedLinear runs (no autograd). */
import { getBackend } from "../backend/registry.ts";
import { fmtShape } from "../core/errors.ts";
import { Tensor, contiguous, isGradEnabled } from "../tensor/index.ts";
import { QuantError } from "./QuantError.ts";
import type { QuantizedWeight } from "./QuantizedWeight.ts";

/**
 * x [..., K] (float32 or bfloat16; float64 is computed in float32) times W^T [K, N] → [..., N] in x's
 * dtype. Quantized weights carry no gradient rule, so an x that requires grad (with grad recording
 * on) is refused rather than silently cut from the graph.
 */
export function qmatmul(x: Tensor, w: QuantizedWeight, what = "qmatmul"): Tensor {
  if (isGradEnabled() && x.requiresGrad) {
    throw new QuantError(`${what}: quantized ${w.type} weights are inference-only; the input requires grad (run under noGrad, or train an adapter over an nf4 base)`);
  }
  if (x.ndim === 0 || x.shape[x.ndim - 1] !== w.k) {
    throw new QuantError(`${what}: input ${fmtShape(x.shape)} does not end in in_features=${w.k}`);
  }
  if (x.dtype !== "float32" && x.dtype !== "bfloat16" && x.dtype !== "float64") {
    throw new QuantError(`${what}: expected a floating point input, got ${x.dtype}`);
  }
  const xc = contiguous(x.dtype === "float64" ? x.to("float32") : x);
  const m = xc.numel / w.k;
  const out = Tensor.empty([...x.shape.slice(0, -1), w.n], xc.dtype);
  if (m > 0 && w.n > 0) getBackend().qmatmul(xc.data(), xc.dtype, w.qs, w.scales, out.storage, { m, n: w.n, k: w.k, type: w.type });
  return out;
}
