/** Prefix tuning (Li & Liang 2021) / P-Tuning v2, as Hugging Face PEFT's `PrefixTuningConfig`. */
import { registerPeftMethod } from "../registry.ts";
import { prefixTuningConfig } from "./config.ts";
import { applyPrefixTuning, loadPrefixTuning } from "./tuner.ts";

export { type PrefixTuningConfig, prefixTuningConfig } from "./config.ts";
export { PrefixEncoder } from "./layer.ts";
export { applyPrefixTuning, loadPrefixTuning } from "./tuner.ts";

registerPeftMethod({
  name: "prefix-tuning",
  peftTypes: ["PREFIX_TUNING"],
  apply: (model, options) => applyPrefixTuning(model, prefixTuningConfig(options)),
  load: loadPrefixTuning,
});

// P-Tuning v2 (Liu et al. 2022) is prefix tuning (per-layer key/value prompts): the same method under its own name.
registerPeftMethod({
  name: "p-tuning-v2",
  peftTypes: [],
  apply: (model, options) => applyPrefixTuning(model, prefixTuningConfig(options)),
  load: loadPrefixTuning,
});
