/** P-tuning v1: a prompt encoder's output before the input embeddings; saved as PEFT's P_TUNING. */
import { Generator } from "../../core/rng.ts";
import type { CausalLM } from "../../models/index.ts";
import type { Tensor } from "../../tensor/index.ts";
import { PromptLearningModel, StoredPrompt, modelDims, promptLearningConfigJson, storedPromptEmbeddings } from "../PromptLearningModel.ts";
import { knownOnly } from "../targets.ts";
import { P_TUNING_KEYS, type PTuningConfig, pTuningConfig } from "./config.ts";
import { PTuningEncoder } from "./layer.ts";

function configJson(model: CausalLM, c: PTuningConfig): Record<string, unknown> {
  const d = modelDims(model, "p-tuning");
  return {
    ...promptLearningConfigJson("P_TUNING", c, { tokenDim: d.hidden, heads: d.heads, numLayers: d.numLayers }),
    encoder_reparameterization_type: c.encoder_reparameterization_type,
    encoder_hidden_size: c.encoder_hidden_size ?? d.hidden,
    encoder_num_layers: c.encoder_num_layers,
    encoder_dropout: c.encoder_dropout,
    revision: null,
  };
}

export function applyPTuning(model: CausalLM, c: PTuningConfig): PromptLearningModel {
  const d = modelDims(model, "p-tuning");
  const hidden = c.encoder_hidden_size ?? d.hidden;
  const enc = new PTuningEncoder(c.num_virtual_tokens, d.hidden, hidden, c.encoder_reparameterization_type, c.encoder_num_layers, c.encoder_dropout, new Generator(c.seed));
  return new PromptLearningModel(model, "p-tuning", configJson(model, c), "embeddings", enc, c.num_virtual_tokens);
}

export function loadPTuning(model: CausalLM, config: Record<string, unknown>, weights: Map<string, Tensor>): PromptLearningModel {
  const c = pTuningConfig(knownOnly(config, P_TUNING_KEYS));
  const prompt = storedPromptEmbeddings(weights, c.num_virtual_tokens, modelDims(model, "p-tuning").hidden, "p-tuning");
  return new PromptLearningModel(model, "p-tuning", configJson(model, c), "embeddings", new StoredPrompt(prompt), c.num_virtual_tokens);
}
