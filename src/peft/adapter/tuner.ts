/** Bottleneck-adapter tuner: wraps the attention-output and MLP-output projections. */
import { Generator } from "../../core/rng.ts";
import type { CausalLM } from "../../models/index.ts";
import type { Tensor } from "../../tensor/index.ts";
import { InjectedPeftModel } from "../InjectedPeftModel.ts";
import { defaultTargets, findTargetLinears, knownOnly, replaceModule } from "../targets.ts";
import { ADAPTER_DEFAULT_TARGETS, ADAPTER_KEYS, type AdapterConfig, adapterConfig } from "./config.ts";
import { BottleneckAdapter } from "./layer.ts";

export function applyAdapter(model: CausalLM, cfg: AdapterConfig, method = "adapter"): InjectedPeftModel {
  const targets = cfg.target_modules ?? defaultTargets(ADAPTER_DEFAULT_TARGETS, model, method);
  const found = findTargetLinears(model, targets, method);
  model.freeze();
  const generator = new Generator(cfg.seed);
  for (const [path, lin] of found) replaceModule(model, path, new BottleneckAdapter(lin, cfg.bottleneck_size, cfg.non_linearity, cfg.adapter_dropout, generator));
  const peftConfig = {
    peft_type: "BOTTLENECK_ADAPTER",
    task_type: "CAUSAL_LM",
    base_model_name_or_path: cfg.base_model_name_or_path,
    inference_mode: true,
    bottleneck_size: cfg.bottleneck_size,
    non_linearity: cfg.non_linearity,
    adapter_dropout: cfg.adapter_dropout,
    target_modules: targets,
  };
  return new InjectedPeftModel(model, method, peftConfig, { mergeable: false });
}

export function loadAdapter(model: CausalLM, config: Record<string, unknown>, weights: Map<string, Tensor>): InjectedPeftModel {
  const pm = applyAdapter(model, adapterConfig(knownOnly(config, ADAPTER_KEYS)));
  pm.loadAdapterState(weights);
  return pm;
}
