/**
 * The seed exercise end to end — "fine-tune a small model on Chinese medical dialogue" — with a
 * model graft pretrains itself (no download): prepare the GB18030 CSV into train.json / val.json,
 * pretrain a small Qwen2 (byte-level tokenizer with a ChatML template) on the training split's
 * questions and answers, fine-tune it on the dialogues (loss on answers only), and compare the
 * pretrained base with the fine-tuned model on the validation split: loss, perplexity, BLEU-4 and
 * ROUGE-1/2/L (characters).
 */
import * as fs from "node:fs";
import { join } from "node:path";
import { prepareDataset, readSftRecords } from "../data/prepare.ts";
import type { QARecord } from "../data/sft.ts";
import { writeFileAtomic } from "../formats/index.ts";
import { loadCausalLM } from "../models/index.ts";
import { loadPeft } from "../peft/index.ts";
import { Tokenizer } from "../tokenizers/index.ts";
import { type EvaluateResult, type FinetuneResult, type PretrainResult, evaluateSft, finetune, formatMetricTable, pretrainModel } from "../train/index.ts";

export interface MedicalOptions {
  /** The medical CSV (department,title,ask,answer; GB18030). */
  data: string;
  outDir: string;
  train?: number;
  val?: number;
  /** Model preset for pretraining (default qwen2-tiny). */
  preset?: string;
  pretrainSteps?: number;
  sftSteps?: number;
  /** SFT method: full (default), freeze, or a PEFT method name. */
  method?: string;
  blockSize?: number;
  maxLength?: number;
  batchSize?: number;
  /** Validation records answered for BLEU/ROUGE. */
  generate?: number;
  maxNewTokens?: number;
  seed?: number;
  progress?: "auto" | "bar" | "lines" | "off";
  log?: (line: string) => void;
}

export interface MedicalResult {
  pretrain: PretrainResult;
  sft: FinetuneResult;
  rows: EvaluateResult[];
  table: string;
}

export async function runMedical(o: MedicalOptions): Promise<MedicalResult> {
  const log = o.log ?? console.log;
  const seed = o.seed ?? 0;
  const dataDir = join(o.outDir, "data");
  const prep = prepareDataset({ input: o.data, outDir: dataDir, train: o.train ?? 240, val: o.val ?? 60, seed: 42 });
  log(`1/4 prepare: ${prep.total} usable rows (${prep.encoding}), ${prep.bad.length} bad → ${prep.train} train / ${prep.val} val in ${dataDir}`);

  // Pretraining text: the training split only (validation answers stay unseen).
  const trainRecords = readSftRecords(prep.trainPath) as QARecord[];
  const corpus = join(o.outDir, "pretrain-corpus.txt");
  fs.mkdirSync(o.outDir, { recursive: true });
  writeFileAtomic(corpus, trainRecords.map((r) => `${r.question}\n${r.answer}`).join("\n\n") + "\n");
  const baseDir = join(o.outDir, "base");
  const pretrain = await pretrainModel({
    modelConfig: o.preset ?? "qwen2-tiny",
    data: [corpus],
    outDir: baseDir,
    tokenizer: "bytes",
    blockSize: o.blockSize ?? 256,
    batchSize: o.batchSize ?? 8,
    maxSteps: o.pretrainSteps ?? 600,
    lr: 3e-3,
    evalEvery: Math.max(1, Math.floor((o.pretrainSteps ?? 600) / 4)),
    evalMaxBatches: 8,
    seed,
    progress: o.progress,
  });
  const pv = pretrain.train.valLoss;
  log(`2/4 pretrain: ${pretrain.parameters.toLocaleString("en-US")} parameters, ${pretrain.train.steps} steps, ${Math.round(pretrain.train.tokensPerSec).toLocaleString("en-US")} tokens/s, val loss ${pv[0]?.value.toFixed(3)} → ${pretrain.train.finalValLoss?.toFixed(3)} → ${baseDir}`);

  const sftDir = join(o.outDir, "sft");
  const sft = await finetune({
    base: baseDir,
    data: dataDir,
    outDir: sftDir,
    method: o.method ?? "full",
    maxLength: o.maxLength ?? 512,
    batchSize: o.batchSize ?? 8,
    maxSteps: o.sftSteps ?? 300,
    lr: 1e-3,
    evalEvery: Math.max(1, Math.floor((o.sftSteps ?? 300) / 4)),
    evalMaxBatches: 4,
    seed,
    progress: o.progress,
  });
  log(`3/4 fine-tune (${sft.method}): ${sft.train.steps} steps, val loss ${sft.train.valLoss[0]?.value.toFixed(3)} → ${sft.train.finalValLoss?.toFixed(3)} → ${sftDir}`);

  const val = readSftRecords(prep.valPath);
  const tok = Tokenizer.fromDir(sftDir);
  const evalOpts = { generateSamples: o.generate ?? 20, maxNewTokens: o.maxNewTokens ?? 96, maxLength: o.maxLength ?? 512 };
  const rows = [
    await evaluateSft("base (pretrained only)", loadCausalLM(baseDir), tok, val, evalOpts),
    await evaluateSft(`fine-tuned (${sft.method})`, sft.method === "full" || sft.method === "freeze" ? loadCausalLM(sftDir) : loadPeft(loadCausalLM(baseDir), sftDir), tok, val, evalOpts),
  ];
  const table = formatMetricTable(rows);
  log(`4/4 evaluate on ${val.length} validation dialogues (generation metrics on ${evalOpts.generateSamples}):\n${table}`);
  writeFileAtomic(join(o.outDir, "metrics.json"), JSON.stringify(rows.map(({ predictions: _p, ...m }) => m), null, 2) + "\n");
  writeFileAtomic(join(o.outDir, "predictions.jsonl"), rows.flatMap((r) => r.predictions.map((p) => JSON.stringify({ model: r.name, ...p }))).join("\n") + "\n");
  return { pretrain, sft, rows, table };
}
