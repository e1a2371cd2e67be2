/**
 * Model configs for pretraining from scratch (`graft pretrain --model-config <preset>`), with the
 * fields of real config.json files. vocab_size and the special token ids come from the tokenizer.
 * gpt2 is GPT-2 small's own config (124M parameters with its 50257-token vocabulary).
 */
import type { Tokenizer } from "../tokenizers/index.ts";
import { TrainError } from "./types.ts";

type RawConfig = Record<string, unknown> & { model_type: string };

const PRESETS: Record<string, RawConfig> = {
  "qwen2-tiny": {
    architectures: ["Qwen2ForCausalLM"], model_type: "qwen2", hidden_size: 64, intermediate_size: 192, num_hidden_layers: 2,
    num_attention_heads: 4, num_key_value_heads: 2, max_position_embeddings: 1024, rms_norm_eps: 1e-6, rope_theta: 10000,
    hidden_act: "silu", initializer_range: 0.02, tie_word_embeddings: true, torch_dtype: "float32", use_cache: true,
  },
  "qwen2-small": {
    architectures: ["Qwen2ForCausalLM"], model_type: "qwen2", hidden_size: 256, intermediate_size: 768, num_hidden_layers: 4,
    num_attention_heads: 4, num_key_value_heads: 2, max_position_embeddings: 2048, rms_norm_eps: 1e-6, rope_theta: 10000,
    hidden_act: "silu", initializer_range: 0.02, tie_word_embeddings: true, torch_dtype: "float32", use_cache: true,
  },
  "gpt2-tiny": {
    architectures: ["GPT2LMHeadModel"], model_type: "gpt2", n_embd: 64, n_layer: 2, n_head: 4, n_positions: 1024, n_inner: null,
    activation_function: "gelu_new", layer_norm_epsilon: 1e-5, resid_pdrop: 0.1, embd_pdrop: 0.1, attn_pdrop: 0.1, initializer_range: 0.02,
    tie_word_embeddings: true, torch_dtype: "float32",
  },
  gpt2: {
    architectures: ["GPT2LMHeadModel"], model_type: "gpt2", n_embd: 768, n_layer: 12, n_head: 12, n_positions: 1024, n_ctx: 1024, n_inner: null,
    activation_function: "gelu_new", layer_norm_epsilon: 1e-5, resid_pdrop: 0.1, embd_pdrop: 0.1, attn_pdrop: 0.1, initializer_range: 0.02,
    tie_word_embeddings: true, torch_dtype: "float32",
  },
  "bert-tiny": {
    architectures: ["BertForMaskedLM"], model_type: "bert", hidden_size: 128, num_hidden_layers: 2, num_attention_heads: 2,
    intermediate_size: 512, hidden_act: "gelu", hidden_dropout_prob: 0.1, attention_probs_dropout_prob: 0.1, max_position_embeddings: 512,
    type_vocab_size: 2, initializer_range: 0.02, layer_norm_eps: 1e-12, torch_dtype: "float32",
  },
};

export function modelPresets(): string[] {
  return Object.keys(PRESETS);
}

/** A preset's config with vocab_size (the tokenizer's, rounded up to a multiple of 64) and token ids filled in. */
export function presetConfig(name: string, tok: Pick<Tokenizer, "vocabSize" | "eosTokenId" | "bosTokenId" | "padTokenId">): RawConfig {
  const p = PRESETS[name];
  if (!p) throw new TrainError(`unknown model preset "${name}" (presets: ${modelPresets().join(", ")}; or pass a config.json path)`);
  return withTokenizer({ ...p }, tok);
}

/** Sets vocab_size (at least the tokenizer's) and bos/eos/pad ids from the tokenizer. */
export function withTokenizer(cfg: RawConfig, tok: Pick<Tokenizer, "vocabSize" | "eosTokenId" | "bosTokenId" | "padTokenId">): RawConfig {
  const given = typeof cfg["vocab_size"] === "number" ? (cfg["vocab_size"] as number) : 0;
  if (given && given < tok.vocabSize) throw new TrainError(`config vocab_size ${given} is smaller than the tokenizer's ${tok.vocabSize} tokens`);
  const out: RawConfig = { ...cfg, vocab_size: given || Math.ceil(tok.vocabSize / 64) * 64 };
  if (tok.eosTokenId !== null) out["eos_token_id"] ??= tok.eosTokenId;
  out["bos_token_id"] ??= tok.bosTokenId ?? tok.eosTokenId;
  if (tok.padTokenId !== null) out["pad_token_id"] ??= tok.padTokenId;
  return out;
}
