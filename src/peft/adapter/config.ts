/**
 * Houlsby bottleneck adapter config. Hugging Face PEFT has no such method, so adapter_config.json
 * uses graft's own peft_type "BOTTLENECK_ADAPTER" with PEFT-style keys.
 */
import { COMMON_CONFIG_KEYS, checkKnownOptions, int, num, parseTargets, str, type TargetModules } from "../targets.ts";

export type AdapterActivation = "relu" | "gelu" | "silu" | "tanh";

export interface AdapterConfig {
  /** Width of the bottleneck (down projection to this, up back to the layer's width). */
  bottleneck_size: number;
  non_linearity: AdapterActivation;
  adapter_dropout: number;
  /** Layers whose output gets an adapter; default: the attention output and MLP output projections. */
  target_modules?: TargetModules;
  base_model_name_or_path: string | null;
  seed: number;
}

export const ADAPTER_KEYS = [...COMMON_CONFIG_KEYS, "bottleneck_size", "r", "non_linearity", "adapter_dropout", "target_modules", "seed"] as const;

/** After attention (its output projection) and after the MLP (its down projection), as Houlsby et al. */
export const ADAPTER_DEFAULT_TARGETS: Record<string, string[]> = {
  qwen2: ["o_proj", "down_proj"],
  llama: ["o_proj", "down_proj"],
  gpt2: ["attn.c_proj", "mlp.c_proj"],
  bert: ["attention.output.dense", "output.dense"],
};

export function adapterConfig(opts: Record<string, unknown>, method = "adapter"): AdapterConfig {
  checkKnownOptions(opts, ADAPTER_KEYS, method);
  const size = int(opts, "bottleneck_size", int(opts, "r", 64, method), method);
  return {
    bottleneck_size: size,
    non_linearity: str<AdapterActivation>(opts, "non_linearity", "relu", method, ["relu", "gelu", "silu", "tanh"]),
    adapter_dropout: num(opts, "adapter_dropout", 0, method, (x) => x >= 0 && x < 1),
    target_modules: parseTargets(opts["target_modules"], method),
    base_model_name_or_path: typeof opts["base_model_name_or_path"] === "string" ? (opts["base_model_name_or_path"] as string) : null,
    seed: int(opts, "seed", 0, method, 0),
  };
}
