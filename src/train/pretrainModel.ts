/**
 * Pretraining from scratch (`graft pretrain`): text files → documents → tokens packed into blocks
 * of blockSize (the tail of the stream held out for validation) → a randomly initialised model from
 * a preset or config.json → train() with the causal-LM loss (or BERT's masked-LM objective) → an HF
 * model directory (config.json, model.safetensors, tokenizer files) that `graft train --base` reads.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import type { DType } from "../core/dtype.ts";
import { Generator } from "../core/rng.ts";
import { ArrayDataset } from "../data/Dataset.ts";
import { type Batches, shuffledBatches } from "../data/batches.ts";
import { type DocumentSplit, collateBlocks, maskTokens, packBlocks, splitDocuments, tokenizeDocuments } from "../data/pretrain.ts";
import { decodeText } from "../data/readers/index.ts";
import { type Model, createModel, saveModel } from "../models/index.ts";
import { type LMBatch, causalLMLossFn, maskedLMLossFn } from "./losses.ts";
import { loadTokenizer, writeTokenizerFiles } from "./modelFiles.ts";
import { modelPresets, presetConfig, withTokenizer } from "./presets.ts";
import { type TrainOptions, type TrainResult, train } from "./train.ts";
import { type ForwardModel, TrainError } from "./types.ts";

export interface PretrainOptions extends Omit<TrainOptions<Model, LMBatch>, "model" | "train" | "val" | "loss" | "params"> {
  /** A preset name (qwen2-tiny, qwen2-small, gpt2-tiny, gpt2, bert-tiny) or a config.json path. */
  modelConfig: string;
  data: string[];
  outDir: string;
  /** "bytes" (default: the built-in byte tokenizer) or a tokenizer/model directory. */
  tokenizer?: string;
  objective?: "clm" | "mlm";
  blockSize?: number;
  batchSize?: number;
  /** Fraction of blocks held out (the end of the token stream), default 0.05 (at least one block). */
  valFraction?: number;
  documents?: DocumentSplit;
  dtype?: DType;
  /** MLM: the fraction of positions predicted (default 0.15) and the mask token (default [MASK] or <mask>). */
  mlmProbability?: number;
  maskToken?: string;
}

export interface PretrainResult {
  outDir: string;
  config: Record<string, unknown>;
  parameters: number;
  trainBlocks: number;
  valBlocks: number;
  tokens: number;
  train: TrainResult;
}

