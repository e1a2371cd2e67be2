/** PrefixTuningConfig (also P-Tuning v2): PEFT's keys and defaults (peft/tuners/prefix_tuning/config.py). */
import { PROMPT_LEARNING_KEYS, numVirtualTokens } from "../PromptLearningModel.ts";
import { bool, checkKnownOptions, int } from "../targets.ts";

export interface PrefixTuningConfig {
  num_virtual_tokens: number;
  /** Re-parameterise the prefixes through Linear → tanh → Linear (Li & Liang). */
  prefix_projection: boolean;
  /** Default: token_dim (kv_heads · head_dim). */
  encoder_hidden_size: number | null;
  base_model_name_or_path: string | null;
  seed: number;
}

export const PREFIX_TUNING_KEYS = [...PROMPT_LEARNING_KEYS, "prefix_projection", "encoder_hidden_size"] as const;

export function prefixTuningConfig(opts: Record<string, unknown>, method = "prefix-tuning"): PrefixTuningConfig {
  checkKnownOptions(opts, PREFIX_TUNING_KEYS, method);
  const h = opts["encoder_hidden_size"];
  return {
    num_virtual_tokens: numVirtualTokens(opts, method),
    prefix_projection: bool(opts, "prefix_projection", false, method),
    encoder_hidden_size: h === undefined || h === null ? null : int(opts, "encoder_hidden_size", 1, method),
    base_model_name_or_path: typeof opts["base_model_name_or_path"] === "string" ? (opts["base_model_name_or_path"] as string) : null,
    seed: int(opts, "seed", 0, method, 0),
  };
}
