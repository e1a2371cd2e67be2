/**
 * `--merged`: a plain Hugging Face model directory (config.json, model.safetensors with HF keys,
 * tokenizer files, generation_config.json) that transformers and graft load as any other model.
 * Each file is written atomically.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import type { DType } from "../core/dtype.ts";
import { writeFileAtomic } from "../formats/index.ts";
import { type CausalLM, type Model, saveModel } from "../models/index.ts";
import { isAdapterLayer } from "../peft/index.ts";
import { ExportError } from "./ExportError.ts";

/** Files of a tokenizer / generation setup copied beside exported weights. */
export const TOKENIZER_FILES = /^(tokenizer\.json|tokenizer_config\.json|special_tokens_map\.json|generation_config\.json|chat_template\.(jinja|json)|vocab\.(json|txt)|merges\.txt|added_tokens\.json)$/;

export function copyTokenizerFiles(fromDir: string, outDir: string): string[] {
  if (path.resolve(fromDir) === path.resolve(outDir)) return [];
  const copied: string[] = [];
  for (const f of fs.readdirSync(fromDir)) {
    const src = path.join(fromDir, f);
    if (!TOKENIZER_FILES.test(f) || !fs.lstatSync(src).isFile()) continue;
    writeFileAtomic(path.join(outDir, f), fs.readFileSync(src));
    copied.push(f);
  }
  return copied;
}

export interface MergedExportOptions {
  /** Weight dtype in the file (default: the model's). */
  dtype?: DType;
}

/** Writes `model` (no adapter layers left: merge it first) with the tokenizer files of `tokenizerDir`. */
export function exportMerged(model: CausalLM, tokenizerDir: string, outDir: string, opts: MergedExportOptions = {}): string[] {
  const wrapped = [...model.namedModules()].find(([, m]) => isAdapterLayer(m) || (m as { isLinearLike?: boolean }).isLinearLike === true);
  if (wrapped) throw new ExportError(`exportMerged: "${wrapped[0]}" is a ${wrapped[1].constructor.name}, not a plain layer; merge the adapter (and dequantize) first`);
  if (!fs.existsSync(path.join(tokenizerDir, "tokenizer.json"))) throw new ExportError(`exportMerged: ${tokenizerDir} has no tokenizer.json to copy`);
  fs.mkdirSync(outDir, { recursive: true });
  const files = saveModel(model as unknown as Model, outDir, opts);
  return [...files, "config.json", ...copyTokenizerFiles(tokenizerDir, outDir)];
}
