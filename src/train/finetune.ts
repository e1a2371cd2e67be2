/**
 * Supervised fine-tuning (`graft train`): a base model directory + train.json / val.json →
 * chat-template samples with the loss on answer tokens only → train() with one of
 *   full    every parameter trains;
 *   freeze  only the top N transformer blocks train (the embeddings and the bottom blocks stay frozen);
 *   <peft>  any registered PEFT method (src/peft: applyPeft(model, method, options)).
 * Output: an HF model directory (full, freeze) or a PEFT adapter directory (adapter_config.json +
 * adapter_model.safetensors), plus logs, loss.png and checkpoints.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import type { DType } from "../core/dtype.ts";
import { ArrayDataset } from "../data/Dataset.ts";
import { shuffledBatches } from "../data/batches.ts";
import { readSftRecords } from "../data/prepare.ts";
import { type SftRecord, type SftSample, buildSftSamples, collateSft } from "../data/sft.ts";
import { writeFileAtomic } from "../formats/index.ts";
import { type CausalLM, loadCausalLM, saveModel } from "../models/index.ts";
import { type Module } from "../nn/index.ts";
import { type PeftModel, applyPeft } from "../peft/index.ts";
import { noGrad } from "../tensor/index.ts";
import { Tokenizer } from "../tokenizers/index.ts";
import { type LMBatch, causalLMLossFn } from "./losses.ts";
import { writeTokenizerFiles } from "./modelFiles.ts";
import { type CheckpointWeights, type TrainOptions, type TrainResult, train } from "./train.ts";
import { TrainError } from "./types.ts";

export interface FinetuneOptions extends Omit<TrainOptions<CausalLM, LMBatch>, "model" | "train" | "val" | "loss" | "params" | "checkpointWeights"> {
  base: string;
  /** A directory with train.json (and val.json), or a train file. */
  data: string;
  /** Validation file (default data/val.json when data is a directory). */
  valData?: string;
  outDir: string;
  method?: string;
  /** freeze: the number of top blocks that train (default 2). */
  trainableLayers?: number;
  /** PEFT options in PEFT's snake_case keys (r, lora_alpha, target_modules, ...). */
  peft?: Record<string, unknown>;
  maxLength?: number;
  packing?: boolean;
  system?: string;
  batchSize?: number;
  /** Use only the first N train / val records. */
  maxTrainSamples?: number;
  maxValSamples?: number;
  dtype?: DType;
}

export interface FinetuneResult {
  outDir: string;
  method: string;
  trainableParameters: number;
  totalParameters: number;
  trainSamples: number;
  valSamples: number;
  dropped: number;
  train: TrainResult;
}

/** The block index of a parameter path (model.layers.3..., transformer.h.3..., encoder.layer.3...), or null. */
export function blockIndex(name: string): number | null {
  const m = /(?:^|\.)(?:layers|h|layer|blocks)\.(\d+)\./.exec(name);
  return m ? Number(m[1]) : null;
}

/** Freezes everything but the top `n` blocks; returns the trainable tensors. */
export function freezeBottomLayers(model: Module, n: number): void {
  const idx = model.namedParameters().map(([k]) => blockIndex(k)).filter((i): i is number => i !== null);
  if (idx.length === 0) throw new TrainError("--method freeze: cannot find the model's transformer blocks (layers.N / h.N / layer.N)");
  const count = Math.max(...idx) + 1;
  if (!Number.isInteger(n) || n < 1 || n > count) throw new TrainError(`--trainable-layers must be an integer in [1, ${count}], got ${n}`);
  model.freeze();
  model.unfreeze((k) => {
    const i = blockIndex(k);
    return i !== null && i >= count - n;
  });
}

/** loadCausalLM options of a QLoRA base: NF4, with the adapter options' bnb_4bit_blocksize (checked again by applyPeft). */
function qloraLoadOptions(peft: Record<string, unknown>): { quantize: "nf4"; quantBlockSize?: number } {
  const bs = peft["bnb_4bit_blocksize"];
  const n = Number(bs);
  return bs === undefined || !Number.isInteger(n) || n <= 0 || n % 2 ? { quantize: "nf4" } : { quantize: "nf4", quantBlockSize: n };
}

function readRecords(file: string, limit?: number): SftRecord[] {
  const rows = readSftRecords(file);
  return limit !== undefined ? rows.slice(0, limit) : rows;
}

