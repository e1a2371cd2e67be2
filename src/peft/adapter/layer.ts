/**
 * Houlsby bottleneck adapter on a sublayer's output: y = h + up(act(down(dropout(h)))) with
 * h = base_layer(x); `adapter_up` starts at zero, so the adapter starts as the identity.
 * Not linear in the weights, so it cannot be merged.
 */
import { type Generator } from "../../core/rng.ts";
import { Linear, UnaryModule, dropout, init } from "../../nn/index.ts";
import * as T from "../../tensor/index.ts";
import type { Tensor } from "../../tensor/index.ts";
import type { AdapterLayer } from "../InjectedPeftModel.ts";
import type { LinearLike } from "../lora/layer.ts";
import type { AdapterActivation } from "./config.ts";

const ACT: Record<AdapterActivation, (x: Tensor) => Tensor> = {
  relu: T.relu,
  gelu: (x) => T.gelu(x, "none"),
  silu: T.silu,
  tanh: T.tanh,
};

export class BottleneckAdapter extends UnaryModule implements AdapterLayer {
  readonly isAdapterLayer = true;
  readonly isLinearLike = true;
  readonly base_layer: LinearLike;
  readonly adapter_down: Linear;
  readonly adapter_up: Linear;
  readonly inFeatures: number;
  readonly outFeatures: number;

  constructor(
    base: LinearLike,
    size: number,
    readonly activation: AdapterActivation,
    readonly dropoutP: number,
    private readonly generator: Generator,
  ) {
    super();
    this.base_layer = this.module("base_layer", base);
    this.inFeatures = base.inFeatures;
    this.outFeatures = base.outFeatures;
    this.adapter_down = this.module("adapter_down", new Linear(base.outFeatures, size, { generator }));
    this.adapter_up = this.module("adapter_up", new Linear(size, base.outFeatures, { generator }));
    init.zeros_(this.adapter_up.weight);
    init.zeros_(this.adapter_up.bias!);
  }

  get bias(): Tensor | null {
    return this.base_layer.bias;
  }

  forward(x: Tensor): Tensor {
    const h = this.base_layer.forward(x);
    const hf = h.dtype === "float32" ? h : h.to("float32");
    const z = this.adapter_up.forward(ACT[this.activation](this.adapter_down.forward(dropout(hf, this.dropoutP, this.training, this.generator))));
    return T.add(h, z.dtype === h.dtype ? z : z.to(h.dtype));
  }
}
