/** PromptTuningConfig: PEFT's keys and defaults (peft/tuners/prompt_tuning/config.py). */
import { PROMPT_LEARNING_KEYS, numVirtualTokens } from "../PromptLearningModel.ts";
import { checkKnownOptions, int, str } from "../targets.ts";
import { PeftError } from "../types.ts";

export interface PromptTuningConfig {
  num_virtual_tokens: number;
  /** "RANDOM": N(0, 1) as nn.Embedding; "TEXT": the embeddings of init text's tokens, repeated / cut to P. */
  prompt_tuning_init: "RANDOM" | "TEXT";
  prompt_tuning_init_text: string | null;
  /** Token ids of prompt_tuning_init_text (or given directly); needed for TEXT. */
  init_token_ids: number[] | null;
  tokenizer_name_or_path: string | null;
  base_model_name_or_path: string | null;
  seed: number;
}

export const PROMPT_TUNING_KEYS = [
  ...PROMPT_LEARNING_KEYS, "prompt_tuning_init", "prompt_tuning_init_text", "tokenizer_name_or_path", "tokenizer_kwargs",
  "prompt_tuning_init_token_ids", "tokenizer",
] as const;

/**
 * Options → config. TEXT init needs the text's token ids: pass `prompt_tuning_init_token_ids`, or a
 * `tokenizer` ({ encode(text): number[] }) with `prompt_tuning_init_text` (src/peft cannot import tokenizers).
 */
export function promptTuningConfig(opts: Record<string, unknown>, method = "prompt-tuning"): PromptTuningConfig {
  checkKnownOptions(opts, PROMPT_TUNING_KEYS, method);
  const init = str<"RANDOM" | "TEXT">(opts, "prompt_tuning_init", "RANDOM", method, ["RANDOM", "TEXT"]);
  const text = typeof opts["prompt_tuning_init_text"] === "string" ? (opts["prompt_tuning_init_text"] as string) : null;
  let ids = opts["prompt_tuning_init_token_ids"] as number[] | undefined;
  const tok = opts["tokenizer"] as { encode?: (t: string, o?: unknown) => number[] } | undefined;
  if (init === "TEXT" && !ids) {
    if (text === null) throw new PeftError(`${method}: prompt_tuning_init="TEXT" needs prompt_tuning_init_text`);
    if (!tok?.encode) throw new PeftError(`${method}: prompt_tuning_init="TEXT" needs a tokenizer (or prompt_tuning_init_token_ids) to turn the text into tokens`);
    ids = tok.encode(text, { addSpecialTokens: false });
  }
  if (ids !== undefined && (!Array.isArray(ids) || ids.length === 0 || !ids.every(Number.isInteger))) {
    throw new PeftError(`${method}: prompt_tuning_init_token_ids must be a non-empty list of token ids`);
  }
  return {
    num_virtual_tokens: numVirtualTokens(opts, method),
    prompt_tuning_init: init,
    prompt_tuning_init_text: text,
    init_token_ids: init === "TEXT" ? ids! : null,
    tokenizer_name_or_path: typeof opts["tokenizer_name_or_path"] === "string" ? (opts["tokenizer_name_or_path"] as string) : null,
    base_model_name_or_path: typeof opts["base_model_name_or_path"] === "string" ? (opts["base_model_name_or_path"] as string) : null,
    seed: int(opts, "seed", 0, method, 0),
  };
}
