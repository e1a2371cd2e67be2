/** LoRA (Hu et al. 2021) with rsLoRA scaling, as Hugging Face PEFT's `LoraConfig` / `lora.Linear`. */
import { registerPeftMethod } from "../registry.ts";
import { loraConfig } from "./config.ts";
import { applyLora, loadLora } from "./tuner.ts";

export { type LoraConfig, loraConfig, loraConfigJson, loraScaling, patternValue, LORA_KEYS } from "./config.ts";
export { LoraLinear, type LinearLike, baseDtype, denseWeight, plainLinear } from "./layer.ts";
export { LoraModel, applyLora, loadLora } from "./tuner.ts";

registerPeftMethod({
  name: "lora",
  peftTypes: ["LORA"],
  apply: (model, options) => applyLora(model, loraConfig(options)),
  load: (model, config, weights) => loadLora(model, config, weights),
});
