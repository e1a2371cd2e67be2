/**
 * GGUF tokenizer metadata from a Hugging Face tokenizer directory, as llama.cpp's
 * convert_hf_to_gguf writes it for byte-level BPE (Qwen2): tokenizer.ggml.model = "gpt2",
 * pre = "qwen2", tokens by id (padded to the model's vocab_size with "[PAD<id>]"), token_type
 * (1 normal, 3 control = special added tokens, 4 user-defined, 5 unused padding), merges,
 * special token ids and tokenizer.chat_template.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import type { GgufTypedValue, GgufValue } from "../formats/index.ts";
import { ExportError } from "./ExportError.ts";

interface TokenizerJson {
  model?: { type?: string; vocab?: Record<string, number>; merges?: (string | [string, string])[] };
  added_tokens?: { id: number; content: string; special?: boolean }[];
}

function readJson(file: string): Record<string, unknown> {
  try {
    return JSON.parse(fs.readFileSync(file, "utf8")) as Record<string, unknown>;
  } catch (e) {
    throw new ExportError(`${file}: ${(e as Error).message}`);
  }
}

function tokenContent(v: unknown): string | null {
  if (typeof v === "string") return v;
  if (v && typeof v === "object" && typeof (v as { content?: unknown }).content === "string") return (v as { content: string }).content;
  return null;
}

/** The chat template of tokenizer_config.json (the "default" one when it lists several), or chat_template.jinja. */
export function readChatTemplate(dir: string): string | null {
  const jinja = path.join(dir, "chat_template.jinja");
  if (fs.existsSync(jinja)) return fs.readFileSync(jinja, "utf8");
  const cfgPath = path.join(dir, "tokenizer_config.json");
  if (!fs.existsSync(cfgPath)) return null;
  const t = readJson(cfgPath)["chat_template"];
  if (typeof t === "string") return t;
  if (Array.isArray(t)) {
    const d = (t as { name?: string; template?: string }[]).find((x) => x.name === "default") ?? t[0];
    return typeof d?.template === "string" ? d.template : null;
  }
  return null;
}

export interface GgufTokenizerInfo {
  metadata: Record<string, GgufValue | GgufTypedValue>;
  tokens: string[];
  eosTokenId: number | null;
  chatTemplate: string | null;
}

export function ggufTokenizerMetadata(dir: string, vocabSize: number, modelConfig: Record<string, unknown>): GgufTokenizerInfo {
  const tjPath = path.join(dir, "tokenizer.json");
  if (!fs.existsSync(tjPath)) throw new ExportError(`${dir}: tokenizer.json is missing (GGUF needs the vocabulary)`);
  const tj = readJson(tjPath) as TokenizerJson;
  if (tj.model?.type !== "BPE" || !tj.model.vocab || !tj.model.merges) throw new ExportError(`${tjPath}: only byte-level BPE tokenizers (Qwen2, GPT-2 style) are exported to GGUF, got model type ${tj.model?.type}`);
  const byId = new Map<number, string>();
  for (const [tok, id] of Object.entries(tj.model.vocab)) byId.set(id, tok);
  const type = new Map<number, number>();
  for (const a of tj.added_tokens ?? []) {
    byId.set(a.id, a.content);
    type.set(a.id, a.special ? 3 : 4);
  }
  let maxId = -1;
  for (const id of byId.keys()) if (id > maxId) maxId = id;
  if (maxId >= vocabSize) throw new ExportError(`${tjPath}: token id ${maxId} does not fit the model's vocab_size ${vocabSize}`);
  const tokens: string[] = [];
  const types: number[] = [];
  for (let i = 0; i < vocabSize; i++) {
    const t = byId.get(i);
    tokens.push(t ?? `[PAD${i}]`);
    types.push(t === undefined ? 5 : (type.get(i) ?? 1));
  }
  const merges = tj.model.merges.map((m) => (Array.isArray(m) ? m.join(" ") : m));
  const cfgPath = path.join(dir, "tokenizer_config.json");
  const tcfg = fs.existsSync(cfgPath) ? readJson(cfgPath) : {};
  const ids = new Map(tokens.map((t, i) => [t, i]));
  const idOf = (v: unknown): number | null => {
    const c = tokenContent(v);
    if (c === null) return null;
    const i = ids.get(c);
    return i === undefined ? null : i;
  };
  const eos = idOf(tcfg["eos_token"]) ?? (typeof modelConfig["eos_token_id"] === "number" ? (modelConfig["eos_token_id"] as number) : null);
  const pad = idOf(tcfg["pad_token"]);
  const bos = idOf(tcfg["bos_token"]) ?? (typeof modelConfig["bos_token_id"] === "number" ? (modelConfig["bos_token_id"] as number) : null);
  const chatTemplate = readChatTemplate(dir);
  const metadata: Record<string, GgufValue | GgufTypedValue> = {
    "tokenizer.ggml.model": "gpt2",
    "tokenizer.ggml.pre": modelConfig["model_type"] === "qwen2" ? "qwen2" : "default",
    "tokenizer.ggml.tokens": { type: { array: "string" }, value: tokens },
    "tokenizer.ggml.token_type": { type: { array: "int32" }, value: types },
    "tokenizer.ggml.merges": { type: { array: "string" }, value: merges },
  };
  if (eos !== null) metadata["tokenizer.ggml.eos_token_id"] = { type: "uint32", value: eos };
  if (pad !== null) metadata["tokenizer.ggml.padding_token_id"] = { type: "uint32", value: pad };
  if (bos !== null) metadata["tokenizer.ggml.bos_token_id"] = { type: "uint32", value: bos };
  metadata["tokenizer.ggml.add_bos_token"] = { type: "bool", value: tcfg["add_bos_token"] === true };
  if (chatTemplate !== null) metadata["tokenizer.chat_template"] = chatTemplate;
  return { metadata, tokens, eosTokenId: eos, chatTemplate };
}
