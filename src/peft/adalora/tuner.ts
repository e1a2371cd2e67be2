/**
 * AdaLoRA tuner: SVDLinear on the targets, the orthogonal regulariser as extraLoss, and the rank
 * allocator run by onOptimizerStep (the trainer calls both). Saving drops the pruned ranks and
 * writes rank_pattern, as PEFT; loading resizes to rank_pattern with ranknum kept at init_r.
 */
import { Generator } from "../../core/rng.ts";
import type { CausalLM } from "../../models/index.ts";
import * as T from "../../tensor/index.ts";
import type { Tensor } from "../../tensor/index.ts";
import { PEFT_PREFIX } from "../adapterIO.ts";
import { InjectedPeftModel } from "../InjectedPeftModel.ts";
import { LORA_DEFAULT_TARGETS, defaultTargets, findTargetLinears, knownOnly, replaceModule } from "../targets.ts";
import { PeftError } from "../types.ts";
import { ADALORA_KEYS, type AdaLoraConfig, adaLoraConfig } from "./config.ts";
import { SVDLinear } from "./layer.ts";
import { RankAllocator } from "./rankAllocator.ts";

/** Mean over layers and over A, B of ‖AAᵀ - I‖_F and ‖BᵀB - I‖_F (PEFT AdaLoraModel.forward). */
export function orthogonalRegularization(layers: SVDLinear[]): Tensor | null {
  const terms: Tensor[] = [];
  for (const l of layers) {
    if (l.r === 0) continue;
    const eye = T.eye(l.r);
    for (const cov of [T.matmul(l.lora_A, l.lora_A.T), T.matmul(l.lora_B.T, l.lora_B)]) terms.push(T.sqrt(T.sum(T.square(T.sub(cov, eye)))));
  }
  if (!terms.length) return null;
  return T.div(terms.reduce((a, b) => T.add(a, b)), terms.length);
}

function patternKey(key: string): string {
  return key.replace(/\.default$/, "").replace(/\.lora_E$/, "");
}

export function applyAdaLora(model: CausalLM, cfg: AdaLoraConfig, method = "adalora"): InjectedPeftModel {
  const targets = cfg.target_modules ?? defaultTargets(LORA_DEFAULT_TARGETS, model, method);
  const found = findTargetLinears(model, targets, method);
  model.freeze();
  const generator = new Generator(cfg.seed);
  const layers: [string, SVDLinear][] = found.map(([path, lin]) => {
    const l = new SVDLinear(lin, cfg.init_r, cfg.lora_alpha, cfg.lora_dropout, generator);
    replaceModule(model, path, l);
    return [path, l];
  });
  const allocator = new RankAllocator(cfg, layers);
  if (cfg.rank_pattern) allocator.rankPattern = cfg.rank_pattern;
  const svd = layers.map(([, l]) => l);
  const peftConfig = {
    peft_type: "ADALORA",
    task_type: "CAUSAL_LM",
    base_model_name_or_path: cfg.base_model_name_or_path,
    inference_mode: true,
    r: cfg.init_r,
    init_r: cfg.init_r,
    target_r: cfg.target_r,
    lora_alpha: cfg.lora_alpha,
    lora_dropout: cfg.lora_dropout,
    target_modules: targets,
    tinit: cfg.tinit,
    tfinal: cfg.tfinal,
    deltaT: cfg.deltaT,
    beta1: cfg.beta1,
    beta2: cfg.beta2,
    orth_reg_weight: cfg.orth_reg_weight,
    total_step: cfg.total_step,
    rank_pattern: null,
    bias: "none",
    fan_in_fan_out: false,
    modules_to_save: null,
    init_lora_weights: true,
    use_dora: false,
    revision: null,
  };
  const pm = new InjectedPeftModel(model, method, peftConfig, {
    extraLoss: () => {
      if (!pm.training || cfg.orth_reg_weight === 0) return null;
      const reg = orthogonalRegularization(svd);
      return reg ? T.mul(reg, cfg.orth_reg_weight) : null;
    },
    onOptimizerStep: (step, totalSteps) => allocator.step(step, totalSteps),
    configForSave: () => ({ rank_pattern: allocator.rankPattern, total_step: cfg.total_step }),
    stateForSave: (state) => {
      const pattern = allocator.rankPattern;
      if (!pattern) return state;
      const out = new Map(state);
      for (const [key, keep] of Object.entries(pattern)) {
        const idx = keep.flatMap((k, i) => (k ? [i] : []));
        const p = PEFT_PREFIX + patternKey(key);
        const pick = (t: Tensor, dim: number) => (idx.length ? T.cat(idx.map((i) => t.slice(dim, i, i + 1)), dim) : T.zeros(dim === 0 ? [0, t.shape[1]!] : [t.shape[0]!, 0]));
        for (const [name, dim] of [["lora_A", 0], ["lora_E", 0], ["lora_B", 1]] as const) {
          const t = out.get(`${p}.${name}`);
          // A layer already resized (loaded from a pruned adapter) is written as it is.
          if (t && t.shape[dim] === keep.length) out.set(`${p}.${name}`, pick(t, dim));
        }
      }
      return out;
    },
  });
  return pm;
}

export function loadAdaLora(model: CausalLM, config: Record<string, unknown>, weights: Map<string, Tensor>): InjectedPeftModel {
  const cfg = adaLoraConfig(knownOnly(config, ADALORA_KEYS));
  const pm = applyAdaLora(model, cfg);
  if (cfg.rank_pattern) {
    const byPath = new Map(pm.adapterLayers());
    for (const [key, keep] of Object.entries(cfg.rank_pattern)) {
      const l = byPath.get(patternKey(key));
      if (!(l instanceof SVDLinear)) throw new PeftError(`adapter_config.json: rank_pattern names "${key}", which is not an AdaLoRA layer of the model`);
      if (keep.length !== l.r) throw new PeftError(`adapter_config.json: rank_pattern["${key}"] has ${keep.length} entries for init_r=${l.r}`);
      l.resize(keep);
    }
  }
  pm.loadAdapterState(weights);
  return pm;
}
