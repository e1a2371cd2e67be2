/**
 * PEFT `PrefixEncoder`: per-layer key/value prefixes as one [P, layers·2·token_dim] table, or with
 * prefix_projection an embedding [P, token_dim] through Linear → tanh → Linear. token_dim is
 * kv_heads · head_dim (GQA-aware, PEFT #1901), so the prefixes fit the KV cache directly.
 */
import type { Generator } from "../../core/rng.ts";
import { Embedding, Linear, Module, Sequential, Tanh } from "../../nn/index.ts";
import type { Tensor } from "../../tensor/index.ts";
import type { PromptEncoder } from "../PromptLearningModel.ts";

export class PrefixEncoder extends Module implements PromptEncoder {
  readonly embedding: Embedding;
  readonly transform: Sequential | null;

  constructor(P: number, tokenDim: number, numLayers: number, projection: boolean, hidden: number, generator: Generator) {
    super();
    const out = numLayers * 2 * tokenDim;
    if (projection) {
      this.embedding = this.module("embedding", new Embedding(P, tokenDim, { generator }));
      this.transform = this.module("transform", new Sequential(new Linear(tokenDim, hidden, { generator }), new Tanh(), new Linear(hidden, out, { generator })));
    } else {
      this.embedding = this.module("embedding", new Embedding(P, out, { generator }));
      this.transform = null;
    }
  }

  forward(): Tensor {
    return this.transform ? this.transform.forward(this.embedding.weight) : this.embedding.weight;
  }
}
