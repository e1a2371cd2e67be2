/** Prompt tuning (Lester et al. 2021): trainable virtual-token embeddings before the input. */
import { Generator } from "../../core/rng.ts";
import type { CausalLM } from "../../models/index.ts";
import * as T from "../../tensor/index.ts";
import type { Tensor } from "../../tensor/index.ts";
import { PromptLearningModel, StoredPrompt, inputEmbedding, modelDims, promptLearningConfigJson, storedPromptEmbeddings } from "../PromptLearningModel.ts";
import { knownOnly } from "../targets.ts";
import { PROMPT_TUNING_KEYS, type PromptTuningConfig, promptTuningConfig } from "./config.ts";
import { PromptEmbedding, textInitIds } from "./layer.ts";

function configJson(model: CausalLM, c: PromptTuningConfig): Record<string, unknown> {
  const d = modelDims(model, "prompt-tuning");
  return {
    ...promptLearningConfigJson("PROMPT_TUNING", c, { tokenDim: d.hidden, heads: d.heads, numLayers: d.numLayers }),
    prompt_tuning_init: c.prompt_tuning_init,
    prompt_tuning_init_text: c.prompt_tuning_init_text,
    tokenizer_name_or_path: c.tokenizer_name_or_path,
    tokenizer_kwargs: null,
    revision: null,
  };
}

export function applyPromptTuning(model: CausalLM, c: PromptTuningConfig): PromptLearningModel {
  const P = c.num_virtual_tokens;
  const emb = inputEmbedding(model, "prompt-tuning");
  const words = c.init_token_ids ? T.noGrad(() => T.embedding(T.tensor(textInitIds(c.init_token_ids!, P), { dtype: "int32" }), emb.weight)) : undefined;
  const encoder = new PromptEmbedding(P, emb.embeddingDim, new Generator(c.seed), words);
  return new PromptLearningModel(model, "prompt-tuning", configJson(model, c), "embeddings", encoder, P);
}

export function loadPromptTuning(model: CausalLM, config: Record<string, unknown>, weights: Map<string, Tensor>): PromptLearningModel {
  const c = promptTuningConfig({ ...knownOnly(config, PROMPT_TUNING_KEYS), prompt_tuning_init: "RANDOM" });
  const dim = inputEmbedding(model, "prompt-tuning").embeddingDim;
  const prompt = storedPromptEmbeddings(weights, c.num_virtual_tokens, dim, "prompt-tuning");
  return new PromptLearningModel(model, "prompt-tuning", { ...configJson(model, c), ...knownOnly(config, ["prompt_tuning_init", "prompt_tuning_init_text"]) }, "embeddings", new StoredPrompt(prompt), c.num_virtual_tokens);
}