export async function finetune(o: FinetuneOptions): Promise<FinetuneResult> {
  const method = o.method ?? "full";
  const dataIsDir = fs.existsSync(o.data) && fs.statSync(o.data).isDirectory();
  const trainFile = dataIsDir ? path.join(o.data, "train.json") : o.data;
  const valFile = o.valData ?? (dataIsDir && fs.existsSync(path.join(o.data, "val.json")) ? path.join(o.data, "val.json") : undefined);
  if (!fs.existsSync(trainFile)) throw new TrainError(`--data ${o.data}: no ${dataIsDir ? "train.json in it" : "such file"} (run graft prepare first)`);
  const tok = Tokenizer.fromDir(o.base);
  if (!tok.hasChatTemplate) throw new TrainError(`${o.base}: the tokenizer has no chat template; SFT renders samples with it`);
  const padId = tok.padTokenId ?? tok.eosTokenId;
  if (padId === null) throw new TrainError(`${o.base}: the tokenizer has neither a pad nor an eos token`);
  const maxLength = o.maxLength ?? 512;
  const enc = { maxLength, system: o.system };
  const tr = buildSftSamples(tok, readRecords(trainFile, o.maxTrainSamples), { ...enc, packing: o.packing });
  const va = valFile ? buildSftSamples(tok, readRecords(valFile, o.maxValSamples), enc) : null;
  if (tr.samples.length === 0) throw new TrainError(`${trainFile}: no usable samples (${tr.stats.dropped} dropped by --max-length ${maxLength})`);

  // QLoRA loads the base as load_in_4bit does: each Linear quantized to NF4 as it is read.
  const base = loadCausalLM(o.base, { dtype: o.dtype, ...(method === "qlora" ? qloraLoadOptions(o.peft ?? {}) : {}) });
  let model: CausalLM = base;
  let peft: PeftModel | null = null;
  let weights: CheckpointWeights | undefined;
  if (method === "full") base.unfreeze();
  else if (method === "freeze") freezeBottomLayers(base, o.trainableLayers ?? 2);
  else {
    base.freeze();
    peft = applyPeft(base, method, o.peft ?? {});
    model = peft;
    const trainable = new Set(peft.trainableParameters());
    const named = peft.namedParameters().filter(([, p]) => trainable.has(p));
    weights = {
      file: "adapter_model.safetensors",
      state: () => Object.fromEntries(named),
      load(t) {
        const missing = named.filter(([k]) => !(k in t)).map(([k]) => k);
        if (missing.length) throw new TrainError(`checkpoint lacks adapter tensors: ${missing.slice(0, 5).join(", ")}`);
        noGrad(() => named.forEach(([k, p]) => p.copy_(t[k]!)));
      },
    };
  }
  const params = peft ? peft.trainableParameters() : base.trainableParameters();
  const batchSize = o.batchSize ?? 4;
  const seed = o.seed ?? 0;
  const collate = (items: SftSample[]) => collateSft(items, padId);
  const trainSet = shuffledBatches(new ArrayDataset(tr.samples), { batchSize, collate, seed });
  const valSet = va && va.samples.length ? shuffledBatches(new ArrayDataset(va.samples), { batchSize, collate, shuffle: false }) : undefined;
  const { base: _b, data: _d, valData: _vd, method: _m, trainableLayers: _tl, peft: _p, maxLength: _ml, packing: _pk, system: _s, batchSize: _bs, maxTrainSamples: _mt, maxValSamples: _mv, dtype: _dt, ...trainOpts } = o;
  const result = await train<CausalLM, LMBatch>({
    lr: peft ? 2e-4 : 1e-4,
    schedule: "cosine",
    warmupRatio: 0.03,
    label: `sft ${method}`,
    ...trainOpts,
    model,
    params,
    train: trainSet,
    val: valSet,
    loss: causalLMLossFn,
    checkpointWeights: weights,
    seed,
  });
  fs.mkdirSync(o.outDir, { recursive: true });
  if (peft) peft.save(o.outDir);
  else saveModel(base, o.outDir);
  writeTokenizerFiles(o.base, o.outDir);
  writeFileAtomic(path.join(o.outDir, "training_args.json"), JSON.stringify({ method, base: o.base, data: o.data, maxLength, packing: !!o.packing, trainableLayers: o.trainableLayers, peft: o.peft, ...(o.config ? { config: o.config } : {}) }, null, 2) + "\n");
  return {
    outDir: o.outDir,
    method,
    trainableParameters: params.reduce((n, p) => n + p.numel, 0),
    totalParameters: base.numParameters(),
    trainSamples: tr.samples.length,
    valSamples: va?.samples.length ?? 0,
    dropped: tr.stats.dropped + (va?.stats.dropped ?? 0),
    train: result,
  };
}
