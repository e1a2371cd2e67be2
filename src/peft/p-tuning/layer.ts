/**
 * PEFT `PromptEncoder` (P-tuning, Liu et al. 2021): virtual-token embeddings [P, C] re-parameterised
 * by an MLP (Linear C→H, ReLU, Linear H→H, ReLU, Linear H→C) or by a bidirectional LSTM followed
 * by an MLP (Linear 2H→2H, ReLU, Linear 2H→C).
 */
import type { Generator } from "../../core/rng.ts";
import { Embedding, Linear, Module, ReLU, Sequential } from "../../nn/index.ts";
import type { Tensor } from "../../tensor/index.ts";
import type { PromptEncoder } from "../PromptLearningModel.ts";
import { BiLSTM } from "./lstm.ts";

export class PTuningEncoder extends Module implements PromptEncoder {
  readonly embedding: Embedding;
  readonly lstm_head: BiLSTM | null;
  readonly mlp_head: Sequential;

  constructor(P: number, dim: number, hidden: number, type: "MLP" | "LSTM", lstmLayers: number, dropoutP: number, generator: Generator) {
    super();
    this.embedding = this.module("embedding", new Embedding(P, dim, { generator }));
    if (type === "MLP") {
      this.lstm_head = null;
      this.mlp_head = this.module(
        "mlp_head",
        new Sequential(new Linear(dim, hidden, { generator }), new ReLU(), new Linear(hidden, hidden, { generator }), new ReLU(), new Linear(hidden, dim, { generator })),
      );
    } else {
      this.lstm_head = this.module("lstm_head", new BiLSTM(dim, hidden, lstmLayers, dropoutP, generator));
      this.mlp_head = this.module("mlp_head", new Sequential(new Linear(2 * hidden, 2 * hidden, { generator }), new ReLU(), new Linear(2 * hidden, dim, { generator })));
    }
  }

  forward(): Tensor {
    const e = this.embedding.weight;
    return this.mlp_head.forward(this.lstm_head ? this.lstm_head.forward(e) : e);
  }
}
