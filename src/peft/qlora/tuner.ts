/**
 * QLoRA (Dettmers et al. 2023) = LoRA over a 4-bit base: every Linear of the base but the output
 * layer is replaced by an NF4Linear (bitsandbytes `load_in_4bit`, nf4, double quant), then LoRA
 * wraps the targets. A base created or loaded with quantize: "nf4" is NF4 already and is only
 * wrapped (the same codes as quantizing here, without the full-precision model ever existing).
 * The adapter is saved as PEFT's LORA (as PEFT does for QLoRA); merge gives a full-precision model
 * (dequantized base + ΔW).
 */
import type { CausalLM } from "../../models/index.ts";
import type { Linear, Module } from "../../nn/index.ts";
import { isNF4Target } from "../../quant/index.ts";
import type { Tensor } from "../../tensor/index.ts";
import { LORA_KEYS, type LoraModel, applyLora, loraConfig, plainLinear } from "../lora/index.ts";
import { knownOnly, moduleAt, replaceModule } from "../targets.ts";
import { PeftError } from "../types.ts";
import { NF4Linear } from "./layer.ts";

export const QLORA_KEYS = [...LORA_KEYS, "bnb_4bit_quant_type", "bnb_4bit_use_double_quant", "bnb_4bit_blocksize"] as const;

/**
 * Replaces every Linear of `model` but lm_head by an NF4Linear, in place, and reports the NF4 base:
 * bytes of its Linear weights in float32 and in NF4. Layers that are NF4 already (a model created
 * or loaded with quantize: "nf4") are kept as they are, never quantized twice; a block size other
 * than theirs is an error.
 */
export function quantizeModelNF4(model: Module, blockSize?: number): { fp32Bytes: number; nf4Bytes: number; layers: number } {
  for (const [path, m] of model.namedModules()) {
    if (m instanceof NF4Linear && blockSize !== undefined && m.qweight.blockSize !== blockSize) {
      throw new PeftError(`qlora: bnb_4bit_blocksize=${blockSize}, but ${path} is already NF4 with block size ${m.qweight.blockSize} (build the model with quantBlockSize: ${blockSize})`);
    }
  }
  // Paths, not modules: each full-precision Linear is garbage as soon as it is replaced.
  const paths = [...model.namedModules()].filter(([p, m]) => isNF4Target(p, m)).map(([p]) => p);
  for (const path of paths) replaceModule(model, path, new NF4Linear(moduleAt(model, path) as Linear, blockSize));
  let fp32Bytes = 0;
  let nf4 = 0;
  let layers = 0;
  for (const [, m] of model.namedModules()) {
    if (!(m instanceof NF4Linear)) continue;
    fp32Bytes += m.inFeatures * m.outFeatures * 4;
    nf4 += m.weightBytes;
    layers++;
  }
  return { fp32Bytes, nf4Bytes: nf4, layers };
}

/** Replaces every NF4Linear by a full-precision Linear holding its dequantized weight. */
export function dequantizeModel(model: Module): void {
  for (const [path, m] of [...model.namedModules()]) {
    if (m instanceof NF4Linear) replaceModule(model, path, plainLinear(m.dequantizeWeight(), m.bias, m.computeDtype));
  }
}

/** The bnb_4bit_* options checked; blockSize is undefined when not given (64, or the NF4 base's own). */
function qloraOptions(opts: Record<string, unknown>): { lora: Record<string, unknown>; blockSize: number | undefined } {
  const { bnb_4bit_quant_type: type, bnb_4bit_use_double_quant: dq, bnb_4bit_blocksize: bs, ...lora } = opts;
  if (type !== undefined && type !== "nf4") throw new PeftError(`qlora: bnb_4bit_quant_type=${JSON.stringify(type)} is not supported (only "nf4")`);
  if (dq !== undefined && dq !== true && dq !== "true") throw new PeftError("qlora: bnb_4bit_use_double_quant=false is not supported (the absmax is always double-quantized)");
  if (bs === undefined) return { lora, blockSize: undefined };
  const blockSize = Number(bs);
  if (!Number.isInteger(blockSize) || blockSize <= 0 || blockSize % 2) throw new PeftError(`qlora: bnb_4bit_blocksize must be a positive even integer, got ${JSON.stringify(bs)}`);
  return { lora, blockSize };
}

export interface QLoraModel extends LoraModel {
  /** Bytes of the base Linear weights in float32 and in NF4 (+ absmax). */
  readonly memory: { fp32Bytes: number; nf4Bytes: number; layers: number };
}

function withQuantBase(pm: LoraModel, memory: QLoraModel["memory"]): QLoraModel {
  const merge = pm.merge!;
  pm.merge = () => {
    const m = merge();
    dequantizeModel(m);
    return m;
  };
  return Object.assign(pm, { memory });
}

export function applyQLora(model: CausalLM, options: Record<string, unknown>): QLoraModel {
  const { lora, blockSize } = qloraOptions(options);
  const cfg = loraConfig(lora, "qlora", QLORA_KEYS);
  const memory = quantizeModelNF4(model, blockSize);
  return withQuantBase(applyLora(model, cfg, "qlora"), memory);
}

/** Loads a LORA adapter onto the 4-bit-quantized base (what the adapter was trained against). */
export function loadQLora(model: CausalLM, config: Record<string, unknown>, weights: Map<string, Tensor>): QLoraModel {
  const memory = quantizeModelNF4(model);
  const pm = applyLora(model, loraConfig(knownOnly(config, LORA_KEYS), "qlora"), "qlora");
  pm.loadAdapterState(weights);
  return withQuantBase(pm, memory);
}
