/** AdaLoRA (Zhang et al. 2023): SVD-form LoRA with an importance-driven rank budget, as PEFT's `AdaLoraConfig`. */
import { registerPeftMethod } from "../registry.ts";
import { adaLoraConfig } from "./config.ts";
import { applyAdaLora, loadAdaLora } from "./tuner.ts";

export { type AdaLoraConfig, adaLoraConfig } from "./config.ts";
export { SVDLinear } from "./layer.ts";
export { RankAllocator } from "./rankAllocator.ts";
export { applyAdaLora, loadAdaLora, orthogonalRegularization } from "./tuner.ts";

registerPeftMethod({
  name: "adalora",
  peftTypes: ["ADALORA"],
  apply: (model, options) => applyAdaLora(model, adaLoraConfig(options)),
  load: loadAdaLora,
});