export async function pretrainModel(o: PretrainOptions): Promise<PretrainResult> {
  const tokSpec = o.tokenizer ?? "bytes";
  const tok = loadTokenizer(tokSpec);
  const objective = o.objective ?? "clm";
  let raw: Record<string, unknown> & { model_type: string };
  if (modelPresets().includes(o.modelConfig)) raw = presetConfig(o.modelConfig, tok);
  else {
    if (!fs.existsSync(o.modelConfig)) throw new TrainError(`--model-config ${o.modelConfig}: not a preset (${modelPresets().join(", ")}) and no such file`);
    const file = fs.statSync(o.modelConfig).isDirectory() ? path.join(o.modelConfig, "config.json") : o.modelConfig;
    try {
      raw = withTokenizer(JSON.parse(fs.readFileSync(file, "utf8")), tok);
    } catch (e) {
      throw new TrainError(`${file}: ${(e as Error).message}`);
    }
    if (typeof raw.model_type !== "string") throw new TrainError(`${file}: no "model_type"`);
  }
  if (objective === "mlm" && raw.model_type !== "bert") throw new TrainError(`--objective mlm needs a BERT config (model_type "bert"), got "${raw.model_type}"`);
  if (objective === "clm" && raw.model_type === "bert") throw new TrainError('BERT is an encoder: pretrain it with --objective mlm');
  const maxPos = Number(raw["max_position_embeddings"] ?? raw["n_positions"] ?? Infinity);
  const blockSize = o.blockSize ?? Math.min(128, maxPos);
  if (blockSize > maxPos) throw new TrainError(`--block-size ${blockSize} exceeds the model's ${maxPos} positions`);

  if (o.data.length === 0) throw new TrainError("pretraining needs at least one --data text file");
  const docs: string[] = [];
  for (const f of o.data) {
    if (!fs.existsSync(f)) throw new TrainError(`--data ${f}: no such file`);
    docs.push(...splitDocuments(decodeText(fs.readFileSync(f), "auto", f), o.documents ?? "paragraph"));
  }
  const sep = objective === "mlm" ? null : (tok.tokenToId("<|endoftext|>") ?? tok.eosTokenId);
  const ids = tokenizeDocuments(tok, docs, { separatorId: sep, addSpecialTokens: objective === "mlm" });
  const blocks = packBlocks(ids, blockSize);
  const nVal = Math.max(1, Math.round(blocks.length * (o.valFraction ?? 0.05)));
  if (blocks.length - nVal < 1) throw new TrainError(`the data gives ${blocks.length} blocks of ${blockSize} tokens: too few to hold out ${nVal} for validation`);
  const trainBlocks = blocks.slice(0, blocks.length - nVal);
  const valBlocks = blocks.slice(blocks.length - nVal);
  const seed = o.seed ?? 0;
  const batchSize = o.batchSize ?? 8;

  let collate: (items: Int32Array[], ctx: { epoch: number; index: number }) => LMBatch = (items) => collateBlocks(items);
  let valCollate = collate;
  if (objective === "mlm") {
    const maskName = o.maskToken ?? (tok.tokenToId("[MASK]") !== null ? "[MASK]" : "<mask>");
    const maskTokenId = tok.tokenToId(maskName);
    if (maskTokenId === null) throw new TrainError(`the tokenizer has no mask token "${maskName}" (pass --mask-token)`);
    const specialIds = new Set<number>();
    for (let i = 0; i < tok.vocabSize; i++) if (tok.isSpecial(i)) specialIds.add(i);
    const mlm = (items: Int32Array[], g: Generator) => maskTokens(items, { maskTokenId, vocabSize: tok.vocabSize, specialIds, probability: o.mlmProbability, generator: g });
    // The corruption of a batch depends only on (seed, epoch, index): resumed runs see the same masks.
    collate = (items, { epoch, index }) => mlm(items, new Generator(seed * 1000003 + epoch * 7919 + index + 1));
    valCollate = (items, { index }) => mlm(items, new Generator(seed * 1000003 - index - 1));
  }
  const trainSet: Batches<LMBatch> = shuffledBatches(new ArrayDataset(trainBlocks), { batchSize, collate, seed, shuffle: true });
  const valSet: Batches<LMBatch> = shuffledBatches(new ArrayDataset(valBlocks), { batchSize, collate: valCollate, shuffle: false });

  const model = createModel(raw, { seed, dtype: o.dtype, architecture: objective === "mlm" ? "BertForMaskedLM" : undefined });
  const loss = objective === "mlm" ? maskedLMLossFn : causalLMLossFn;
  const { modelConfig: _c, data: _d, tokenizer: _t, objective: _o, blockSize: _b, batchSize: _bs, valFraction: _v, documents: _doc, dtype: _dt, mlmProbability: _p, maskToken: _m, ...trainOpts } = o;
  const result = await train<Model, LMBatch>({
    lr: 1e-3,
    schedule: "cosine",
    warmupRatio: 0.05,
    weightDecay: 0.1,
    label: "pretrain",
    ...trainOpts,
    model,
    train: trainSet,
    val: valSet,
    loss: (m, b) => loss(m as unknown as ForwardModel, b),
    seed,
  });
  saveModel(model, o.outDir);
  writeTokenizerFiles(tokSpec, o.outDir);
  return { outDir: o.outDir, config: model.config, parameters: model.numParameters(), trainBlocks: trainBlocks.length, valBlocks: valBlocks.length, tokens: ids.length, train: result };
}
