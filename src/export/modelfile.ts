/**
 * An Ollama Modelfile for an exported GGUF: FROM the model file, ADAPTER for a GGUF LoRA, the chat
 * template translated to Ollama's Go template, and the template's stop tokens. ChatML templates
 * (Qwen2 / Qwen2.5) are translated, keeping Qwen2.5's default system prompt when the template has one.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { writeFileAtomic } from "../formats/index.ts";
import { ExportError } from "./ExportError.ts";

const QWEN_DEFAULT_SYSTEM = "You are Qwen, created by Alibaba Cloud. You are a helpful assistant.";

/** The Ollama TEMPLATE and stop tokens of a Hugging Face chat template. */
export function ollamaTemplate(chatTemplate: string): { template: string; stop: string[] } {
  if (!chatTemplate.includes("<|im_start|>")) {
    throw new ExportError("the chat template is not ChatML (<|im_start|> ... <|im_end|>); graft writes Ollama templates for ChatML models (Qwen2/Qwen2.5) only");
  }
  const defaultSystem = chatTemplate.includes(QWEN_DEFAULT_SYSTEM) ? QWEN_DEFAULT_SYSTEM : null;
  // Go-template text between actions is literal: each turn is "<|im_start|>role\ncontent<|im_end|>\n",
  // as the ChatML chat template renders it; system messages reach the template as .System.
  const system = defaultSystem
    ? `{{ if .System }}<|im_start|>system\n{{ .System }}<|im_end|>\n{{ else }}<|im_start|>system\n${defaultSystem}<|im_end|>\n{{ end }}`
    : `{{ if .System }}<|im_start|>system\n{{ .System }}<|im_end|>\n{{ end }}`;
  const template = `${system}{{ range .Messages }}{{ if ne .Role "system" }}<|im_start|>{{ .Role }}\n{{ .Content }}<|im_end|>\n{{ end }}{{ end }}<|im_start|>assistant\n`;
  return { template, stop: ["<|im_start|>", "<|im_end|>"] };
}

export interface ModelfileOptions {
  /** The GGUF model (a path relative to the Modelfile's folder is kept relative). */
  from: string;
  adapter?: string;
  chatTemplate: string | null;
  system?: string;
  parameters?: Record<string, string | number>;
}

export function modelfileText(o: ModelfileOptions): string {
  const lines = [`FROM ${o.from}`];
  if (o.adapter) lines.push(`ADAPTER ${o.adapter}`);
  if (o.chatTemplate) {
    const { template, stop } = ollamaTemplate(o.chatTemplate);
    if (template.includes('"""')) throw new ExportError('the translated template contains """, which a Modelfile cannot quote');
    lines.push(`TEMPLATE """${template}"""`);
    for (const s of stop) lines.push(`PARAMETER stop "${s}"`);
  }
  if (o.system) lines.push(`SYSTEM """${o.system}"""`);
  for (const [k, v] of Object.entries(o.parameters ?? {})) lines.push(`PARAMETER ${k} ${v}`);
  return lines.join("\n") + "\n";
}

/** Writes `<dir>/Modelfile` (atomically) with FROM/ADAPTER relative to dir; returns its path. */
export function writeModelfile(dir: string, o: ModelfileOptions): string {
  const rel = (p: string) => {
    if (!fs.existsSync(p)) return p; // an Ollama model name such as qwen2.5:0.5b
    const r = path.relative(dir, path.resolve(p));
    return r.startsWith("..") ? path.resolve(p) : `./${r}`;
  };
  const file = path.join(dir, "Modelfile");
  writeFileAtomic(file, modelfileText({ ...o, from: rel(o.from), ...(o.adapter ? { adapter: rel(o.adapter) } : {}) }));
  return file;
}
