/** A Linear whose weight is stored quantized (Q8_0 / Q4_0) for inference: y = x Wq^T + b. */
import type { QuantType } from "../backend/Backend.ts";
import type { Linear } from "../nn/index.ts";
import { UnaryModule } from "../nn/index.ts";
import * as T from "../tensor/index.ts";
import type { Tensor } from "../tensor/index.ts";
import { type QuantizedWeight, quantizeWeight, quantizedBytes } from "./QuantizedWeight.ts";
import { qmatmul } from "./qmatmul.ts";

export class QuantizedLinear extends UnaryModule {
  readonly inFeatures: number;
  readonly outFeatures: number;
  /** The quantized weight [out, in]; not a parameter (it has no gradient and no float dtype). */
  readonly qweight: QuantizedWeight;
  /** The float bias (frozen), or null. */
  bias: Tensor | null;

  constructor(qweight: QuantizedWeight, bias: Tensor | null = null) {
    super();
    this.qweight = qweight;
    this.inFeatures = qweight.k;
    this.outFeatures = qweight.n;
    this.bias = this.param("bias", bias ? bias.detach() : null, false);
  }

  get type(): QuantType {
    return this.qweight.type;
  }

  /** Quantizes a Linear's weight (its bias stays in its float dtype). */
  static fromLinear(linear: Linear, type: QuantType, what = "Linear"): QuantizedLinear {
    return new QuantizedLinear(quantizeWeight(linear.weight, type, what), linear.bias);
  }

  /** Quantizes a weight [out, in] directly (e.g. a tied embedding used as the output head). */
  static fromWeight(weight: Tensor, type: QuantType, bias: Tensor | null = null, what = "weight"): QuantizedLinear {
    return new QuantizedLinear(quantizeWeight(weight, type, what), bias);
  }

  /** Bytes of weight data one forward streams (quants + scales, bias excluded). */
  get weightBytes(): number {
    return quantizedBytes(this.qweight);
  }

  forward(x: Tensor): Tensor {
    const y = qmatmul(x, this.qweight, `QuantizedLinear(${this.inFeatures}→${this.outFeatures}, ${this.type})`);
    return this.bias ? T.add(y, this.bias) : y;
  }
}
