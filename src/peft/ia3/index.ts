/** IA3 (Liu et al. 2022, "(IA)^3"): learned rescaling vectors, as Hugging Face PEFT's `IA3Config`. */
import { registerPeftMethod } from "../registry.ts";
import { ia3Config } from "./config.ts";
import { applyIA3, loadIA3 } from "./tuner.ts";

export { type IA3Config, ia3Config, IA3_DEFAULTS } from "./config.ts";
export { IA3Linear } from "./layer.ts";
export { applyIA3, loadIA3 } from "./tuner.ts";

registerPeftMethod({
  name: "ia3",
  peftTypes: ["IA3"],
  apply: (model, options) => applyIA3(model, ia3Config(options)),
  load: (model, config, weights) => loadIA3(model, config, weights),
});
