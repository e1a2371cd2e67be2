/** Prompt tuning, as Hugging Face PEFT's `PromptTuningConfig` (random or text init). */
import { registerPeftMethod } from "../registry.ts";
import { promptTuningConfig } from "./config.ts";
import { applyPromptTuning, loadPromptTuning } from "./tuner.ts";

export { type PromptTuningConfig, promptTuningConfig } from "./config.ts";
export { PromptEmbedding, textInitIds } from "./layer.ts";
export { applyPromptTuning, loadPromptTuning } from "./tuner.ts";

registerPeftMethod({
  name: "prompt-tuning",
  peftTypes: ["PROMPT_TUNING"],
  apply: (model, options) => applyPromptTuning(model, promptTuningConfig(options)),
  load: loadPromptTuning,
});
