/**
 * NF4Linear: a frozen Linear whose weight is stored in NF4 with double-quantized absmax (nf4.ts,
 * bitsandbytes layout), as `Linear4bit` of bitsandbytes. Each forward goes through the backend's
 * NF4 kernels: when x needs a gradient (QLoRA training) the weight is dequantized on the fly
 * (Backend nf4Dequantize, into one reused scratch buffer) for a frozenLinear, which dequantizes
 * again in the backward instead of keeping the full-precision weight in the graph; otherwise the NF4 matmul reads the 4-bit codes
 * directly (Backend nf4Matmul). The bias stays in full precision.
 */
import { getBackend } from "../backend/registry.ts";
import { type DType, type Storage, allocStorage } from "../core/dtype.ts";
import { fmtShape } from "../core/errors.ts";
import { Linear, type Module, UnaryModule } from "../nn/index.ts";
import * as T from "../tensor/index.ts";
import { Tensor, isGradEnabled, noGrad } from "../tensor/index.ts";
import { type NF4Tensor, QuantError, nf4Bytes, quantizeNF4 } from "./nf4.ts";
import { dequantizeNF4Tensor, nf4Absmax, nf4Matmul } from "./nf4Matmul.ts";

export interface NF4LinearOptions {
  /** NF4 block size (default 64, bitsandbytes' `bnb_4bit_blocksize`). */
  blockSize?: number;
  /** The dtype the layer computes in (default: the weight's). */
  computeDtype?: DType;
}

/**
 * Whether 4-bit quantization of a model turns the module at `path` into an NF4Linear: every Linear
 * but the output layer (lm_head), which transformers keeps in full precision with load_in_4bit.
 */
export function isNF4Target(path: string, m: Module): m is Linear {
  return path !== "" && m instanceof Linear && path !== "lm_head" && !path.endsWith(".lm_head");
}

/** The dtype the kernels run in for a layer of compute dtype `dtype`: bfloat16, else float32. */
function kernelDtype(dtype: DType): DType {
  return dtype === "bfloat16" ? "bfloat16" : "float32";
}

/** A float weight [out, in] as NF4; `what` names it in errors. */
function quantizeWeightNF4(weight: Tensor, blockSize: number | undefined, what: string): NF4Tensor {
  if (weight.ndim !== 2) throw new QuantError(`NF4Linear ${what}: expected a 2-D weight [out, in], got ${fmtShape(weight.shape)}`);
  if (weight.dtype !== "float32" && weight.dtype !== "bfloat16" && weight.dtype !== "float64") {
    throw new QuantError(`NF4Linear ${what}: expected a floating point weight, got ${weight.dtype}`);
  }
  const data = noGrad(() => (weight.dtype === "float32" ? weight.contiguous() : weight.to("float32")).data()) as Float32Array;
  return quantizeNF4(data, [...weight.shape], blockSize);
}

/** Per compute dtype, the buffer a training forward/backward dequantizes each weight into. */
const scratch = new Map<DType, Storage>();

/**
 * The weight dequantized into the shared scratch buffer of its dtype (grown to the largest layer):
 * valid until the next call, which is all frozenLinear needs (its matmul reads it at once), and
 * no full-precision copy of any layer is left behind for the garbage collector.
 */
function dequantizeToScratch(q: NF4Tensor, dtype: DType): Tensor {
  const n = q.shape[0]! * q.shape[1]!;
  let buf = scratch.get(dtype);
  if (!buf || buf.length < n) {
    buf = allocStorage(dtype, n);
    scratch.set(dtype, buf);
  }
  const view = buf.subarray(0, n) as Storage;
  getBackend().nf4Dequantize(q.packed, nf4Absmax(q), q.blockSize, n, view, dtype);
  return new Tensor(view, dtype, q.shape);
}

export class NF4Linear extends UnaryModule {
  readonly isLinearLike = true;
  readonly inFeatures: number;
  readonly outFeatures: number;
  readonly bias: Tensor | null;
  readonly qweight: NF4Tensor;
  /** The dtype the layer computes in (the original weight's). */
  readonly computeDtype: DType;

  /** Quantizes a Linear's weight (its bias stays in its float dtype). */
  constructor(linear: Linear, blockSize?: number);
  /** Wraps an NF4 weight [out, in] that is already quantized. */
  constructor(qweight: NF4Tensor, bias: Tensor | null, computeDtype: DType);
  constructor(src: Linear | NF4Tensor, b?: number | Tensor | null, computeDtype?: DType) {
    super();
    const fromLinear = !("packed" in src);
    this.qweight = fromLinear ? quantizeWeightNF4(src.weight, b as number | undefined, "weight") : src;
    if (this.qweight.shape.length !== 2) throw new QuantError(`NF4Linear: expected a 2-D NF4 weight [out, in], got ${fmtShape(this.qweight.shape)}`);
    [this.outFeatures, this.inFeatures] = this.qweight.shape as [number, number];
    this.computeDtype = fromLinear ? src.weight.dtype : (computeDtype ?? "float32");
    const bias = fromLinear ? src.bias : ((b as Tensor | null | undefined) ?? null);
    this.bias = bias ? this.param("bias", bias.detach(), false) : null;
  }

  /**
   * Quantizes a weight [out, in] (float32, bfloat16 or float64) to NF4, as `Linear4bit` does when
   * transformers loads with load_in_4bit. The layer computes in opts.computeDtype (default: the
   * weight's dtype). `what` names the weight in errors.
   */
  static fromWeight(weight: Tensor, bias: Tensor | null, opts: NF4LinearOptions = {}, what = "weight"): NF4Linear {
    return new NF4Linear(quantizeWeightNF4(weight, opts.blockSize, what), bias, opts.computeDtype ?? weight.dtype);
  }

  /** The dequantized weight [out, in], float32 (no gradient). */
  dequantizeWeight(): Tensor {
    return dequantizeNF4Tensor(this.qweight, "float32");
  }

  forward(x: Tensor): Tensor {
    const y =
      isGradEnabled() && x.requiresGrad
        ? T.frozenLinear(x, () => dequantizeToScratch(this.qweight, kernelDtype(this.computeDtype)))
        : nf4Matmul(x.dtype === this.computeDtype ? x : x.to(this.computeDtype), this.qweight, "NF4Linear");
    return this.bias ? T.add(y, this.bias) : y;
  }

  /** Bytes of the stored weight (NF4 codes + quantized absmax + nested absmax). */
  get weightBytes(): number {
    return nf4Bytes(this.qweight);
  }
}
