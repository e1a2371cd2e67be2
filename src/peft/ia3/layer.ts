/**
 * IA3Linear (PEFT `ia3.Linear`): a learned vector rescales the output of the base layer
 * (`ia3_l` [out, 1]) or, for feed-forward modules, its input (`ia3_l` [1, in]). Initialised to ones.
 */
import { type Generator } from "../../core/rng.ts";
import { UnaryModule, init } from "../../nn/index.ts";
import * as T from "../../tensor/index.ts";
import { type Tensor, noGrad } from "../../tensor/index.ts";
import type { AdapterLayer } from "../InjectedPeftModel.ts";
import { type LinearLike, baseDtype, denseWeight, plainLinear } from "../lora/layer.ts";

export class IA3Linear extends UnaryModule implements AdapterLayer {
  readonly isAdapterLayer = true;
  readonly isLinearLike = true;
  readonly base_layer: LinearLike;
  ia3_l: Tensor;
  readonly inFeatures: number;
  readonly outFeatures: number;

  constructor(
    base: LinearLike,
    readonly isFeedforward: boolean,
    initOnes: boolean,
    generator: Generator,
  ) {
    super();
    this.base_layer = this.module("base_layer", base);
    this.inFeatures = base.inFeatures;
    this.outFeatures = base.outFeatures;
    const shape = isFeedforward ? [1, base.inFeatures] : [base.outFeatures, 1];
    const l = T.randn(shape, { generator });
    if (initOnes) init.ones_(l);
    this.ia3_l = this.param("ia3_l", l);
  }

  get bias(): Tensor | null {
    return this.base_layer.bias;
  }

  forward(x: Tensor): Tensor {
    const s = this.ia3_l.reshape([-1]);
    if (this.isFeedforward) return this.base_layer.forward(T.mul(x, s.dtype === x.dtype ? s : s.to(x.dtype)));
    const y = this.base_layer.forward(x);
    return T.mul(y, s.dtype === y.dtype ? s : s.to(y.dtype));
  }

  /** W ⊙ ia3_l (rows for output scaling, columns for feed-forward input scaling); the bias scales with the output. */
  mergedLayer() {
    return noGrad(() => {
      const w = T.mul(denseWeight(this.base_layer), this.ia3_l.to("float32"));
      const b = this.base_layer.bias;
      const bias = b && !this.isFeedforward ? T.mul(b, this.ia3_l.reshape([-1]).to(b.dtype)) : b;
      return plainLinear(w, bias, baseDtype(this.base_layer));
    });
  }
}
