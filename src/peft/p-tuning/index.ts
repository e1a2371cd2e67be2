/** P-tuning v1 (MLP or LSTM prompt encoder), as Hugging Face PEFT's `PromptEncoderConfig`. */
import { registerPeftMethod } from "../registry.ts";
import { pTuningConfig } from "./config.ts";
import { applyPTuning, loadPTuning } from "./tuner.ts";

export { type PTuningConfig, pTuningConfig } from "./config.ts";
export { BiLSTM } from "./lstm.ts";
export { PTuningEncoder } from "./layer.ts";
export { applyPTuning, loadPTuning } from "./tuner.ts";

registerPeftMethod({
  name: "p-tuning",
  peftTypes: ["P_TUNING"],
  apply: (model, options) => applyPTuning(model, pTuningConfig(options)),
  load: loadPTuning,
});
