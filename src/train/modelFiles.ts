/** Tokenizer files beside a model: load from a model dir (or the built-in byte tokenizer), copy or write them. */
import * as fs from "node:fs";
import * as path from "node:path";
import { byteTokenizer, byteTokenizerFiles } from "../data/byteTokenizer.ts";
import { writeFileAtomic } from "../formats/index.ts";
import { Tokenizer } from "../tokenizers/index.ts";
import { TrainError } from "./types.ts";

const TOKENIZER_FILES = /^(tokenizer\.json|tokenizer_config\.json|special_tokens_map\.json|generation_config\.json|chat_template\.(jinja|json)|vocab\.(json|txt)|merges\.txt|added_tokens\.json)$/;

/** "bytes" → the built-in byte tokenizer; otherwise a directory with tokenizer.json + tokenizer_config.json. */
export function loadTokenizer(spec: string): Tokenizer {
  if (spec === "bytes") return byteTokenizer();
  if (!fs.existsSync(path.join(spec, "tokenizer.json"))) throw new TrainError(`--tokenizer ${spec}: no tokenizer.json there (give a model/tokenizer directory or "bytes")`);
  return Tokenizer.fromDir(spec);
}

/** Puts the tokenizer files of `spec` into outDir (copied from a directory, or the byte tokenizer's). */
export function writeTokenizerFiles(spec: string, outDir: string): void {
  fs.mkdirSync(outDir, { recursive: true });
  if (spec === "bytes") {
    const f = byteTokenizerFiles();
    writeFileAtomic(path.join(outDir, "tokenizer.json"), JSON.stringify(f.tokenizerJson) + "\n");
    writeFileAtomic(path.join(outDir, "tokenizer_config.json"), JSON.stringify(f.tokenizerConfig, null, 2) + "\n");
    writeFileAtomic(path.join(outDir, "generation_config.json"), JSON.stringify(f.generationConfig, null, 2) + "\n");
    return;
  }
  if (path.resolve(spec) === path.resolve(outDir)) return;
  for (const f of fs.readdirSync(spec)) {
    if (TOKENIZER_FILES.test(f) && fs.statSync(path.join(spec, f)).isFile()) writeFileAtomic(path.join(outDir, f), fs.readFileSync(path.join(spec, f)));
  }
}
