/** QLoRA: LoRA over an NF4-quantized base (quantized bases are handled by dispatch in LoraLinear). */
import { registerPeftMethod } from "../registry.ts";
import { applyQLora, loadQLora } from "./tuner.ts";

export { NF4Linear } from "./layer.ts";
export { type QLoraModel, applyQLora, dequantizeModel, loadQLora, quantizeModelNF4 } from "./tuner.ts";

registerPeftMethod({
  name: "qlora",
  // Saved adapters are PEFT's LORA; loadPeft reads them with "lora" (use loadQLora for a 4-bit base).
  peftTypes: [],
  apply: applyQLora,
  load: loadQLora,
});
