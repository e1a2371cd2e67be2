/** Basic layers: Linear, Embedding, RMSNorm, LayerNorm, Dropout, Sequential and activations. */
import type { DType } from "../core/dtype.ts";
import { ShapeError, fmtShape } from "../core/errors.ts";
import { type Generator, defaultGenerator } from "../core/rng.ts";
import * as T from "../tensor/index.ts";
import type { Tensor } from "../tensor/index.ts";
import { Module } from "./Module.ts";
import { kaimingUniform_, normal_, uniform_ } from "./init.ts";

/** A module mapping one tensor to one tensor (what Sequential chains). */
export abstract class UnaryModule extends Module {
  abstract forward(x: Tensor): Tensor;
}

export interface LinearOptions {
  bias?: boolean;
  dtype?: DType;
  generator?: Generator;
}

/** y = x W^T + b with W [out, in] (PyTorch layout), initialised as torch.nn.Linear. */
export class Linear extends UnaryModule {
  weight: Tensor;
  bias: Tensor | null;
  constructor(
    readonly inFeatures: number,
    readonly outFeatures: number,
    opts: LinearOptions = {},
  ) {
    super();
    const dtype = opts.dtype ?? "float32";
    const w = T.zeros([outFeatures, inFeatures]);
    kaimingUniform_(w, { a: Math.sqrt(5), generator: opts.generator });
    this.weight = this.param("weight", dtype === "float32" ? w : w.to(dtype));
    if (opts.bias ?? true) {
      const bound = inFeatures > 0 ? 1 / Math.sqrt(inFeatures) : 0;
      const b = uniform_(T.zeros([outFeatures]), -bound, bound, opts.generator);
      this.bias = this.param("bias", dtype === "float32" ? b : b.to(dtype));
    } else this.bias = this.param("bias", null);
  }
  forward(x: Tensor): Tensor {
    if (x.shape[x.ndim - 1] !== this.inFeatures) {
      throw new ShapeError("Linear", `input ${fmtShape(x.shape)} does not end in in_features=${this.inFeatures}`);
    }
    const y = T.matmul(x, this.weight.T);
    return this.bias ? T.add(y, this.bias) : y;
  }
}

/** A lookup table [numEmbeddings, dim], initialised N(0, 1) as torch.nn.Embedding. */
export class Embedding extends Module {
  weight: Tensor;
  constructor(
    readonly numEmbeddings: number,
    readonly embeddingDim: number,
    opts: { dtype?: DType; generator?: Generator } = {},
  ) {
    super();
    const w = normal_(T.zeros([numEmbeddings, embeddingDim]), 0, 1, opts.generator);
    this.weight = this.param("weight", opts.dtype && opts.dtype !== "float32" ? w.to(opts.dtype) : w);
  }
  forward(ids: Tensor): Tensor {
    return T.embedding(ids, this.weight);
  }
}

export class RMSNorm extends UnaryModule {
  weight: Tensor | null;
  constructor(
    readonly dim: number,
    readonly eps = 1e-6,
    elementwiseAffine = true,
  ) {
    super();
    this.weight = this.param("weight", elementwiseAffine ? T.ones([dim]) : null);
  }
  forward(x: Tensor): Tensor {
    return T.rmsNorm(x, this.weight, this.eps);
  }
}

export class LayerNorm extends UnaryModule {
  weight: Tensor | null;
  bias: Tensor | null;
  constructor(
    readonly dim: number,
    readonly eps = 1e-5,
    elementwiseAffine = true,
    bias = true,
  ) {
    super();
    this.weight = this.param("weight", elementwiseAffine ? T.ones([dim]) : null);
    this.bias = this.param("bias", elementwiseAffine && bias ? T.zeros([dim]) : null);
  }
  forward(x: Tensor): Tensor {
    return T.layerNorm(x, this.weight, this.bias, this.eps);
  }
}

/** Zeroes elements with probability p in training and scales the rest by 1/(1-p). */
export class Dropout extends UnaryModule {
  constructor(
    readonly p = 0.5,
    readonly generator: Generator = defaultGenerator,
  ) {
    super();
    if (p < 0 || p > 1) throw new ShapeError("Dropout", `p must be in [0, 1], got ${p}`);
  }
  forward(x: Tensor): Tensor {
    return dropout(x, this.p, this.training, this.generator);
  }
}

export function dropout(x: Tensor, p: number, training = true, generator: Generator = defaultGenerator): Tensor {
  if (!training || p === 0) return x;
  if (p === 1) return T.mul(x, 0);
  const keep = T.rand(x.shape, { generator, dtype: x.dtype === "float64" ? "float64" : "float32" }).ge(p);
  return T.mul(x, T.mul(keep, 1 / (1 - p)).to(x.dtype));
}

/** Chains modules; submodules are named "0", "1", ... as in PyTorch. */
export class Sequential extends UnaryModule {
  readonly layers: UnaryModule[];
  constructor(...layers: UnaryModule[]) {
    super();
    this.layers = layers.map((m, i) => this.module(String(i), m));
  }
  forward(x: Tensor): Tensor {
    return this.layers.reduce((h, m) => m.forward(h), x);
  }
}

/** A list of modules named "0", "1", ... (like nn.ModuleList). */
export class ModuleList<M extends Module = Module> extends Module {
  readonly items: M[];
  constructor(items: M[] = []) {
    super();
    this.items = [];
    for (const m of items) this.push(m);
  }
  push(m: M): void {
    this.module(String(this.items.length), m);
    this.items.push(m);
  }
  get length(): number {
    return this.items.length;
  }
}

export class ReLU extends UnaryModule {
  forward(x: Tensor): Tensor {
    return T.relu(x);
  }
}
export class GELU extends UnaryModule {
  constructor(readonly approximate: "none" | "tanh" = "none") {
    super();
  }
  forward(x: Tensor): Tensor {
    return T.gelu(x, this.approximate);
  }
}
export class SiLU extends UnaryModule {
  forward(x: Tensor): Tensor {
    return T.silu(x);
  }
}
export class Sigmoid extends UnaryModule {
  forward(x: Tensor): Tensor {
    return T.sigmoid(x);
  }
}
export class Tanh extends UnaryModule {
  forward(x: Tensor): Tensor {
    return T.tanh(x);
  }
}
export class Softmax extends UnaryModule {
  constructor(readonly dim = -1) {
    super();
  }
  forward(x: Tensor): Tensor {
    return T.softmax(x, this.dim);
  }
}
export class Identity extends UnaryModule {
  forward(x: Tensor): Tensor {
    return x;
  }
}
