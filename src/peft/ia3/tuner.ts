/** IA3 tuner: wraps target Linears in IA3Linear; saves as PEFT's IA3. */
import { Generator } from "../../core/rng.ts";
import type { CausalLM } from "../../models/index.ts";
import type { Tensor } from "../../tensor/index.ts";
import { InjectedPeftModel } from "../InjectedPeftModel.ts";
import { findTargetLinears, knownOnly, matchesTarget, replaceModule } from "../targets.ts";
import { PeftError } from "../types.ts";
import { IA3_DEFAULTS, IA3_KEYS, type IA3Config, ia3Config } from "./config.ts";
import { IA3Linear } from "./layer.ts";

export function applyIA3(model: CausalLM, cfg: IA3Config, method = "ia3"): InjectedPeftModel {
  const defaults = IA3_DEFAULTS[model.config.model_type];
  const targets = cfg.target_modules ?? defaults?.targets;
  const ff = cfg.feedforward_modules ?? (cfg.target_modules === undefined ? defaults?.feedforward : undefined) ?? [];
  if (!targets) throw new PeftError(`${method}: no default target_modules for model_type "${model.config.model_type}"; pass target_modules`);
  const found = findTargetLinears(model, targets, method);
  const isFf = (p: string) => (typeof ff === "string" ? new RegExp(`^(?:${ff})$`).test(p) : ff.some((f) => p === f || p.endsWith(`.${f}`)));
  const notTargeted = found.length && typeof ff !== "string" ? ff.filter((f) => !found.some(([p]) => matchesTarget(p, [f]))) : [];
  if (notTargeted.length) throw new PeftError(`${method}: feedforward_modules ${JSON.stringify(notTargeted)} must be a subset of target_modules`);
  model.freeze();
  const generator = new Generator(cfg.seed);
  for (const [path, lin] of found) replaceModule(model, path, new IA3Linear(lin, isFf(path), cfg.init_ia3_weights, generator));
  return new InjectedPeftModel(model, method, {
    peft_type: "IA3",
    task_type: "CAUSAL_LM",
    base_model_name_or_path: cfg.base_model_name_or_path,
    inference_mode: true,
    target_modules: targets,
    feedforward_modules: ff,
    fan_in_fan_out: false,
    modules_to_save: null,
    init_ia3_weights: cfg.init_ia3_weights,
    revision: null,
  });
}

export function loadIA3(model: CausalLM, config: Record<string, unknown>, weights: Map<string, Tensor>): InjectedPeftModel {
  const pm = applyIA3(model, ia3Config(knownOnly(config, IA3_KEYS)));
  pm.loadAdapterState(weights);
  return pm;
}
