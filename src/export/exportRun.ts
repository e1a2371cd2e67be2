/**
 * What `graft export` exports: a run's output (a PEFT adapter directory, with the base from
 * --base, training_args.json or adapter_config.json's base_model_name_or_path) or a model
 * directory, to any of: a merged HF directory, a full GGUF, a GGUF LoRA adapter, and a Modelfile.
 */
import type { DType } from "../core/dtype.ts";
import * as fs from "node:fs";
import * as path from "node:path";
import { type CausalLM, loadCausalLM } from "../models/index.ts";
import { ADAPTER_CONFIG, type PeftModel, loadPeft } from "../peft/index.ts";
import { ExportError } from "./ExportError.ts";
import { exportGguf, type GgufExportType } from "./exportGguf.ts";
import { exportLoraGguf } from "./exportLoraGguf.ts";
import { exportMerged } from "./exportMerged.ts";
import { readChatTemplate } from "./ggufTokenizer.ts";
import { writeModelfile } from "./modelfile.ts";

export interface LoadedRun {
  /** The base with the adapter (null for a plain model directory). */
  peft: PeftModel | null;
  model: CausalLM;
  baseDir: string;
  tokenizerDir: string;
}

function readJsonIfAny(file: string): Record<string, unknown> | null {
  if (!fs.existsSync(file)) return null;
  try {
    return JSON.parse(fs.readFileSync(file, "utf8")) as Record<string, unknown>;
  } catch (e) {
    throw new ExportError(`${file}: ${(e as Error).message}`);
  }
}

/** The base model directory of an adapter run. */
export function runBaseDir(run: string, base?: string): string {
  const candidates: [string, unknown][] = [
    ["--base", base],
    ["training_args.json base", readJsonIfAny(path.join(run, "training_args.json"))?.["base"]],
    ["adapter_config.json base_model_name_or_path", readJsonIfAny(path.join(run, ADAPTER_CONFIG))?.["base_model_name_or_path"]],
  ];
  for (const [what, v] of candidates) {
    if (typeof v !== "string" || v === "") continue;
    const dir = path.isAbsolute(v) || fs.existsSync(v) ? v : path.resolve(run, v);
    if (fs.existsSync(path.join(dir, "config.json"))) return dir;
    if (what === "--base") throw new ExportError(`--base ${v}: no config.json there`);
  }
  throw new ExportError(`${run} is an adapter; give its base model directory with --base (no local base found in training_args.json or adapter_config.json)`);
}

export function loadRun(run: string, opts: { base?: string; dtype?: DType } = {}): LoadedRun {
  if (!fs.existsSync(run) || !fs.statSync(run).isDirectory()) throw new ExportError(`${run}: not a directory`);
  if (fs.existsSync(path.join(run, ADAPTER_CONFIG))) {
    const baseDir = runBaseDir(run, opts.base);
    const model = loadCausalLM(baseDir, { dtype: opts.dtype });
    const peft = loadPeft(model, run).eval();
    const tokenizerDir = fs.existsSync(path.join(run, "tokenizer.json")) ? run : baseDir;
    return { peft, model: peft, baseDir, tokenizerDir };
  }
  if (fs.existsSync(path.join(run, "config.json"))) return { peft: null, model: loadCausalLM(run, { dtype: opts.dtype }), baseDir: run, tokenizerDir: run };
  throw new ExportError(`${run} holds neither an adapter (${ADAPTER_CONFIG}) nor a model (config.json)`);
}

export interface ExportRunOptions {
  base?: string;
  merged?: string;
  gguf?: string;
  type?: GgufExportType;
  ggufAdapter?: string;
  /** With --gguf-adapter alone: the FROM of the Modelfile (a base GGUF path or an Ollama model name). */
  from?: string;
  log?: (line: string) => void;
}

/** Runs the requested exports; returns the files written. */
export function exportRun(run: string, o: ExportRunOptions): string[] {
  if (!o.merged && !o.gguf && !o.ggufAdapter) throw new ExportError("nothing to export: give --merged <dir>, --gguf <file> and/or --gguf-adapter <file>");
  const log = o.log ?? (() => {});
  const loaded = loadRun(run, { base: o.base });
  const written: string[] = [];
  // The adapter GGUF needs the unmerged LoRA layers, so it goes first.
  if (o.ggufAdapter) {
    if (!loaded.peft) throw new ExportError(`--gguf-adapter: ${run} is a model directory, not an adapter`);
    const r = exportLoraGguf(loaded.peft, o.ggufAdapter);
    written.push(o.ggufAdapter);
    log(`adapter GGUF: ${o.ggufAdapter} (${r.tensors} tensors, alpha ${r.alpha})`);
    if (o.from && !o.gguf) {
      const dir = path.dirname(path.resolve(o.ggufAdapter));
      written.push(writeModelfile(dir, { from: o.from, adapter: o.ggufAdapter, chatTemplate: readChatTemplate(loaded.tokenizerDir) }));
    }
  }
  const merged = loaded.peft ? (loaded.peft.merge ? loaded.peft.merge() : null) : loaded.model;
  if ((o.merged || o.gguf) && !merged) throw new ExportError(`the ${loaded.peft!.method} adapter cannot be merged into the base weights, so there is no merged model to export`);
  if (o.merged) {
    const files = exportMerged(merged!, loaded.tokenizerDir, o.merged);
    written.push(...files.map((f) => path.join(o.merged!, f)));
    log(`merged model: ${o.merged}`);
  }
  if (o.gguf) {
    const r = exportGguf(merged!, loaded.tokenizerDir, o.gguf, { type: o.type });
    written.push(o.gguf);
    log(`GGUF (${o.type ?? "f16"}): ${o.gguf} (${r.tensors} tensors)`);
    const mf = writeModelfile(path.dirname(path.resolve(o.gguf)), { from: o.gguf, chatTemplate: readChatTemplate(loaded.tokenizerDir) });
    written.push(mf);
    log(`Ollama Modelfile: ${mf}`);
  }
  return written;
}
