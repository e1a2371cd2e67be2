/**
 * NF4Linear: a frozen Linear whose weight is stored in NF4 with double-quantized absmax
 * (src/quant/nf4.ts, bitsandbytes layout). Each forward goes through the backend's NF4 kernels:
 * when x needs a gradient (QLoRA training) the weight is dequantized on the fly (Backend
 * nf4Dequantize) and multiplied with autograd; otherwise the NF4 matmul reads the 4-bit codes
 * directly (Backend nf4Matmul). The bias stays in full precision.
 */
import { Linear, UnaryModule } from "../../nn/index.ts";
import { type NF4Tensor, dequantizeNF4Tensor, nf4Bytes, nf4Matmul, quantizeNF4 } from "../../quant/index.ts";
import * as T from "../../tensor/index.ts";
import { type Tensor, isGradEnabled } from "../../tensor/index.ts";

export class NF4Linear extends UnaryModule {
  readonly isLinearLike = true;
  readonly inFeatures: number;
  readonly outFeatures: number;
  readonly bias: Tensor | null;
  readonly qweight: NF4Tensor;
  /** The dtype the layer computes in (the original weight's). */
  readonly computeDtype: Tensor["dtype"];

  constructor(linear: Linear, blockSize?: number) {
    super();
    this.inFeatures = linear.inFeatures;
    this.outFeatures = linear.outFeatures;
    this.computeDtype = linear.weight.dtype;
    const w = linear.weight.detach().to("float32").contiguous();
    this.qweight = quantizeNF4(w.data() as Float32Array, [this.outFeatures, this.inFeatures], blockSize);
    this.bias = linear.bias ? this.param("bias", linear.bias.detach(), false) : null;
  }

  /** The dequantized weight [out, in], float32 (no gradient). */
  dequantizeWeight(): Tensor {
    return dequantizeNF4Tensor(this.qweight, "float32");
  }

  forward(x: Tensor): Tensor {
    const y =
      isGradEnabled() && x.requiresGrad
        ? T.matmul(x, dequantizeNF4Tensor(this.qweight, this.computeDtype === "bfloat16" ? "bfloat16" : "float32").T)
        : nf4Matmul(x.dtype === this.computeDtype ? x : x.to(this.computeDtype), this.qweight, "NF4Linear");
    return this.bias ? T.add(y, this.bias) : y;
  }

  /** Bytes of the stored weight (NF4 codes + quantized absmax + nested absmax). */
  get weightBytes(): number {
    return nf4Bytes(this.qweight);
  }
}
