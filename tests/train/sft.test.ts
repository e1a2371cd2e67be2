/**
 * SFT with the real Qwen2.5 tokenizer and chat template: labels are -100 exactly on prompt and
 * padding positions, the loss ignores the logits of prompt positions, fine-tuning a tiny Qwen2 on a
 * slice of the medical dialogues lowers the validation loss, freeze trains only the top blocks,
 * and (once registered) a PEFT method trains an adapter.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { fileURLToPath } from "node:url";
import "../../src/backend/index.ts";
import { prepareDataset, readSftRecords } from "../../src/data/prepare.ts";
import { type SftSample, buildSftSamples, collateSft, encodeSft, packSamples } from "../../src/data/sft.ts";
import { causalLMLoss, loadCausalLM } from "../../src/models/index.ts";
import { loadPeft, peftMethods } from "../../src/peft/index.ts";
import * as T from "../../src/tensor/index.ts";
import { Tokenizer } from "../../src/tokenizers/index.ts";
import { evaluateSft, finetune, freezeBottomLayers } from "../../src/train/index.ts";
import { writeTinyQwen2 } from "../generation/tinyQwen2.ts";

const repo = fileURLToPath(new URL("../../", import.meta.url));
const MEDICAL_300 = path.join(repo, "data/medical-dialogue/internal-medicine-300.csv");
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "graft-sft-"));
process.on("exit", () => fs.rmSync(tmp, { recursive: true, force: true }));

const TINY = { hidden_size: 16, intermediate_size: 32, num_attention_heads: 2, num_key_value_heads: 1 };
const baseDir = writeTinyQwen2(path.join(tmp, "base"), TINY);
const tok = Tokenizer.fromDir(baseDir);
const IM_END = tok.tokenToId("<|im_end|>")!;
const NL = tok.encode("\n")[0]!;
const dataDir = path.join(tmp, "data");
prepareDataset({ input: MEDICAL_300, outDir: dataDir, train: 48, val: 16 });

test("labels are -100 exactly on the prompt (system, user turn, assistant header); the answer, <|im_end|> and newline train", () => {
  const rec = { question: "高血压能吃党参吗？", answer: "可以适量吃。" };
  const s = encodeSft(tok, rec)!;
  const prompt = tok.encode(tok.applyChatTemplate([{ role: "user", content: rec.question }], { addGenerationPrompt: true }), { addSpecialTokens: false });
  const answer = tok.encode(rec.answer, { addSpecialTokens: false });
  assert.deepEqual(s.inputIds, [...prompt, ...answer, IM_END, NL]);
  assert.deepEqual(s.labels, [...prompt.map(() => -100), ...answer, IM_END, NL]);
  // The prompt ends with the assistant header "<|im_start|>assistant\n".
  assert.equal(tok.decode(prompt.slice(-3)), "<|im_start|>assistant\n");
  assert.match(tok.decode(prompt), /^<\|im_start\|>system\nYou are Qwen/);

  // Padding: -100 labels and mask 0 on the padded tail only.
  const short = encodeSft(tok, { question: "头疼", answer: "休息" })!;
  const b = collateSft([s, short], tok.padTokenId!);
  const L = s.inputIds.length;
  const labels = b.labels.toArray();
  const mask = b.attentionMask.toArray();
  const ids = b.inputIds.toArray();
  for (let t = 0; t < L; t++) {
    assert.equal(labels[t], s.labels[t]);
    assert.equal(mask[t], 1);
    if (t < short.inputIds.length) assert.equal(labels[L + t], short.labels[t]);
    else {
      assert.equal(labels[L + t], -100, `pad position ${t}`);
      assert.equal(mask[L + t], 0);
      assert.equal(ids[L + t], tok.padTokenId);
    }
  }
});

test("multi-turn: every assistant reply trains, every user turn is masked", () => {
  const s = encodeSft(tok, { messages: [{ role: "user", content: "问一" }, { role: "assistant", content: "答一" }, { role: "user", content: "问二" }, { role: "assistant", content: "答二" }] })!;
  const trained = s.inputIds.filter((_, i) => s.labels[i] !== -100);
  assert.equal(tok.decode(trained), "答一<|im_end|>\n答二<|im_end|>\n");
  assert.equal(tok.decode(s.inputIds), tok.applyChatTemplate([{ role: "user", content: "问一" }, { role: "assistant", content: "答一" }, { role: "user", content: "问二" }, { role: "assistant", content: "答二" }]));
});

test("the loss ignores prompt positions: their logits get zero gradient and changing them changes nothing", () => {
  const s = encodeSft(tok, { question: "感冒发烧怎么办？", answer: "多喝水，注意休息。" })!;
  const Tn = s.inputIds.length;
  const V = 151936;
  const logits = T.randn([1, Tn, V], { std: 2 }).setRequiresGrad();
  const labels = T.tensor(s.labels, { dtype: "int32", shape: [1, Tn] });
  const loss = causalLMLoss(logits, labels);
  loss.backward();
  const grad = logits.grad!.data() as Float32Array;
  const x = logits.data() as Float32Array;
  // Position t predicts token t + 1: it counts iff labels[t + 1] is not -100.
  let manual = 0;
  let n = 0;
  for (let t = 0; t < Tn; t++) {
    const counts = t + 1 < Tn && s.labels[t + 1] !== -100;
    let gmax = 0;
    for (let v = 0; v < V; v++) gmax = Math.max(gmax, Math.abs(grad[t * V + v]!));
    if (!counts) assert.equal(gmax, 0, `position ${t} (a prompt or last position) got a gradient`);
    else {
      assert.ok(gmax > 0);
      let m = -Infinity;
      for (let v = 0; v < V; v++) m = Math.max(m, x[t * V + v]!);
      let se = 0;
      for (let v = 0; v < V; v++) se += Math.exp(x[t * V + v]! - m);
      manual += m + Math.log(se) - x[t * V + s.labels[t + 1]!]!;
      n++;
    }
  }
  assert.equal(n, s.labels.filter((l) => l !== -100).length);
  assert.ok(Math.abs(loss.item() - manual / n) < 1e-4, `${loss.item()} vs ${manual / n}`);
  // Scramble every prompt position's logits: the loss is bit-identical.
  const y = Float32Array.from(x);
  for (let t = 0; t < Tn; t++) if (!(t + 1 < Tn && s.labels[t + 1] !== -100)) for (let v = 0; v < V; v++) y[t * V + v] = Math.sin(v * 0.37 + t) * 50;
  assert.equal(causalLMLoss(T.fromArray(y, [1, Tn, V]), labels).item(), loss.item());
});

test("truncation drops samples with no answer left; packing concatenates whole samples up to maxLength", () => {
  const rec = { question: "高血压能吃党参吗？", answer: "可以适量吃。" };
  const full = encodeSft(tok, rec)!;
  const promptLen = full.labels.indexOf(full.labels.find((l) => l !== -100)!);
  assert.equal(encodeSft(tok, rec, { maxLength: promptLen }), null);
  assert.equal(encodeSft(tok, rec, { maxLength: promptLen + 2 })!.inputIds.length, promptLen + 2);
  const { stats } = buildSftSamples(tok, [rec, rec], { maxLength: promptLen });
  assert.equal(stats.dropped, 2);
  const mk = (n: number, tag: number): SftSample => ({ inputIds: Array(n).fill(tag), labels: Array(n).fill(tag) });
  const packed = packSamples([mk(3, 1), mk(4, 2), mk(5, 3), mk(2, 4)], 8);
  assert.deepEqual(packed.map((p) => p.inputIds), [[1, 1, 1, 2, 2, 2, 2], [3, 3, 3, 3, 3, 4, 4]]);
  // Packing real samples keeps every token and label, in rows of at most maxLength.
  const recs = readSftRecords(path.join(dataDir, "train.json")).slice(0, 12);
  const plain = buildSftSamples(tok, recs, { maxLength: 512 });
  const pk = buildSftSamples(tok, recs, { maxLength: 512, packing: true });
  assert.ok(pk.samples.length < plain.samples.length);
  assert.ok(pk.samples.every((x) => x.inputIds.length <= 512));
  assert.deepEqual(pk.samples.flatMap((x) => x.labels), plain.samples.flatMap((x) => x.labels));
  assert.deepEqual(pk.samples.flatMap((x) => x.inputIds), plain.samples.flatMap((x) => x.inputIds));
});

test("full SFT of a tiny Qwen2 (real Qwen2.5 tokenizer) on 48 medical dialogues lowers the val loss", async () => {
  const val = readSftRecords(path.join(dataDir, "val.json")).slice(0, 8);
  const before = await evaluateSft("base", loadCausalLM(baseDir), tok, val, { generateSamples: 0, maxLength: 112 });
  const out = path.join(tmp, "sft-full");
  const r = await finetune({ base: baseDir, data: dataDir, outDir: out, method: "full", maxLength: 112, batchSize: 2, maxSteps: 16, lr: 3e-2, evalEvery: 8, maxValSamples: 8, progress: "off" });
  assert.equal(r.trainSamples + r.valSamples + r.dropped, 48 + 8);
  assert.ok(r.trainSamples >= 40, `only ${r.trainSamples} samples fit 112 tokens`);
  assert.equal(r.trainableParameters, r.totalParameters);
  const after = await evaluateSft("sft", loadCausalLM(out), Tokenizer.fromDir(out), val, { generateSamples: 2, maxNewTokens: 4, maxLength: 112 });
  assert.ok(before.valLoss > 11, `untrained loss ${before.valLoss} ≈ ln(151936)`);
  assert.ok(after.valLoss < before.valLoss - 1, `val loss ${before.valLoss} → ${after.valLoss}`);
  assert.ok(Math.abs(after.valLoss - r.train.finalValLoss!) < 1e-4);
  assert.ok(Math.abs(after.perplexity - Math.exp(after.valLoss)) < 1e-9 * after.perplexity);
  assert.equal(after.predictions.length, 2);
  assert.ok(typeof after.bleu4 === "number" && typeof after.rougeL === "number");
});

test("freeze: --trainable-layers 1 trains only the top block; embeddings and the bottom block stay", async () => {
  const out = path.join(tmp, "sft-freeze");
  const r = await finetune({ base: baseDir, data: dataDir, outDir: out, method: "freeze", trainableLayers: 1, maxLength: 64, batchSize: 2, maxSteps: 3, lr: 1e-2, maxTrainSamples: 8, maxValSamples: 4, progress: "off" });
  const base = loadCausalLM(baseDir);
  const tuned = loadCausalLM(out);
  const baseP = new Map(base.namedParameters());
  let top = 0;
  for (const [k, p] of tuned.namedParameters()) {
    const bytes = (t: T.Tensor) => {
      const d = t.data() as Float32Array; // a view into the model's packed block
      return Buffer.from(d.buffer, d.byteOffset, d.byteLength);
    };
    const same = bytes(p).equals(bytes(baseP.get(k)!));
    if (k.startsWith("model.layers.1.")) {
      if (k.endsWith(".weight") && !k.includes("norm")) assert.ok(!same, `${k} did not train`);
      top += p.numel;
    } else assert.ok(same, `${k} changed`);
  }
  assert.equal(r.trainableParameters, top);
  assert.throws(() => freezeBottomLayers(loadCausalLM(baseDir), 3), /--trainable-layers must be an integer in \[1, 2\]/);
});

test("PEFT (lora) through graft train's path: adapter out, loadable with loadPeft", { skip: peftMethods().includes("lora") ? false : "no PEFT method \"lora\" is registered yet" }, async () => {
  const out = path.join(tmp, "sft-lora");
  const r = await finetune({ base: baseDir, data: dataDir, outDir: out, method: "lora", peft: { r: 4, lora_alpha: 8, target_modules: ["q_proj", "v_proj"] }, maxLength: 64, batchSize: 2, maxSteps: 3, lr: 1e-2, maxTrainSamples: 8, maxValSamples: 4, checkpointEvery: 2, progress: "off" });
  assert.ok(r.trainableParameters < r.totalParameters / 10);
  assert.ok(fs.existsSync(path.join(out, "adapter_config.json")));
  assert.ok(fs.existsSync(path.join(out, "checkpoints", "step-00000002.ckpt", "adapter_model.safetensors")));
  const m = loadPeft(loadCausalLM(baseDir), out);
  const ids = T.tensor([[1, 2, 3]], { dtype: "int32" });
  assert.deepEqual(m.forward(ids).shape, [1, 3, 151936]);
});

test("QLoRA through graft train's path: the base loads as NF4 (load_in_4bit), the LoRA adapter trains and is saved", async () => {
  const peft = { r: 4, lora_alpha: 8, target_modules: ["q_proj", "v_proj"] };
  const common = { base: baseDir, data: dataDir, peft, maxLength: 64, batchSize: 2, maxSteps: 2, lr: 1e-2, maxTrainSamples: 8, maxValSamples: 4, progress: "off" as const };
  const q = await finetune({ ...common, outDir: path.join(tmp, "sft-qlora"), method: "qlora" });
  const l = await finetune({ ...common, outDir: path.join(tmp, "sft-lora-ref"), method: "lora" });
  assert.equal(q.trainableParameters, l.trainableParameters, "the same adapter as LoRA");
  // The 7 projections of each of the 2 layers hold NF4 codes, not float parameters.
  const projWeights = 2 * (16 * 16 + 2 * 16 * 8 + 16 * 16 + 3 * 16 * 32);
  assert.equal(l.totalParameters - q.totalParameters, projWeights);
  assert.ok(fs.existsSync(path.join(tmp, "sft-qlora", "adapter_model.safetensors")));
});
