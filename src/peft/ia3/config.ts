/** IA3Config: PEFT's keys and defaults (peft/tuners/ia3/config.py). */
import { COMMON_CONFIG_KEYS, bool, checkKnownOptions, int, parseTargets, type TargetModules } from "../targets.ts";
import { PeftError } from "../types.ts";

export interface IA3Config {
  target_modules?: TargetModules;
  /** Modules whose input (not output) is scaled; must be among the targets. */
  feedforward_modules?: TargetModules;
  init_ia3_weights: boolean;
  base_model_name_or_path: string | null;
  seed: number;
}

export const IA3_KEYS = [...COMMON_CONFIG_KEYS, "target_modules", "feedforward_modules", "init_ia3_weights", "fan_in_fan_out", "modules_to_save", "exclude_modules", "seed"] as const;

/** PEFT's TRANSFORMERS_MODELS_TO_IA3_TARGET_MODULES_MAPPING / _FEEDFORWARD_MODULES_MAPPING. */
export const IA3_DEFAULTS: Record<string, { targets: string[]; feedforward: string[] }> = {
  qwen2: { targets: ["k_proj", "v_proj", "down_proj"], feedforward: ["down_proj"] },
  llama: { targets: ["k_proj", "v_proj", "down_proj"], feedforward: ["down_proj"] },
  gpt2: { targets: ["c_attn", "mlp.c_proj"], feedforward: ["mlp.c_proj"] },
  bert: { targets: ["key", "value", "output.dense"], feedforward: ["output.dense"] },
};

export function ia3Config(opts: Record<string, unknown>, method = "ia3"): IA3Config {
  checkKnownOptions(opts, IA3_KEYS, method);
  if (opts["fan_in_fan_out"] === true) throw new PeftError(`${method}: fan_in_fan_out=true is not supported (graft's Linear weights are [out, in])`);
  const mts = opts["modules_to_save"];
  if (mts !== undefined && mts !== null && !(Array.isArray(mts) && mts.length === 0)) throw new PeftError(`${method}: modules_to_save is not implemented`);
  return {
    target_modules: parseTargets(opts["target_modules"], method),
    feedforward_modules: parseTargets(opts["feedforward_modules"], method),
    init_ia3_weights: bool(opts, "init_ia3_weights", true, method),
    base_model_name_or_path: typeof opts["base_model_name_or_path"] === "string" ? (opts["base_model_name_or_path"] as string) : null,
    seed: int(opts, "seed", 0, method, 0),
  };
}
