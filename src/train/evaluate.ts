/**
 * SFT evaluation (`graft eval`): the validation loss over answer tokens, perplexity = exp(mean token
 * NLL over answer tokens), and generation metrics — greedy answers to the validation prompts scored
 * against the reference answers with corpus BLEU-4 and mean ROUGE-1/2/L F1, Chinese segmented per
 * character by default.
 */
import { ArrayDataset } from "../data/Dataset.ts";
import { shuffledBatches } from "../data/batches.ts";
import { type SftRecord, type SftSample, buildSftSamples, collateSft, promptMessages } from "../data/sft.ts";
import { generate } from "../generation/index.ts";
import type { CausalLM } from "../models/index.ts";
import type { Tokenizer } from "../tokenizers/index.ts";
import { type LMBatch, causalLMLossFn } from "./losses.ts";
import { corpusBleu } from "./metrics/bleu.ts";
import { corpusRouge } from "./metrics/rouge.ts";
import type { Segmentation } from "./metrics/segment.ts";
import type { MetricRow } from "./metrics/table.ts";
import { evaluateLoss } from "./train.ts";
import { TrainError } from "./types.ts";

export interface EvaluateOptions {
  maxLength?: number;
  batchSize?: number;
  system?: string;
  /** Records to generate answers for (default 50; 0 skips the generation metrics). */
  generateSamples?: number;
  maxNewTokens?: number;
  segmentation?: Segmentation;
  /** Called after each generated batch (for progress). */
  onGenerated?: (done: number, total: number) => void;
}

export interface EvaluateResult extends MetricRow {
  lossTokens: number;
  predictions: { prompt: string; reference: string; prediction: string }[];
}

export async function evaluateSft(name: string, model: CausalLM, tok: Tokenizer, records: readonly SftRecord[], o: EvaluateOptions = {}): Promise<EvaluateResult> {
  if (records.length === 0) throw new TrainError("evaluation needs at least one record");
  const padId = tok.padTokenId ?? tok.eosTokenId ?? 0;
  const batchSize = o.batchSize ?? 8;
  const { samples } = buildSftSamples(tok, records, { maxLength: o.maxLength ?? 512, system: o.system });
  const batches = shuffledBatches(new ArrayDataset<SftSample>(samples), { batchSize, collate: (items) => collateSft(items, padId), shuffle: false });
  const l = evaluateLoss<CausalLM, LMBatch>(model, batches, causalLMLossFn);
  const row: EvaluateResult = { name, valLoss: l.loss, perplexity: l.perplexity, lossTokens: l.tokens, predictions: [] };
  const n = Math.min(records.length, o.generateSamples ?? 50);
  if (n === 0) return row;
  const items = records.slice(0, n).map((r) => {
    const { prompt, reference } = promptMessages(r, o.system);
    const text = tok.applyChatTemplate(prompt, { addGenerationPrompt: true });
    return { text, reference };
  });
  model.eval();
  for (let s = 0; s < n; s += batchSize) {
    const chunk = items.slice(s, s + batchSize);
    const out = await generate(model, tok, chunk.map((c) => tok.encode(c.text, { addSpecialTokens: false })), { maxNewTokens: o.maxNewTokens ?? 128, temperature: 0 });
    out.forEach((g, i) => row.predictions.push({ prompt: chunk[i]!.text, reference: chunk[i]!.reference, prediction: g.text.trim() }));
    o.onGenerated?.(Math.min(n, s + batchSize), n);
  }
  const hyps = row.predictions.map((p) => p.prediction);
  const refs = row.predictions.map((p) => p.reference);
  const bleu = corpusBleu(hyps, refs, { segmentation: o.segmentation });
  const rouge = corpusRouge(hyps, refs, { segmentation: o.segmentation });
  return { ...row, bleu4: bleu.score, rouge1: rouge.rouge1.f1, rouge2: rouge.rouge2.f1, rougeL: rouge.rougeL.f1, samples: n };
}
