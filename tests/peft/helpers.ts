/**
 * Shared fixtures of the PEFT tests: a tiny random Qwen2 (real config fields, the real Qwen2.5
 * vocabulary), a batch of the embedded medical-dialogue slice rendered with the Qwen2.5 chat
 * template, a plain AdamW loop, and logits comparison.
 */
import * as path from "node:path";
import { fileURLToPath } from "node:url";
import "../../src/backend/index.ts";
import { readCsv } from "../../src/data/readers/index.ts";
import { type CausalLM, causalLMLoss, createModel } from "../../src/models/index.ts";
import { AdamW } from "../../src/optim/index.ts";
import type { PeftModel } from "../../src/peft/index.ts";
import * as T from "../../src/tensor/index.ts";
import { Tokenizer } from "../../src/tokenizers/index.ts";
import { TINY_QWEN2_CONFIG } from "../generation/tinyQwen2.ts";

const repo = fileURLToPath(new URL("../../", import.meta.url));
export const TOKENIZER_DIR = path.join(repo, "node_modules", "@lenml", "tokenizer-qwen2_5", "models");
export const MEDICAL_300 = path.join(repo, "data/medical-dialogue/internal-medicine-300.csv");

export const CONFIG = { ...TINY_QWEN2_CONFIG };

export function tinyModel(seed = 1234): CausalLM {
  return createModel(CONFIG, { seed }) as unknown as CausalLM;
}

let tokenizer: Tokenizer | null = null;
export function qwenTokenizer(): Tokenizer {
  tokenizer ??= Tokenizer.fromDir(TOKENIZER_DIR);
  return tokenizer;
}

/**
 * `rows` medical dialogues (ask → answer) rendered with the chat template and cut to `len`
 * tokens: int32 [rows, len].
 */
export async function medicalBatch(rows = 2, len = 32, offset = 0): Promise<T.Tensor> {
  const data = (await readCsv(MEDICAL_300)) as Record<string, string>[];
  const tok = qwenTokenizer();
  const ids: number[] = [];
  for (const row of data.slice(offset, offset + rows)) {
    const text = tok.applyChatTemplate([
      { role: "user", content: row["ask"]! },
      { role: "assistant", content: row["answer"]! },
    ]);
    const t = tok.encode(text);
    if (t.length < len) throw new Error(`dialogue ${offset} too short`);
    ids.push(...t.slice(0, len));
  }
  return T.tensor(ids, { shape: [rows, len], dtype: "int32" });
}

/** Plain loop: AdamW over the trainable tensors; adds extraLoss and calls onOptimizerStep as the trainer does. */
export function trainSteps(pm: PeftModel, ids: T.Tensor, steps: number, lr = 1e-2): number[] {
  const opt = new AdamW(pm.trainableParameters(), { lr, weightDecay: 0 });
  const losses: number[] = [];
  pm.train();
  for (let s = 1; s <= steps; s++) {
    const ce = causalLMLoss(pm.forward(ids), ids);
    const extra = pm.extraLoss?.() ?? null;
    const loss = extra ? T.add(ce, extra) : ce;
    losses.push(ce.item());
    loss.backward();
    opt.step();
    pm.onOptimizerStep?.(s, steps);
    opt.zeroGrad();
  }
  pm.eval();
  return losses;
}

export function maxAbsDiff(a: T.Tensor, b: T.Tensor): number {
  const x = a.contiguous().toArray();
  const y = b.contiguous().toArray();
  if (x.length !== y.length) return Infinity;
  let m = 0;
  for (let i = 0; i < x.length; i++) m = Math.max(m, Math.abs(x[i]! - y[i]!));
  return m;
}

export function logits(model: CausalLM, ids: T.Tensor): T.Tensor {
  return T.noGrad(() => model.forward(ids));
}
