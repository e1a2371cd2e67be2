/**
 * model_type → architecture. `loadModel(dir)` reads config.json and the safetensors weights (single
 * file or sharded), maps HF keys through the architecture's `sanitize()` and loads strictly;
 * `createModel(config)` builds a randomly initialised model for pretraining.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import type { DType } from "../core/dtype.ts";
import { type TensorMap, type TensorReader, openSafetensorsModel, writeFileAtomic, writeShardedSafetensors } from "../formats/index.ts";
import type { Tensor } from "../tensor/index.ts";
import { bertEntry } from "./bert.ts";
import { gpt2Entry } from "./gpt2.ts";
import { qwen2Entry } from "./qwen2.ts";
import { type CausalLM, type CreateOptions, type Model, type ModelConfig, type ModelEntry, ModelError, isCausalLM } from "./types.ts";
import { assignWeights, assignWeightsStreaming, buildQuantization, entryToTensor, quantizeLinears, readAll, withEmptyWeights } from "./weights.ts";

const registry = new Map<string, ModelEntry>();

export function registerModel(modelType: string, entry: ModelEntry): void {
  registry.set(modelType, entry);
}

registerModel("qwen2", qwen2Entry);
registerModel("llama", qwen2Entry);
registerModel("gpt2", gpt2Entry);
registerModel("bert", bertEntry);

export function registeredModelTypes(): string[] {
  return [...registry.keys()].sort();
}

export function modelEntry(modelType: string): ModelEntry {
  const e = registry.get(modelType);
  if (!e) throw new ModelError(`model_type "${modelType}" is not supported (supported: ${registeredModelTypes().join(", ")})`);
  return e;
}

/** Reads and validates dir/config.json. */
export function readModelConfig(dir: string): ModelConfig {
  const file = path.join(dir, "config.json");
  if (!fs.existsSync(file)) throw new ModelError(`config.json is missing in ${dir}`);
  let raw: unknown;
  try {
    raw = JSON.parse(fs.readFileSync(file, "utf8"));
  } catch (e) {
    throw new ModelError(`${file} is not valid JSON: ${(e as Error).message}`);
  }
  if (typeof raw !== "object" || raw === null || typeof (raw as ModelConfig).model_type !== "string") {
    throw new ModelError(`${file} has no "model_type"`);
  }
  const r = raw as Record<string, unknown> & { model_type: string };
  return modelEntry(r.model_type).config(r);
}

/**
 * A randomly initialised model from a config.json object. With opts.quantize "nf4" every Linear but
 * lm_head is an NF4Linear (qwen2/llama quantize each layer right after its init; other
 * architectures after the whole init).
 */
export function createModel(config: Record<string, unknown> & { model_type: string }, opts: CreateOptions = {}): Model {
  const entry = modelEntry(config.model_type);
  const q = buildQuantization(opts);
  const model = entry.create(entry.config(config), opts);
  if (q) quantizeLinears(model, q);
  return model;
}

/**
 * Loads a model directory (config.json + model.safetensors or a sharded index). Weights are cast to
 * opts.dtype (default float32). Loading is strict: any missing, unexpected or mis-shaped key throws
 * a StateDictError naming all of them. The model comes back in eval mode (dropout off), as
 * transformers' from_pretrained; createModel's is in training mode. With opts.quantize "nf4"
 * (from_pretrained's load_in_4bit) the model is built with empty weights and the tensors are read
 * one at a time, each Linear quantized as soon as its weight and bias are in. Without it, a model
 * whose entry sanitizes tensor by tensor (qwen2, llama) gets its parameters packed first
 * (Module.packParameters) and each tensor read straight into its place.
 */
export function loadModel(dir: string, opts: CreateOptions = {}): Model {
  const config = readModelConfig(dir);
  const entry = modelEntry(config.model_type);
  const q = buildQuantization(opts);
  const model = q ? withEmptyWeights(() => entry.build(config, opts)) : entry.build(config, opts);
  const reader = openSafetensorsModel(dir);
  const dtype = opts.dtype ?? "float32";
  const source = path.basename(reader.path);
  try {
    if (!q && entry.sanitizesPerTensor) {
      // Packed parameters first (zeros, untouched until written), then each tensor read and copied
      // into its place: the weights' memory once, plus one tensor.
      model.packParameters();
      assignWeightsStreaming(model, sanitizedOneByOne(reader, entry, config, model), null, dtype, source, true);
    } else if (!q) assignWeights(model, entry.sanitize(readAll(reader), config, model), dtype, source);
    else if (entry.sanitizesPerTensor) assignWeightsStreaming(model, sanitizedOneByOne(reader, entry, config, model), q, dtype, source);
    else assignWeightsStreaming(model, entry.sanitize(readAll(reader), config, model), q, dtype, source);
  } finally {
    reader.close();
  }
  return model.eval();
}

/** The checkpoint's tensors read and sanitized one at a time (for entries that sanitize per tensor). */
function* sanitizedOneByOne(reader: TensorReader, entry: ModelEntry, config: ModelConfig, model: Model): Generator<[string, Tensor]> {
  for (const info of reader.tensors) yield* entry.sanitize(new Map([[info.name, entryToTensor(info.name, reader.read(info.name))]]), config, model);
}

/** loadModel for a decoder-only model; throws when the directory holds another kind. */
export function loadCausalLM(dir: string, opts: CreateOptions = {}): CausalLM {
  const m = loadModel(dir, opts);
  if (!isCausalLM(m)) throw new ModelError(`${dir} holds a ${m.config.model_type} model (${m.constructor.name}), not a causal LM`);
  return m;
}

/** Loads HF-named weights (e.g. a state dict from another file) into an existing model, strictly. */
export function loadWeightsInto(model: Model, weights: Map<string, Tensor>, opts: { dtype?: DType; source?: string } = {}): void {
  const entry = modelEntry(model.config.model_type);
  assignWeights(model, entry.sanitize(weights, model.config, model), opts.dtype, opts.source ?? "weights");
}

export interface SaveOptions {
  /** Cast floating weights to this dtype in the file (default: as they are). */
  dtype?: DType;
  /** Shard when the weights exceed this many bytes (default 5 GB, as transformers). */
  maxShardBytes?: number;
}

/**
 * Writes a model as an HF directory: config.json and model.safetensors (or shards + index) with
 * HF key names and layouts, so loadModel, transformers and converters read it back.
 */
export function saveModel(model: Model, dir: string, opts: SaveOptions = {}): string[] {
  const entry = modelEntry(model.config.model_type);
  let state = new Map(Object.entries(model.stateDict()));
  if (entry.toCheckpoint) state = entry.toCheckpoint(state, model.config);
  const tensors: TensorMap = {};
  for (const [k, t0] of state) {
    const t = opts.dtype && t0.dtype !== opts.dtype && (t0.dtype === "float32" || t0.dtype === "bfloat16" || t0.dtype === "float64") ? t0.to(opts.dtype) : t0;
    tensors[k] = { dtype: t.dtype, shape: [...t.shape], data: t.contiguous().data() };
  }
  fs.mkdirSync(dir, { recursive: true });
  const config = { ...model.config, ...(opts.dtype ? { torch_dtype: opts.dtype } : {}) };
  writeFileAtomic(path.join(dir, "config.json"), JSON.stringify(config, null, 2) + "\n");
  return writeShardedSafetensors(dir, tensors, { maxShardBytes: opts.maxShardBytes, metadata: { format: "pt" } });
}
