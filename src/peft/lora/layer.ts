/**
 * LoraLinear: y = base_layer(x) + lora_B(lora_A(dropout(x))) * scaling, with A [r, in] and B [out, r]
 * (PEFT's `lora.Linear`). The base is a Linear or a quantized stand-in (NF4Linear), by dispatch on
 * `denseWeight()`; merge/unmerge fold ΔW = B·A·scaling into a full-precision base in place.
 */
import { type Generator } from "../../core/rng.ts";
import { Linear, type Module, UnaryModule, dropout, init } from "../../nn/index.ts";
import * as T from "../../tensor/index.ts";
import { type Tensor, noGrad } from "../../tensor/index.ts";
import type { AdapterLayer } from "../InjectedPeftModel.ts";
import { PeftError } from "../types.ts";

/** A Linear or a layer standing in for one (quantized weights). */
export interface LinearLike extends Module {
  readonly inFeatures: number;
  readonly outFeatures: number;
  readonly bias: Tensor | null;
  forward(x: Tensor): Tensor;
}

/** The base's weight [out, in] as a float32 tensor (dequantized for a quantized base). */
export function denseWeight(base: LinearLike): Tensor {
  if (base instanceof Linear) return base.weight.to("float32");
  const q = base as LinearLike & { dequantizeWeight?: () => Tensor };
  if (!q.dequantizeWeight) throw new PeftError(`${base.constructor.name} has no weight to merge into`);
  return q.dequantizeWeight();
}

/** The dtype a merged layer keeps: the base Linear's, or the dtype a quantized base computes in. */
export function baseDtype(base: LinearLike): Tensor["dtype"] {
  if (base instanceof Linear) return base.weight.dtype;
  return (base as LinearLike & { computeDtype?: Tensor["dtype"] }).computeDtype ?? "float32";
}

/** A plain Linear with the given float32 weight (cast to dtype) and bias. */
export function plainLinear(weight: Tensor, bias: Tensor | null, dtype: Tensor["dtype"]): Linear {
  const [out, inp] = weight.shape as [number, number];
  const l = new Linear(0, 0, { bias: bias !== null });
  l.setParameter("weight", weight.detach().to(dtype).contiguous());
  if (bias) l.setParameter("bias", bias.detach().clone());
  Object.assign(l, { inFeatures: inp, outFeatures: out });
  l.freeze();
  return l;
}

export interface LoraLayerOptions {
  r: number;
  alpha: number;
  dropout: number;
  rslora: boolean;
  init: boolean | "gaussian";
  generator: Generator;
}

export class LoraLinear extends UnaryModule implements AdapterLayer {
  readonly isAdapterLayer = true;
  readonly isLinearLike = true;
  readonly base_layer: LinearLike;
  readonly lora_A: Linear;
  readonly lora_B: Linear;
  readonly r: number;
  readonly scaling: number;
  readonly dropoutP: number;
  readonly inFeatures: number;
  readonly outFeatures: number;
  private readonly generator: Generator;
  merged = false;

  constructor(base: LinearLike, opts: LoraLayerOptions) {
    super();
    this.base_layer = this.module("base_layer", base);
    this.inFeatures = base.inFeatures;
    this.outFeatures = base.outFeatures;
    this.r = opts.r;
    this.scaling = opts.rslora ? opts.alpha / Math.sqrt(opts.r) : opts.alpha / opts.r;
    this.dropoutP = opts.dropout;
    this.generator = opts.generator;
    // nn.Linear's own init is kaiming-uniform(a=√5): PEFT's init of lora_A.
    this.lora_A = this.module("lora_A", new Linear(base.inFeatures, opts.r, { bias: false, generator: opts.generator }));
    this.lora_B = this.module("lora_B", new Linear(opts.r, base.outFeatures, { bias: false, generator: opts.generator }));
    if (opts.init === "gaussian") init.normal_(this.lora_A.weight, 0, 1 / opts.r, opts.generator);
    if (opts.init !== false) init.zeros_(this.lora_B.weight);
  }

  get bias(): Tensor | null {
    return this.base_layer.bias;
  }

  forward(x: Tensor): Tensor {
    const y = this.base_layer.forward(x);
    if (this.merged) return y;
    const xf = x.dtype === this.lora_A.weight.dtype ? x : x.to(this.lora_A.weight.dtype);
    const h = this.lora_B.forward(this.lora_A.forward(dropout(xf, this.dropoutP, this.training, this.generator)));
    const d = T.mul(h, this.scaling);
    return T.add(y, d.dtype === y.dtype ? d : d.to(y.dtype));
  }

  /** ΔW = B·A·scaling, float32 [out, in]. */
  deltaWeight(): Tensor {
    return noGrad(() => T.mul(T.matmul(this.lora_B.weight.to("float32"), this.lora_A.weight.to("float32")), this.scaling));
  }

  /** Adds ΔW into the base weight in place (a full-precision Linear base only). */
  merge(): void {
    if (this.merged) return;
    const base = this.fullPrecisionBase("merge");
    noGrad(() => base.weight.copy_(T.add(base.weight.to("float32"), this.deltaWeight()).to(base.weight.dtype)));
    this.merged = true;
  }

  unmerge(): void {
    if (!this.merged) return;
    const base = this.fullPrecisionBase("unmerge");
    noGrad(() => base.weight.copy_(T.sub(base.weight.to("float32"), this.deltaWeight()).to(base.weight.dtype)));
    this.merged = false;
  }

  /** A plain full-precision Linear holding W + ΔW (a quantized base is dequantized). */
  mergedLayer(): Linear {
    const w = denseWeight(this.base_layer);
    return plainLinear(this.merged ? w : noGrad(() => T.add(w, this.deltaWeight())), this.base_layer.bias, baseDtype(this.base_layer));
  }

  private fullPrecisionBase(op: string): Linear {
    if (!(this.base_layer instanceof Linear)) {
      throw new PeftError(`LoRA ${op} in place needs a full-precision base; a ${this.base_layer.constructor.name} base merges through mergedLayer()`);
    }
    return this.base_layer;
  }
}
