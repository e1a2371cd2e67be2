/** AdaLoraConfig: PEFT's keys and defaults (peft/tuners/adalora/config.py). */
import { COMMON_CONFIG_KEYS, checkKnownOptions, int, num, parseTargets, type TargetModules } from "../targets.ts";
import { PeftError } from "../types.ts";

export interface AdaLoraConfig {
  init_r: number;
  target_r: number;
  lora_alpha: number;
  lora_dropout: number;
  target_modules?: TargetModules;
  /** Steps of warm-up before pruning, and of final fine-tuning at target_r. */
  tinit: number;
  tfinal: number;
  /** Prune every deltaT steps between tinit and total_step - tfinal. */
  deltaT: number;
  beta1: number;
  beta2: number;
  orth_reg_weight: number;
  /** The schedule's length; when absent the trainer's total steps are used. */
  total_step: number | null;
  /** Which ranks are kept, per `<path>.lora_E.default` (written when saving a pruned adapter). */
  rank_pattern: Record<string, boolean[]> | null;
  base_model_name_or_path: string | null;
  seed: number;
}

export const ADALORA_KEYS = [
  ...COMMON_CONFIG_KEYS, "init_r", "target_r", "r", "lora_alpha", "lora_dropout", "target_modules", "tinit", "tfinal", "deltaT", "beta1", "beta2",
  "orth_reg_weight", "total_step", "rank_pattern", "alpha_pattern", "bias", "fan_in_fan_out", "modules_to_save", "init_lora_weights",
  "layers_to_transform", "layers_pattern", "use_rslora", "use_dora", "seed", "exclude_modules", "megatron_config", "megatron_core",
  "loftq_config", "layer_replication", "runtime_config", "lora_bias", "eva_config", "corda_config", "trainable_token_indices",
] as const;

export function adaLoraConfig(opts: Record<string, unknown>, method = "adalora"): AdaLoraConfig {
  checkKnownOptions(opts, ADALORA_KEYS, method);
  if (opts["bias"] !== undefined && opts["bias"] !== "none") throw new PeftError(`${method}: only bias="none" is supported`);
  if (opts["fan_in_fan_out"] === true) throw new PeftError(`${method}: fan_in_fan_out=true is not supported`);
  if (opts["use_dora"] === true) throw new PeftError(`${method}: use_dora is not supported by AdaLoRA`);
  const rp = opts["rank_pattern"];
  if (rp !== undefined && rp !== null && (typeof rp !== "object" || !Object.values(rp).every((v) => Array.isArray(v) && v.every((b) => typeof b === "boolean")))) {
    throw new PeftError(`${method}: rank_pattern must map "<module>.lora_E" names to lists of booleans, got ${JSON.stringify(rp)}`);
  }
  const initR = int(opts, "init_r", 12, method);
  const targetR = int(opts, "target_r", 8, method);
  if (targetR > initR) throw new PeftError(`${method}: target_r (${targetR}) must not exceed init_r (${initR})`);
  const total = opts["total_step"];
  const cfg: AdaLoraConfig = {
    init_r: initR,
    target_r: targetR,
    lora_alpha: num(opts, "lora_alpha", 8, method, (x) => x >= 0),
    lora_dropout: num(opts, "lora_dropout", 0, method, (x) => x >= 0 && x < 1),
    target_modules: parseTargets(opts["target_modules"], method),
    tinit: int(opts, "tinit", 0, method, 0),
    tfinal: int(opts, "tfinal", 0, method, 0),
    deltaT: int(opts, "deltaT", 1, method),
    beta1: num(opts, "beta1", 0.85, method, (x) => x >= 0 && x < 1),
    beta2: num(opts, "beta2", 0.85, method, (x) => x >= 0 && x < 1),
    orth_reg_weight: num(opts, "orth_reg_weight", 0.5, method, (x) => x >= 0),
    total_step: total === undefined || total === null ? null : int(opts, "total_step", 1, method),
    rank_pattern: (rp as Record<string, boolean[]> | undefined) ?? null,
    base_model_name_or_path: typeof opts["base_model_name_or_path"] === "string" ? (opts["base_model_name_or_path"] as string) : null,
    seed: int(opts, "seed", 0, method, 0),
  };
  if (cfg.total_step !== null && cfg.tinit >= cfg.total_step - cfg.tfinal) {
    throw new PeftError(`${method}: tinit (${cfg.tinit}) must be below total_step - tfinal (${cfg.total_step - cfg.tfinal}) so that the budgeting phase has steps`);
  }
  return cfg;
}
