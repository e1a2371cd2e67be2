/**
 * The Hugging Face PEFT adapter layout: `adapter_config.json` (PEFT's keys) next to
 * `adapter_model.safetensors` (keys such as `base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight`).
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { type TensorMap, openSafetensors, writeFileAtomic, writeSafetensors } from "../formats/index.ts";
import { type CausalLM, entryToTensor } from "../models/index.ts";
import { StateDictError } from "../nn/index.ts";
import type { Tensor } from "../tensor/index.ts";
import { peftMethodForType } from "./registry.ts";
import { PeftError, type PeftModel } from "./types.ts";

export const ADAPTER_CONFIG = "adapter_config.json";
export const ADAPTER_WEIGHTS = "adapter_model.safetensors";
/** What PEFT puts in front of a module path of the wrapped model. */
export const PEFT_PREFIX = "base_model.model.";

/** Tensors as safetensors entries, in their dtype (float32 unless the adapter is bf16). */
export function toTensorMap(tensors: Map<string, Tensor>): TensorMap {
  const out: TensorMap = {};
  for (const [k, t] of tensors) {
    const c = t.detach().contiguous();
    const dtype = c.dtype === "bfloat16" ? "bfloat16" : "float32";
    const data = dtype === "float32" ? Float32Array.from(c.to("float32").data() as Float32Array) : Uint16Array.from(c.data() as Uint16Array);
    out[k] = { dtype, shape: [...c.shape], data };
  }
  return out;
}

/** Writes the two files into dir (each atomically; weights first, so a config always has its weights). */
export function writeAdapter(dir: string, config: Record<string, unknown>, tensors: Map<string, Tensor>): void {
  fs.mkdirSync(dir, { recursive: true });
  writeSafetensors(path.join(dir, ADAPTER_WEIGHTS), toTensorMap(tensors), { format: "pt" });
  writeFileAtomic(path.join(dir, ADAPTER_CONFIG), JSON.stringify(config, null, 2) + "\n");
}

/** Reads adapter_config.json and adapter_model.safetensors of an adapter directory. */
export function readAdapter(dir: string): { config: Record<string, unknown>; weights: Map<string, Tensor> } {
  const cfgPath = path.join(dir, ADAPTER_CONFIG);
  if (!fs.existsSync(cfgPath)) throw new PeftError(`${dir} is not a PEFT adapter directory: ${ADAPTER_CONFIG} is missing`);
  let config: unknown;
  try {
    config = JSON.parse(fs.readFileSync(cfgPath, "utf8"));
  } catch (e) {
    throw new PeftError(`${cfgPath}: invalid JSON (${(e as Error).message})`);
  }
  if (typeof config !== "object" || config === null || Array.isArray(config)) throw new PeftError(`${cfgPath}: expected a JSON object`);
  const weightsPath = path.join(dir, ADAPTER_WEIGHTS);
  if (!fs.existsSync(weightsPath)) {
    const bin = fs.existsSync(path.join(dir, "adapter_model.bin")) ? " (adapter_model.bin is not read: convert it to safetensors)" : "";
    throw new PeftError(`${dir}: ${ADAPTER_WEIGHTS} is missing${bin}`);
  }
  const reader = openSafetensors(weightsPath);
  const weights = new Map<string, Tensor>();
  for (const info of reader.tensors) weights.set(info.name, entryToTensor(info.name, reader.read(info.name)));
  return { config: config as Record<string, unknown>, weights };
}

/** Loads a PEFT-layout adapter (made by graft or by Hugging Face PEFT) onto `model`. */
export function loadPeft(model: CausalLM, adapterDir: string): PeftModel {
  const { config, weights } = readAdapter(adapterDir);
  const type = config["peft_type"];
  if (typeof type !== "string") throw new PeftError(`${path.join(adapterDir, ADAPTER_CONFIG)}: peft_type is missing`);
  try {
    return peftMethodForType(type).load(model, config, weights);
  } catch (e) {
    if (e instanceof PeftError || e instanceof StateDictError) {
      e.message = `${adapterDir}: ${e.message}`;
    }
    throw e;
  }
}

/**
 * Checks a file's adapter tensors against the ones the freshly built adapter expects, naming every
 * missing, unexpected and mis-shaped key.
 */
export function checkAdapterKeys(expected: Map<string, Tensor>, weights: Map<string, Tensor>, method: string): void {
  const missing = [...expected.keys()].filter((k) => !weights.has(k));
  const unexpected = [...weights.keys()].filter((k) => !expected.has(k));
  const shape = (t: Tensor) => `[${t.shape.join(", ")}]`;
  const misShaped = [...expected.entries()]
    .filter(([k, t]) => weights.has(k) && shape(weights.get(k)!) !== shape(t))
    .map(([k, t]) => `${k} (expected ${shape(t)}, file ${shape(weights.get(k)!)})`);
  if (missing.length || unexpected.length || misShaped.length) {
    const parts: string[] = [];
    if (missing.length) parts.push(`missing keys (${missing.length}): ${missing.join(", ")}`);
    if (unexpected.length) parts.push(`unexpected keys (${unexpected.length}): ${unexpected.join(", ")}`);
    if (misShaped.length) parts.push(`mis-shaped keys (${misShaped.length}): ${misShaped.join(", ")}`);
    throw new PeftError(`${ADAPTER_WEIGHTS} does not fit the ${method} adapter: ${parts.join("; ")}`);
  }
}
