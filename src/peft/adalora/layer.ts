/**
 * SVDLinear (PEFT `adalora.SVDLinear`): ΔW = P·Λ·Q in SVD form, P = lora_B [out, r],
 * Λ = lora_E [r, 1] (the singular values, pruned by the rank allocator), Q = lora_A [r, in];
 * y = base(x) + dropout(x)·(Q⊙Λ)ᵀ·Pᵀ · scaling / (ranknum + 1e-5).
 */
import { type Generator } from "../../core/rng.ts";
import { UnaryModule, dropout, init } from "../../nn/index.ts";
import * as T from "../../tensor/index.ts";
import { type Tensor, noGrad } from "../../tensor/index.ts";
import type { AdapterLayer } from "../InjectedPeftModel.ts";
import { type LinearLike, baseDtype, denseWeight, plainLinear } from "../lora/layer.ts";

export class SVDLinear extends UnaryModule implements AdapterLayer {
  readonly isAdapterLayer = true;
  readonly isLinearLike = true;
  readonly base_layer: LinearLike;
  lora_A: Tensor;
  lora_B: Tensor;
  lora_E: Tensor;
  /** The rank the scaling divides by: init_r, kept when a saved adapter is resized to its kept ranks. */
  readonly ranknum: number;
  readonly scaling: number;
  readonly inFeatures: number;
  readonly outFeatures: number;

  constructor(
    base: LinearLike,
    r: number,
    alpha: number,
    readonly dropoutP: number,
    private readonly generator: Generator,
  ) {
    super();
    this.base_layer = this.module("base_layer", base);
    this.inFeatures = base.inFeatures;
    this.outFeatures = base.outFeatures;
    this.ranknum = r;
    this.scaling = alpha > 0 ? alpha : r;
    // PEFT reset_lora_parameters: E zeros, A and B ~ N(0, 0.02).
    this.lora_A = this.param("lora_A", init.normal_(T.zeros([r, base.inFeatures]), 0, 0.02, generator));
    this.lora_B = this.param("lora_B", init.normal_(T.zeros([base.outFeatures, r]), 0, 0.02, generator));
    this.lora_E = this.param("lora_E", T.zeros([r, 1]));
  }

  get r(): number {
    return this.lora_E.shape[0]!;
  }

  get bias(): Tensor | null {
    return this.base_layer.bias;
  }

  forward(x: Tensor): Tensor {
    const y = this.base_layer.forward(x);
    if (this.r === 0) return y;
    const xf = dropout(x.dtype === "float32" ? x : x.to("float32"), this.dropoutP, this.training, this.generator);
    const h = T.matmul(T.matmul(xf, T.mul(this.lora_A, this.lora_E).T), this.lora_B.T);
    const d = T.mul(h, this.scaling / (this.ranknum + 1e-5));
    return T.add(y, d.dtype === y.dtype ? d : d.to(y.dtype));
  }

  deltaWeight(): Tensor {
    return noGrad(() => T.mul(T.matmul(this.lora_B, T.mul(this.lora_A, this.lora_E)), this.scaling / (this.ranknum + 1e-5)));
  }

  mergedLayer() {
    return plainLinear(noGrad(() => T.add(denseWeight(this.base_layer), this.deltaWeight())), this.base_layer.bias, baseDtype(this.base_layer));
  }

  /** Keeps only the ranks marked true (PEFT `resize_modules_by_rank_pattern`); ranknum stays. */
  resize(keep: boolean[]): void {
    const idx = keep.flatMap((k, i) => (k ? [i] : []));
    const rows = (t: Tensor) => (idx.length ? T.cat(idx.map((i) => t.slice(0, i, i + 1)), 0) : T.zeros([0, t.shape[1]!]));
    const cols = (t: Tensor) => (idx.length ? T.cat(idx.map((i) => t.slice(1, i, i + 1)), 1) : T.zeros([t.shape[0]!, 0]));
    noGrad(() => {
      this.setParameter("lora_A", rows(this.lora_A).contiguous());
      this.setParameter("lora_E", rows(this.lora_E).contiguous());
      this.setParameter("lora_B", cols(this.lora_B).contiguous());
    });
  }
}
