/** Prefix tuning / P-Tuning v2: key/value prefixes in every layer's KV cache; saved as PEFT's PREFIX_TUNING. */
import { Generator } from "../../core/rng.ts";
import type { CausalLM } from "../../models/index.ts";
import type { Tensor } from "../../tensor/index.ts";
import { type ModelDims, PromptLearningModel, StoredPrompt, modelDims, promptLearningConfigJson, storedPromptEmbeddings } from "../PromptLearningModel.ts";
import { knownOnly } from "../targets.ts";
import { PREFIX_TUNING_KEYS, type PrefixTuningConfig, prefixTuningConfig } from "./config.ts";
import { PrefixEncoder } from "./layer.ts";

/** PEFT's token_dim and num_attention_heads for prefix tuning on a GQA model. */
function prefixDims(d: ModelDims): { tokenDim: number; heads: number } {
  return { tokenDim: d.kvHeads * d.headDim, heads: d.kvHeads };
}

function configJson(model: CausalLM, c: PrefixTuningConfig): Record<string, unknown> {
  const d = modelDims(model, "prefix-tuning");
  const { tokenDim, heads } = prefixDims(d);
  return {
    ...promptLearningConfigJson("PREFIX_TUNING", c, { tokenDim, heads, numLayers: d.numLayers }),
    encoder_hidden_size: c.encoder_hidden_size ?? tokenDim,
    prefix_projection: c.prefix_projection,
    revision: null,
  };
}

export function applyPrefixTuning(model: CausalLM, c: PrefixTuningConfig): PromptLearningModel {
  const d = modelDims(model, "prefix-tuning");
  const { tokenDim } = prefixDims(d);
  const enc = new PrefixEncoder(c.num_virtual_tokens, tokenDim, d.numLayers, c.prefix_projection, c.encoder_hidden_size ?? tokenDim, new Generator(c.seed));
  return new PromptLearningModel(model, "prefix-tuning", configJson(model, c), "prefix", enc, c.num_virtual_tokens);
}

export function loadPrefixTuning(model: CausalLM, config: Record<string, unknown>, weights: Map<string, Tensor>): PromptLearningModel {
  const c = prefixTuningConfig(knownOnly(config, PREFIX_TUNING_KEYS));
  const d = modelDims(model, "prefix-tuning");
  const prompt = storedPromptEmbeddings(weights, c.num_virtual_tokens, d.numLayers * 2 * prefixDims(d).tokenDim, "prefix-tuning");
  return new PromptLearningModel(model, "prefix-tuning", configJson(model, c), "prefix", new StoredPrompt(prompt), c.num_virtual_tokens);
}
