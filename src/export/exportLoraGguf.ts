/**
 * `--gguf-adapter`: a LoRA adapter as llama.cpp's convert_lora_to_gguf writes it, for `llama-cli
 * --lora` and Ollama's ADAPTER: general.type = "adapter", adapter.type = "lora",
 * adapter.lora.alpha, and per target `<gguf name>.lora_a` (PyTorch [r, in]) and `.lora_b`
 * ([out, r]). llama.cpp scales by alpha / r, so rsLoRA's alpha/√r is written as alpha·√r;
 * when the layers' scalings differ (rank_pattern / alpha_pattern) the scaling is folded into
 * lora_b and alpha is 0 (llama.cpp then scales by 1).
 */
import * as path from "node:path";
import { type GgufTensorInput, writeGguf } from "../formats/index.ts";
import { LoraLinear, type PeftModel } from "../peft/index.ts";
import * as T from "../tensor/index.ts";
import { ExportError } from "./ExportError.ts";
import { ggufTensorName } from "./exportGguf.ts";

export function exportLoraGguf(pm: PeftModel, file: string, opts: { name?: string } = {}): { tensors: number; alpha: number } {
  const arch = pm.base.config.model_type;
  if (arch !== "qwen2" && arch !== "llama") throw new ExportError(`GGUF adapter export supports qwen2 and llama bases, not "${arch}"`);
  const layers = [...pm.base.namedModules()].filter((e): e is [string, LoraLinear] => e[1] instanceof LoraLinear);
  if (pm.peftConfig["peft_type"] !== "LORA" || layers.length === 0) {
    throw new ExportError(`GGUF adapters are LoRA adapters; this is a ${String(pm.peftConfig["peft_type"] ?? pm.method)} adapter (merge it and export the full model with --gguf)`);
  }
  // llama.cpp: scale = alpha / r with r = lora_b's rank. One alpha must give every layer its scaling.
  const alphas = layers.map(([, l]) => l.scaling * l.r);
  const uniform = alphas.every((a) => Math.abs(a - alphas[0]!) < 1e-6 * Math.abs(alphas[0]!));
  const alpha = uniform ? alphas[0]! : 0;
  const tensors: Record<string, GgufTensorInput> = {};
  for (const [p, l] of layers) {
    if (l.merged) throw new ExportError(`${p}: the adapter is merged into the base; unmerge it before exporting the adapter`);
    const base = ggufTensorName(`${p}.weight`);
    if (!base) throw new ExportError(`GGUF adapter export: no llama.cpp name for "${p}"`);
    const a = l.lora_A.weight.detach().to("float32").contiguous();
    const b = T.noGrad(() => (uniform ? l.lora_B.weight : T.mul(l.lora_B.weight, l.scaling))).detach().to("float32").contiguous();
    tensors[`${base}.lora_a`] = { dtype: "float32", shape: [...a.shape], data: Float32Array.from(a.data() as Float32Array) };
    tensors[`${base}.lora_b`] = { dtype: "float32", shape: [...b.shape], data: Float32Array.from(b.data() as Float32Array) };
  }
  writeGguf(file, {
    metadata: {
      "general.architecture": arch,
      "general.type": "adapter",
      "general.name": opts.name ?? path.basename(file, ".gguf"),
      "adapter.type": "lora",
      "adapter.lora.alpha": { type: "float32", value: alpha },
    },
    tensors,
  });
  return { tensors: Object.keys(tensors).length, alpha };
}
