/** LoraConfig: PEFT's keys and defaults (peft/tuners/lora/config.py), validated. */
import { bool, checkKnownOptions, COMMON_CONFIG_KEYS, num, int, parseTargets, type TargetModules } from "../targets.ts";
import { PeftError } from "../types.ts";

export interface LoraConfig {
  r: number;
  lora_alpha: number;
  lora_dropout: number;
  /** Undefined: the architecture's default (q_proj, v_proj for Qwen2). */
  target_modules?: TargetModules;
  use_rslora: boolean;
  /** true: A kaiming-uniform(a=√5), B zeros; "gaussian": A ~ N(0, 1/r), B zeros; false: both kaiming (not a no-op). */
  init_lora_weights: boolean | "gaussian";
  layers_to_transform: number[] | null;
  /** Per-module rank / alpha overrides: key = a module-name suffix (regex), as PEFT. */
  rank_pattern: Record<string, number>;
  alpha_pattern: Record<string, number>;
  base_model_name_or_path: string | null;
  /** Seed of the adapter's init and dropout (graft only; not written to adapter_config.json). */
  seed: number;
}

export const LORA_KEYS = [
  ...COMMON_CONFIG_KEYS, "r", "lora_alpha", "lora_dropout", "target_modules", "use_rslora", "init_lora_weights", "layers_to_transform",
  "layers_pattern", "rank_pattern", "alpha_pattern", "bias", "fan_in_fan_out", "modules_to_save", "use_dora", "seed",
  "exclude_modules", "megatron_config", "megatron_core", "loftq_config", "layer_replication", "runtime_config", "lora_bias",
  "eva_config", "corda_config", "trainable_token_indices", "use_qalora", "qalora_group_size", "target_parameters",
] as const;

function patternOf(v: unknown, key: string, method: string): Record<string, number> {
  if (v === undefined || v === null) return {};
  if (typeof v !== "object" || Array.isArray(v) || !Object.values(v).every((x) => typeof x === "number" && x > 0)) {
    throw new PeftError(`${method}: ${key} must map module names to positive numbers, got ${JSON.stringify(v)}`);
  }
  return v as Record<string, number>;
}

/** Options (flags or adapter_config.json) → LoraConfig; unsupported PEFT features are refused by name. */
export function loraConfig(opts: Record<string, unknown>, method = "lora", known: readonly string[] = LORA_KEYS): LoraConfig {
  checkKnownOptions(opts, known, method);
  const refuse = (key: string, ok: (v: unknown) => boolean, what: string) => {
    if (opts[key] !== undefined && opts[key] !== null && !ok(opts[key])) throw new PeftError(`${method}: ${key}=${JSON.stringify(opts[key])} is not supported (${what})`);
  };
  refuse("bias", (v) => v === "none", 'only bias="none"');
  refuse("fan_in_fan_out", (v) => v === false, "graft's Linear weights are [out, in]");
  refuse("use_dora", (v) => v === false, "DoRA is not implemented");
  refuse("modules_to_save", (v) => Array.isArray(v) && v.length === 0, "modules_to_save is not implemented");
  refuse("lora_bias", (v) => v === false, "lora_bias is not implemented");
  refuse("layer_replication", () => false, "layer_replication is not implemented");
  refuse("loftq_config", (v) => typeof v === "object" && Object.keys(v as object).length === 0, "LoftQ is not implemented");
  refuse("exclude_modules", () => false, "exclude_modules is not implemented");
  refuse("use_qalora", (v) => v === false, "QA-LoRA is not implemented");
  refuse("trainable_token_indices", () => false, "not implemented");
  refuse("target_parameters", (v) => Array.isArray(v) && v.length === 0, "not implemented");
  const init = opts["init_lora_weights"];
  if (init !== undefined && init !== true && init !== false && init !== "gaussian") {
    throw new PeftError(`${method}: init_lora_weights=${JSON.stringify(init)} is not supported (true, false or "gaussian")`);
  }
  const ltt = opts["layers_to_transform"];
  if (ltt !== undefined && ltt !== null && !(Number.isInteger(ltt) || (Array.isArray(ltt) && ltt.every(Number.isInteger)))) {
    throw new PeftError(`${method}: layers_to_transform must be a layer index or a list of them, got ${JSON.stringify(ltt)}`);
  }
  const r = int(opts, "r", 8, method);
  return {
    r,
    lora_alpha: num(opts, "lora_alpha", 8, method, (x) => x > 0),
    lora_dropout: num(opts, "lora_dropout", 0, method, (x) => x >= 0 && x < 1),
    target_modules: parseTargets(opts["target_modules"], method),
    use_rslora: bool(opts, "use_rslora", false, method),
    init_lora_weights: (init as boolean | "gaussian" | undefined) ?? true,
    layers_to_transform: ltt === undefined || ltt === null ? null : Array.isArray(ltt) ? (ltt as number[]) : [ltt as number],
    rank_pattern: patternOf(opts["rank_pattern"], "rank_pattern", method),
    alpha_pattern: patternOf(opts["alpha_pattern"], "alpha_pattern", method),
    base_model_name_or_path: typeof opts["base_model_name_or_path"] === "string" ? (opts["base_model_name_or_path"] as string) : null,
    seed: int(opts, "seed", 0, method, 0),
  };
}

/** PEFT's lookup of a per-module override: the first pattern key that matches the end of the path. */
export function patternValue(pattern: Record<string, number>, path: string, def: number): number {
  const key = Object.keys(pattern).find((k) => new RegExp(`(.*\\.)?(${k})$`).test(path));
  return key === undefined ? def : pattern[key]!;
}

/** scaling = alpha / r, or alpha / sqrt(r) with rsLoRA. */
export function loraScaling(alpha: number, r: number, rslora: boolean): number {
  return rslora ? alpha / Math.sqrt(r) : alpha / r;
}

/** adapter_config.json as PEFT writes it for this config. */
export function loraConfigJson(c: LoraConfig, targets: TargetModules): Record<string, unknown> {
  return {
    peft_type: "LORA",
    task_type: "CAUSAL_LM",
    base_model_name_or_path: c.base_model_name_or_path,
    inference_mode: true,
    r: c.r,
    lora_alpha: c.lora_alpha,
    lora_dropout: c.lora_dropout,
    target_modules: targets,
    use_rslora: c.use_rslora,
    init_lora_weights: c.init_lora_weights,
    layers_to_transform: c.layers_to_transform,
    layers_pattern: null,
    rank_pattern: c.rank_pattern,
    alpha_pattern: c.alpha_pattern,
    bias: "none",
    fan_in_fan_out: false,
    modules_to_save: null,
    use_dora: false,
    revision: null,
  };
}
