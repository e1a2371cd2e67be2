/**
 * The trainer: pretraining a tiny Qwen2 on The Republic lowers the validation loss; a resumed run
 * ends with bit-identical weights; gradient accumulation equals one big batch (token-weighted);
 * early stopping restores the best weights; bad options fail with clear errors.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { fileURLToPath } from "node:url";
import "../../src/backend/index.ts";
import { ArrayDataset } from "../../src/data/Dataset.ts";
import { shuffledBatches } from "../../src/data/batches.ts";
import { byteTokenizer } from "../../src/data/byteTokenizer.ts";
import { collateBlocks, packBlocks, splitDocuments, tokenizeDocuments } from "../../src/data/pretrain.ts";
import { type SftSample, collateSft } from "../../src/data/sft.ts";
import { listCheckpoints } from "../../src/formats/index.ts";
import { type CausalLM, createModel, loadCausalLM } from "../../src/models/index.ts";
import type { Tensor } from "../../src/tensor/index.ts";
import { type LMBatch, TrainError, causalLMLossFn, evaluateLoss, pretrainModel, train } from "../../src/train/index.ts";

const repo = fileURLToPath(new URL("../../", import.meta.url));
const REPUBLIC = path.join(repo, "data/republic/republic-100k.txt");
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "graft-train-"));
process.on("exit", () => fs.rmSync(tmp, { recursive: true, force: true }));

const tok = byteTokenizer();
const blocks = packBlocks(tokenizeDocuments(tok, splitDocuments(fs.readFileSync(REPUBLIC, "utf8"))), 32);

function tinyGpt2(seed = 3, extra: Record<string, unknown> = {}): CausalLM {
  // GPT-2 has dropout 0.1: resume must restore the dropout RNG too.
  return <CausalLM>createModel({ model_type: "gpt2", vocab_size: 320, n_embd: 32, n_layer: 2, n_head: 2, n_positions: 64, ...extra }, { seed });
}
const NO_DROPOUT = { resid_pdrop: 0, embd_pdrop: 0, attn_pdrop: 0 };

const flat = (m: CausalLM) => m.namedParameters().map(([k, p]) => [k, Float32Array.from(p.data() as Float32Array)] as const);

test("pretraining a tiny Qwen2 on The Republic (embedded 100 KB) for 300 steps lowers the val loss clearly", async () => {
  const out = path.join(tmp, "pretrain");
  const r = await pretrainModel({
    modelConfig: "qwen2-tiny",
    data: [REPUBLIC],
    outDir: out,
    blockSize: 64,
    batchSize: 4,
    maxSteps: 300,
    lr: 3e-3,
    evalEvery: 100,
    evalMaxBatches: 8,
    progress: "off",
  });
  const untrained = <CausalLM>createModel(r.config as CausalLM["config"] & { model_type: string }, { seed: 0 });
  const valBlocks = packBlocks(tokenizeDocuments(tok, splitDocuments(fs.readFileSync(REPUBLIC, "utf8")), { separatorId: tok.tokenToId("<|endoftext|>") }), 64).slice(-r.valBlocks);
  const val = shuffledBatches(new ArrayDataset(valBlocks), { batchSize: 4, collate: (b) => collateBlocks(b), shuffle: false });
  const before = evaluateLoss<CausalLM, LMBatch>(untrained, val, causalLMLossFn, 8).loss;
  const after = r.train.finalValLoss!;
  assert.ok(before > 5, `untrained loss ${before} should be near ln(320) = 5.77`);
  assert.ok(after < 0.55 * before, `val loss ${before} → ${after} is not clearly lower`);
  assert.ok(after < 2.8, `val loss ${after}`);
  assert.deepEqual(r.train.valLoss.map((p) => p.step), [100, 200, 300]);
  // The saved model reloads and gives the same val loss.
  const reloaded = loadCausalLM(out);
  assert.ok(Math.abs(evaluateLoss<CausalLM, LMBatch>(reloaded, val, causalLMLossFn, 8).loss - after) < 1e-6);
  for (const f of ["config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json", "loss.png", "metrics.jsonl"]) assert.ok(fs.existsSync(path.join(out, f)), f);
  assert.ok(fs.readdirSync(path.join(out, "tb")).some((f) => f.startsWith("events.out.tfevents.")));
  const lines = fs.readFileSync(path.join(out, "metrics.jsonl"), "utf8").trim().split("\n").map((l) => JSON.parse(l));
  assert.ok(lines.some((l) => l.split === "eval" && l.step === 300 && Math.abs(l.loss - after) < 1e-12));
  assert.ok(r.train.tokensPerSec > 0);
});

function resumable(outDir: string, extra: Record<string, unknown> = {}) {
  const model = tinyGpt2();
  const trainSet = shuffledBatches(new ArrayDataset(blocks.slice(0, 40)), { batchSize: 4, collate: (b) => collateBlocks(b), seed: 5 });
  const val = shuffledBatches(new ArrayDataset(blocks.slice(40, 48)), { batchSize: 4, collate: (b) => collateBlocks(b), shuffle: false });
  return {
    model,
    run: (more: Record<string, unknown> = {}) =>
      train<CausalLM, LMBatch>({
        model, train: trainSet, val, loss: causalLMLossFn, lr: 1e-2, weightDecay: 0.1, schedule: "cosine", warmupSteps: 3,
        epochs: 3, gradAccumSteps: 2, evalEvery: 5, checkpointEvery: 4, keepLast: 2, outDir, seed: 11, progress: "off", ...extra, ...more,
      }),
  };
}

test("resume: stopping after 7 of 15 steps and resuming gives bit-identical weights to an uninterrupted run", async () => {
  const full = resumable(path.join(tmp, "full"));
  const rFull = await full.run();
  assert.equal(rFull.steps, 15); // 3 epochs × 10 batches / 2 accumulated
  const part = resumable(path.join(tmp, "part"));
  const r1 = await part.run({ stopAfterSteps: 7 });
  assert.equal(r1.steps, 7);
  assert.deepEqual(listCheckpoints(path.join(tmp, "part", "checkpoints")).map((c) => c.step), [4, 7]);
  // A fresh process: a new model (different init), then resume.
  const resumed = resumable(path.join(tmp, "part"), {});
  const rInit = flat(resumed.model);
  const r2 = await resumed.run({ resume: true });
  assert.ok(r2.resumedFrom?.endsWith("step-00000007.ckpt"));
  assert.equal(r2.steps, 15);
  const a = flat(full.model);
  const b = flat(resumed.model);
  for (let i = 0; i < a.length; i++) {
    assert.equal(a[i]![0], b[i]![0]);
    assert.ok(Buffer.from(a[i]![1].buffer).equals(Buffer.from(b[i]![1].buffer)), `${a[i]![0]} differs after resume`);
  }
  assert.ok(!Buffer.from(rInit[0]![1].buffer).equals(Buffer.from(a[0]![1].buffer)));
  assert.deepEqual(r2.trainLoss, rFull.trainLoss);
  assert.deepEqual(r2.valLoss, rFull.valLoss);
  // A run that stops at a checkpoint step and resumes from it must match too (no double eval/save).
  const part8 = resumable(path.join(tmp, "part8"));
  await part8.run({ stopAfterSteps: 8 });
  const resumed8 = resumable(path.join(tmp, "part8"));
  await resumed8.run({ resume: true });
  const c = flat(resumed8.model);
  for (let i = 0; i < a.length; i++) assert.ok(Buffer.from(a[i]![1].buffer).equals(Buffer.from(c[i]![1].buffer)), `${a[i]![0]} differs (resume at 8)`);
});

function sample(len: number, answerFrom: number, seed: number): SftSample {
  const inputIds = Array.from({ length: len }, (_, i) => (seed * 31 + i * 7) % 250);
  return { inputIds, labels: inputIds.map((id, i) => (i >= answerFrom ? id : -100)) };
}

test("gradient accumulation: 2 × 2 samples equal one batch of 4, weighted by answer tokens", async () => {
  // Uneven lengths and answer counts: a plain mean of the two micro-batch means would differ.
  const samples = [sample(20, 15, 1), sample(9, 2, 2), sample(30, 5, 3), sample(12, 10, 4)];
  const run = async (batchSize: number, accum: number) => {
    const model = tinyGpt2(9, NO_DROPOUT);
    const data = shuffledBatches(new ArrayDataset(samples), { batchSize, collate: (s) => collateSft(s, 0), shuffle: false });
    await train<CausalLM, LMBatch>({ model, train: data, loss: causalLMLossFn, lr: 1e-2, optimizer: "sgd", maxSteps: 1, gradAccumSteps: accum, maxGradNorm: 0, progress: "off" });
    return flat(model);
  };
  const big = await run(4, 1);
  const acc = await run(2, 2);
  const init = flat(tinyGpt2(9, NO_DROPOUT));
  let moved = 0;
  for (let i = 0; i < big.length; i++) {
    const x = big[i]![1];
    const y = acc[i]![1];
    for (let j = 0; j < x.length; j++) {
      assert.ok(Math.abs(x[j]! - y[j]!) < 1e-6, `${big[i]![0]}[${j}]: ${x[j]} vs ${y[j]}`);
      moved = Math.max(moved, Math.abs(x[j]! - init[i]![1][j]!));
    }
  }
  assert.ok(moved > 1e-4, "the step changed nothing");
});

test("early stopping: no improvement for `patience` evals stops the run and restores the best weights", async () => {
  const model = tinyGpt2(4);
  const data = shuffledBatches(new ArrayDataset(blocks.slice(0, 16)), { batchSize: 4, collate: (b) => collateBlocks(b), seed: 1 });
  const val = shuffledBatches(new ArrayDataset(blocks.slice(16, 20)), { batchSize: 4, collate: (b) => collateBlocks(b), shuffle: false });
  let atBest: Map<string, Float32Array> | null = null;
  const r = await train<CausalLM, LMBatch>({
    model, train: data, val, loss: causalLMLossFn, lr: 1e-3, maxSteps: 50, evalEvery: 2, progress: "off",
    // minDelta larger than any possible gain: only the first evaluation counts as an improvement.
    earlyStopping: { patience: 2, minDelta: 100 },
    callbacks: [{ onEval: (_s, log) => { if (log.improved) atBest = new Map(model.namedParameters().map(([k, p]) => [k, Float32Array.from(p.data() as Float32Array)])); } }],
  });
  assert.equal(r.stoppedEarly, true);
  assert.equal(r.steps, 6);
  assert.equal(r.bestStep, 2);
  assert.deepEqual(r.valLoss.map((p) => p.step), [2, 4, 6]);
  for (const [k, p] of model.namedParameters()) assert.deepEqual(Float32Array.from(p.data() as Float32Array), atBest!.get(k), k);
});

test("bad options are clear errors", async () => {
  const model = tinyGpt2();
  const data = shuffledBatches(new ArrayDataset(blocks.slice(0, 4)), { batchSize: 2, collate: (b) => collateBlocks(b) });
  await assert.rejects(train<CausalLM, LMBatch>({ model, train: data, loss: causalLMLossFn, gradAccumSteps: 0 }), /gradAccumSteps must be a positive integer/);
  await assert.rejects(train<CausalLM, LMBatch>({ model, train: data, loss: causalLMLossFn, resume: true }), /checkpointDir or outDir/);
  await assert.rejects(train<CausalLM, LMBatch>({ model, train: data, loss: causalLMLossFn, resume: path.join(tmp, "nowhere") }), /no checkpoint here/);
  model.freeze();
  await assert.rejects(train<CausalLM, LMBatch>({ model, train: data, loss: causalLMLossFn }), TrainError);
  const nan = (m: CausalLM, b: LMBatch) => ({ ...causalLMLossFn(m, b), loss: causalLMLossFn(m, b).loss.mul(NaN) as Tensor });
  model.unfreeze();
  await assert.rejects(train<CausalLM, LMBatch>({ model, train: data, loss: nan, maxSteps: 1 }), /step 1: the loss is NaN/);
  await assert.rejects(pretrainModel({ modelConfig: "qwen2-huge", data: [REPUBLIC], outDir: path.join(tmp, "x") }), /--model-config qwen2-huge: not a preset \(qwen2-tiny, .*\) and no such file/);
  await assert.rejects(pretrainModel({ modelConfig: "gpt2-tiny", data: [REPUBLIC], outDir: path.join(tmp, "x"), objective: "mlm" }), /needs a BERT config/);
});
