/**
 * `--gguf`: a full model as a llama.cpp / Ollama GGUF v3 file (qwen2 or llama architecture):
 * hyper-parameters under `<arch>.*`, the tokenizer (ggufTokenizer.ts) with its chat template, and
 * the tensors under llama.cpp names (token_embd, blk.N.attn_q, ..., output_norm; `output` only
 * when the embeddings are not tied). f16 / q8_0 apply to matrices; norms and biases stay F32, and
 * a matrix whose rows are not a multiple of 32 falls back to F16 under q8_0 (as llama.cpp does).
 */
import * as path from "node:path";
import type { GgmlTypeName, GgufTensorInput, GgufTypedValue, GgufValue } from "../formats/index.ts";
import { writeGguf } from "../formats/index.ts";
import type { CausalLM, Qwen2Config } from "../models/index.ts";
import { ExportError } from "./ExportError.ts";
import { ggufTokenizerMetadata } from "./ggufTokenizer.ts";

export type GgufExportType = "f32" | "f16" | "q8_0";

const FILE_TYPE: Record<GgufExportType, number> = { f32: 0, f16: 1, q8_0: 7 };

const LAYER_NAMES: Record<string, string> = {
  "self_attn.q_proj": "attn_q",
  "self_attn.k_proj": "attn_k",
  "self_attn.v_proj": "attn_v",
  "self_attn.o_proj": "attn_output",
  "mlp.gate_proj": "ffn_gate",
  "mlp.up_proj": "ffn_up",
  "mlp.down_proj": "ffn_down",
  input_layernorm: "attn_norm",
  post_attention_layernorm: "ffn_norm",
};

/** HF checkpoint key → llama.cpp tensor name (null for keys GGUF does not carry). */
export function ggufTensorName(key: string): string | null {
  if (key === "model.embed_tokens.weight") return "token_embd.weight";
  if (key === "model.norm.weight") return "output_norm.weight";
  if (key === "lm_head.weight") return "output.weight";
  const m = /^model\.layers\.(\d+)\.(.+)\.(weight|bias)$/.exec(key);
  if (!m) return null;
  const name = LAYER_NAMES[m[2]!];
  return name ? `blk.${m[1]}.${name}.${m[3]}` : null;
}

function archOf(model: CausalLM): "qwen2" | "llama" {
  const t = model.config.model_type;
  if (t !== "qwen2" && t !== "llama") throw new ExportError(`GGUF export supports qwen2 and llama models, not model_type "${t}"`);
  return t;
}

/** The `<arch>.*` and `general.*` metadata of a qwen2/llama config. */
export function ggufModelMetadata(model: CausalLM, type: GgufExportType, name: string): Record<string, GgufValue | GgufTypedValue> {
  const arch = archOf(model);
  const c = model.config as Qwen2Config;
  if (c.rope_scaling) throw new ExportError(`GGUF export: rope_scaling ${JSON.stringify(c.rope_scaling)} is not written yet; export without it`);
  const u32 = (value: number): GgufTypedValue => ({ type: "uint32", value });
  const f32 = (value: number): GgufTypedValue => ({ type: "float32", value });
  return {
    "general.architecture": arch,
    "general.type": "model",
    "general.name": name,
    "general.file_type": u32(FILE_TYPE[type]),
    "general.quantization_version": u32(2),
    [`${arch}.block_count`]: u32(c.num_hidden_layers),
    [`${arch}.context_length`]: u32(c.max_position_embeddings),
    [`${arch}.embedding_length`]: u32(c.hidden_size),
    [`${arch}.feed_forward_length`]: u32(c.intermediate_size),
    [`${arch}.attention.head_count`]: u32(c.num_attention_heads),
    [`${arch}.attention.head_count_kv`]: u32(c.num_key_value_heads),
    [`${arch}.rope.freq_base`]: f32(c.rope_theta),
    [`${arch}.attention.layer_norm_rms_epsilon`]: f32(c.rms_norm_eps),
    ...(arch === "llama" ? { "llama.rope.dimension_count": u32(c.head_dim), "llama.vocab_size": u32(c.vocab_size) } : {}),
  };
}

function tensorType(shape: readonly number[], type: GgufExportType): GgmlTypeName {
  if (shape.length < 2 || type === "f32") return "F32";
  if (type === "q8_0" && shape[shape.length - 1]! % 32 === 0) return "Q8_0";
  return "F16";
}

export interface GgufExportOptions {
  type?: GgufExportType;
  /** general.name (default: the output file's base name). */
  name?: string;
}

/** The GGUF tensors of a plain (merged) model, by llama.cpp name. */
export function ggufTensors(model: CausalLM, type: GgufExportType): Record<string, GgufTensorInput> {
  const tensors: Record<string, GgufTensorInput> = {};
  for (const [key, p] of model.namedParameters()) {
    const name = ggufTensorName(key);
    if (!name) throw new ExportError(`GGUF export: no llama.cpp name for parameter "${key}" (merge the adapter first)`);
    const t = p.detach().to("float32").contiguous();
    tensors[name] = { dtype: "float32", shape: [...t.shape], data: Float32Array.from(t.data() as Float32Array), type: tensorType(t.shape, type) };
  }
  return tensors;
}

/** Writes `model` (merged, plain layers) with the tokenizer of `tokenizerDir` to `file`, atomically. */
export function exportGguf(model: CausalLM, tokenizerDir: string, file: string, opts: GgufExportOptions = {}): { tensors: number; eosTokenId: number | null } {
  const type = opts.type ?? "f16";
  if (!(type in FILE_TYPE)) throw new ExportError(`--type must be f32, f16 or q8_0, got "${type}"`);
  const wrapped = [...model.namedModules()].find(([, m]) => (m as { isLinearLike?: boolean }).isLinearLike === true);
  if (wrapped) throw new ExportError(`GGUF export: "${wrapped[0]}" is a ${wrapped[1].constructor.name}; merge the adapter first`);
  const tok = ggufTokenizerMetadata(tokenizerDir, model.config.vocab_size, model.config);
  const tensors = ggufTensors(model, type);
  writeGguf(file, { metadata: { ...ggufModelMetadata(model, type, opts.name ?? path.basename(file, ".gguf")), ...tok.metadata }, tensors });
  return { tensors: Object.keys(tensors).length, eosTokenId: tok.eosTokenId };
}
