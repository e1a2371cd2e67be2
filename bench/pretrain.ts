/**
 * `node --import tsx bench/pretrain.ts`: training throughput of train() on The Republic (embedded
 * 100 KB) with a tiny Qwen2, in tokens/s, beside a bare forward + backward + AdamW loop over the
 * same batches measured in the same run (the trainer's overhead), and fp32 vs bf16, byte vocabulary
 * (320) vs the Qwen2.5 vocabulary size (151936, where the LM head dominates).
 */
import * as fs from "node:fs";
import { fileURLToPath } from "node:url";
import "../src/backend/index.ts";
import { ArrayDataset } from "../src/data/Dataset.ts";
import { shuffledBatches } from "../src/data/batches.ts";
import { byteTokenizer } from "../src/data/byteTokenizer.ts";
import { collateBlocks, packBlocks, splitDocuments, tokenizeDocuments } from "../src/data/pretrain.ts";
import type { DType } from "../src/core/dtype.ts";
import { type CausalLM, causalLMLoss, createModel } from "../src/models/index.ts";
import { AdamW } from "../src/optim/index.ts";
import { type LMBatch, causalLMLossFn, presetConfig, train } from "../src/train/index.ts";

const text = fs.readFileSync(fileURLToPath(new URL("../data/republic/republic-100k.txt", import.meta.url)), "utf8");
const tok = byteTokenizer();
const blocks = packBlocks(tokenizeDocuments(tok, splitDocuments(text)), 128);
let STEPS = 30;
const B = 8;

function model(vocab: number | null, dtype: DType): CausalLM {
  const cfg = presetConfig("qwen2-tiny", tok);
  return createModel(vocab ? { ...cfg, vocab_size: vocab } : cfg, { seed: 0, dtype }) as CausalLM;
}

async function trainer(vocab: number | null, dtype: DType): Promise<number> {
  const m = model(vocab, dtype);
  const data = shuffledBatches(new ArrayDataset(blocks), { batchSize: B, collate: (b) => collateBlocks(b) });
  const r = await train<CausalLM, LMBatch>({ model: m, train: data, loss: causalLMLossFn, maxSteps: STEPS, lr: 1e-3, progress: "off" });
  return r.tokensPerSec;
}

function bare(vocab: number | null, dtype: DType): number {
  const m = model(vocab, dtype);
  const opt = new AdamW(m.parameters(), { lr: 1e-3, weightDecay: 0 });
  const batches = Array.from({ length: STEPS }, (_, i) => collateBlocks(blocks.slice(i * B, (i + 1) * B)));
  const t0 = performance.now();
  for (const b of batches) {
    causalLMLoss(m.forward(b.inputIds), b.labels).backward();
    opt.step();
    opt.zeroGrad();
  }
  return (STEPS * B * 128) / ((performance.now() - t0) / 1000);
}

console.log(`train() on The Republic, qwen2-tiny (hidden 64, 2 layers), ${B} × 128 tokens per step, 30 steps (6 with the large vocabulary)`);
for (const [vocab, dtype] of [[null, "float32"], [null, "bfloat16"], [151936, "float32"]] as const) {
  STEPS = vocab ? 6 : 30;
  // Warm up both (JIT, allocator), then measure them interleaved.
  bare(vocab, dtype);
  await trainer(vocab, dtype);
  const raw = bare(vocab, dtype);
  const t = await trainer(vocab, dtype);
  const name = `${vocab ? "vocab 151936" : "byte vocab 320"}, ${dtype}`;
  console.log(`  ${name.padEnd(26)} train(): ${Math.round(t).toLocaleString("en-US").padStart(7)} tok/s   bare loop: ${Math.round(raw).toLocaleString("en-US").padStart(7)} tok/s   ratio ${(t / raw).toFixed(2)}`);
}
