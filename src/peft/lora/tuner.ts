/** LoRA tuner: freezes the base, wraps the target Linears in LoraLinear, saves as PEFT's LORA. */
import { Generator } from "../../core/rng.ts";
import type { CausalLM } from "../../models/index.ts";
import type { Tensor } from "../../tensor/index.ts";
import { InjectedPeftModel } from "../InjectedPeftModel.ts";
import { LORA_DEFAULT_TARGETS, defaultTargets, findTargetLinears, knownOnly, replaceModule } from "../targets.ts";
import { LORA_KEYS, type LoraConfig, loraConfig, loraConfigJson, patternValue } from "./config.ts";
import { type LinearLike, LoraLinear } from "./layer.ts";

/** LoRA's model: an InjectedPeftModel whose layers can also merge/unmerge in place. */
export class LoraModel extends InjectedPeftModel {
  constructor(base: CausalLM, method: string, peftConfig: Record<string, unknown>) {
    super(base, method, peftConfig);
  }

  loraLayers(): LoraLinear[] {
    return this.adapterLayers()
      .map(([, l]) => l)
      .filter((l): l is LoraLinear => l instanceof LoraLinear);
  }

  /** Folds ΔW into every base weight, keeping the wrappers (PEFT `merge_adapter`). */
  mergeAdapter(): void {
    for (const l of this.loraLayers()) l.merge();
  }

  /** Undoes mergeAdapter (PEFT `unmerge_adapter`). */
  unmergeAdapter(): void {
    for (const l of this.loraLayers()) l.unmerge();
  }
}

/**
 * Wraps `model` with LoRA. `wrapBase` turns each target's base before wrapping (QLoRA quantizes
 * it); the model is frozen first, so only lora_A / lora_B train.
 */
export function applyLora(model: CausalLM, cfg: LoraConfig, method = "lora", wrapBase?: (path: string, base: LinearLike) => LinearLike): LoraModel {
  const targets = cfg.target_modules ?? defaultTargets(LORA_DEFAULT_TARGETS, model, method);
  const found = findTargetLinears(model, targets, method, cfg.layers_to_transform);
  model.freeze();
  const generator = new Generator(cfg.seed);
  for (const [path, lin] of found) {
    const r = patternValue(cfg.rank_pattern, path, cfg.r);
    const alpha = patternValue(cfg.alpha_pattern, path, cfg.lora_alpha);
    const base = wrapBase ? wrapBase(path, lin) : lin;
    replaceModule(model, path, new LoraLinear(base, { r, alpha, dropout: cfg.lora_dropout, rslora: cfg.use_rslora, init: cfg.init_lora_weights, generator }));
  }
  return new LoraModel(model, method, loraConfigJson(cfg, targets));
}

export function loadLora(model: CausalLM, config: Record<string, unknown>, weights: Map<string, Tensor>, method = "lora"): LoraModel {
  const pm = applyLora(model, loraConfig(knownOnly(config, LORA_KEYS), method), method);
  pm.loadAdapterState(weights);
  return pm;
}
