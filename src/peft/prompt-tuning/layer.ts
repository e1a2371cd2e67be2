/** PEFT `PromptEmbedding`: a [P, C] table of virtual-token embeddings (nn.Embedding's N(0, 1) init). */
import type { Generator } from "../../core/rng.ts";
import { Embedding, Module } from "../../nn/index.ts";
import type { Tensor } from "../../tensor/index.ts";
import type { PromptEncoder } from "../PromptLearningModel.ts";

export class PromptEmbedding extends Module implements PromptEncoder {
  readonly embedding: Embedding;
  constructor(P: number, dim: number, generator: Generator, wordEmbeddings?: Tensor) {
    super();
    this.embedding = this.module("embedding", new Embedding(P, dim, { generator }));
    if (wordEmbeddings) this.embedding.setParameter("weight", wordEmbeddings.detach().to("float32").contiguous().clone());
  }
  forward(): Tensor {
    return this.embedding.weight;
  }
}

/** PEFT's TEXT init: the ids repeated to cover P, then cut to P. */
export function textInitIds(ids: number[], P: number): number[] {
  const reps = Math.ceil(P / ids.length);
  return Array.from({ length: reps }, () => ids).flat().slice(0, P);
}
