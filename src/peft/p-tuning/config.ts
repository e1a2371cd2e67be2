/** PromptEncoderConfig (P-tuning v1): PEFT's keys and defaults (peft/tuners/p_tuning/config.py). */
import { PROMPT_LEARNING_KEYS, numVirtualTokens } from "../PromptLearningModel.ts";
import { checkKnownOptions, int, num, str } from "../targets.ts";

export interface PTuningConfig {
  num_virtual_tokens: number;
  encoder_reparameterization_type: "MLP" | "LSTM";
  /** Default: the model's hidden size (token_dim). */
  encoder_hidden_size: number | null;
  /** LSTM layers (the MLP always has two hidden layers, as PEFT). */
  encoder_num_layers: number;
  encoder_dropout: number;
  base_model_name_or_path: string | null;
  seed: number;
}

export const P_TUNING_KEYS = [...PROMPT_LEARNING_KEYS, "encoder_reparameterization_type", "encoder_hidden_size", "encoder_num_layers", "encoder_dropout"] as const;

export function pTuningConfig(opts: Record<string, unknown>, method = "p-tuning"): PTuningConfig {
  checkKnownOptions(opts, P_TUNING_KEYS, method);
  const h = opts["encoder_hidden_size"];
  return {
    num_virtual_tokens: numVirtualTokens(opts, method),
    encoder_reparameterization_type: str<"MLP" | "LSTM">(opts, "encoder_reparameterization_type", "MLP", method, ["MLP", "LSTM"]),
    encoder_hidden_size: h === undefined || h === null ? null : int(opts, "encoder_hidden_size", 1, method),
    encoder_num_layers: int(opts, "encoder_num_layers", 2, method),
    encoder_dropout: num(opts, "encoder_dropout", 0, method, (x) => x >= 0 && x < 1),
    base_model_name_or_path: typeof opts["base_model_name_or_path"] === "string" ? (opts["base_model_name_or_path"] as string) : null,
    seed: int(opts, "seed", 0, method, 0),
  };
}
