/** P-tuning v1: a prompt encoder's output before the input embeddings; saved as PEFT's P_TUNING. */
import { Generator } from "../../core/rng.ts";
import type { CausalLM } from "../../models/index.ts";
import type { Tensor } from "../../tensor/index.ts";
import { PromptLearningModel, StoredPrompt, modelDims, storedPromptEmbeddings } from "../PromptLearningModel.ts";
import { knownOnly } from "../targets.ts";
import { P_TUNING_KEYS, type PTuningConfig, pTuningConfig } from "./config.ts";
import { PTuningEncoder } from "./layer.ts";

function configJson(model: CausalLM, c: PTuningConfig): Record<string, unknown> {
  const d = modelDims(model, "p-tuning");
  return {
    peft_type: "P_TUNING",
    task_type: "CAUSAL_LM",
    base_model_name_or_path: c.base_model_name_or_path,
    inference_mode: true,
    num_virtual_tokens: c.num_virtual_tokens,
    token_dim: d.hidden,
    num_transformer_submodules: 1,
    num_attention_heads: d.heads,
    num_layers: d.numLayers,
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
