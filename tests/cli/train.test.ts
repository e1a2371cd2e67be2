/**
 * The training commands end to end, called in-process: prepare → pretrain → train (YAML config +
 * overriding flags; full and freeze) → eval (base vs fine-tuned table); masked-LM pretraining;
 * config/flag errors.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { fileURLToPath } from "node:url";
import "../../src/backend/index.ts";
import { evalCommand } from "../../src/cli/commands/eval.ts";
import { prepareCommand } from "../../src/cli/commands/prepare.ts";
import { pretrainCommand } from "../../src/cli/commands/pretrain.ts";
import { peftOptionsFrom, trainCommand } from "../../src/cli/commands/train.ts";
import { parseFlags, trainFlagSpec, trainOptionsFrom } from "../../src/cli/commands/trainFlags.ts";
import { loadCheckpoint } from "../../src/formats/index.ts";
import { loadCausalLM, loadModel } from "../../src/models/index.ts";

const repo = fileURLToPath(new URL("../../", import.meta.url));
const MEDICAL_300 = path.join(repo, "data/medical-dialogue/internal-medicine-300.csv");
const REPUBLIC = path.join(repo, "data/republic/republic-100k.txt");
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "graft-cli-train-"));
process.on("exit", () => fs.rmSync(tmp, { recursive: true, force: true }));

async function capture(fn: () => Promise<number>): Promise<{ code: number; out: string }> {
  const lines: string[] = [];
  const log = console.log;
  const write = process.stderr.write;
  console.log = (...a: unknown[]) => void lines.push(a.join(" "));
  process.stderr.write = (() => true) as typeof process.stderr.write;
  try {
    const code = await fn();
    return { code, out: lines.join("\n") };
  } finally {
    console.log = log;
    process.stderr.write = write;
  }
}

test("prepare → pretrain → train (YAML config, flags override) → eval prints base vs fine-tuned", async () => {
  const data = path.join(tmp, "data");
  const p = await capture(() => prepareCommand.run([MEDICAL_300, "--out", data, "--train", "32", "--val", "8"]));
  assert.equal(p.code, 0);
  assert.match(p.out, /medical format, gb18030, 300 usable rows, 0 bad/);
  assert.match(p.out, /wrote 32 rows to .*train\.json/);

  const base = path.join(tmp, "base");
  const pt = await capture(() => pretrainCommand.run(["--model-config", "qwen2-tiny", "--data", REPUBLIC, "--out", base, "--max-steps", "30", "--block-size", "64", "--batch-size", "4", "--lr", "3e-3", "--progress", "off"]));
  assert.equal(pt.code, 0);
  assert.match(pt.out, /qwen2: 1\d\d,\d\d\d parameters/);
  assert.match(pt.out, /30 steps, [\d,]+ tokens\/s; val loss [\d.]+/);
  assert.equal(loadCausalLM(base).config.model_type, "qwen2");

  const cfg = path.join(tmp, "run.yaml");
  fs.writeFileSync(cfg, [`base: ${base}`, `data: ${data}`, "method: full", "max_steps: 10", "batch-size: 4", "max_length: 768", "lr: 1.0e-3", "checkpoint_every: 2", "keep_last: 1", "progress: off"].join("\n"));
  const sft = path.join(tmp, "sft");
  const tr = await capture(() => trainCommand.run(["--config", cfg, "--max-steps", "4", "--out", sft]));
  assert.equal(tr.code, 0);
  assert.match(tr.out, /full: ([\d,]+) of \1 parameters train \(100\.00%\); 32 train \/ 8 val samples/);
  assert.match(tr.out, /^4 steps/m);
  const ck = loadCheckpoint(path.join(sft, "checkpoints"));
  assert.equal(ck.step, 4);
  assert.equal((ck.config as Record<string, unknown>)["max-steps"], 4);
  assert.equal((ck.config as Record<string, unknown>)["max-length"], 768);
  for (const f of ["config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json", "generation_config.json", "training_args.json", "loss.png"]) assert.ok(fs.existsSync(path.join(sft, f)), f);

  const frz = path.join(tmp, "freeze");
  const fr = await capture(() => trainCommand.run(["--base", base, "--data", data, "--method", "freeze", "--trainable-layers", "1", "--max-steps", "2", "--batch-size", "4", "--max-length", "768", "--out", frz, "--progress", "off"]));
  assert.match(fr.out, /freeze: [\d,]+ of [\d,]+ parameters train \(\d+\.\d\d%\)/);

  const ev = await capture(() => evalCommand.run(["--model", sft, "--base", base, "--data", data, "--generate", "2", "--max-new-tokens", "8", "--max-length", "768", "--out", path.join(tmp, "eval")]));
  assert.equal(ev.code, 0);
  const rows = ev.out.split("\n").filter((l) => l.startsWith("| "));
  assert.equal(rows.length, 3);
  assert.match(rows[1]!, /^\| base \(base\) +\| +[\d.]+ \| +[\d.]+ \| +[\d.]+ \| +[\d.]+ \| +[\d.]+ \| +[\d.]+ \|$/);
  assert.match(rows[2]!, /^\| fine-tuned \(sft\) /);
  const metrics = JSON.parse(fs.readFileSync(path.join(tmp, "eval", "metrics.json"), "utf8"));
  assert.equal(metrics.length, 2);
  assert.ok(metrics[1].valLoss < metrics[0].valLoss, `fine-tuning did not lower the val loss: ${metrics[0].valLoss} → ${metrics[1].valLoss}`);
  assert.equal(fs.readFileSync(path.join(tmp, "eval", "predictions.jsonl"), "utf8").trim().split("\n").length, 4);

  // An adapter run (short method name) evaluates as --model: its base comes from training_args.json.
  const lora = path.join(tmp, "lora");
  const lr = await capture(() => trainCommand.run(["--base", base, "--data", data, "--method", "lora", "--max-steps", "4", "--batch-size", "4", "--max-length", "768", "--lr", "1e-2", "--out", lora, "--progress", "off"]));
  assert.equal(lr.code, 0);
  assert.ok(fs.existsSync(path.join(lora, "adapter_config.json")) && !fs.existsSync(path.join(lora, "config.json")));
  const pt2 = await capture(() => trainCommand.run(["--base", base, "--data", data, "--method", "prefix", "--max-steps", "1", "--batch-size", "4", "--max-length", "768", "--out", path.join(tmp, "prefix"), "--progress", "off"]));
  assert.match(pt2.out, /prefix: [\d,]+ of [\d,]+ parameters train/);
  const ev2 = await capture(() => evalCommand.run(["--model", lora, "--data", data, "--generate", "0", "--max-length", "768", "--out", path.join(tmp, "eval-lora")]));
  assert.equal(ev2.code, 0);
  const m2 = JSON.parse(fs.readFileSync(path.join(tmp, "eval-lora", "metrics.json"), "utf8"));
  assert.equal(m2.length, 1);
  assert.ok(m2[0].valLoss < metrics[0].valLoss, `LoRA did not lower the val loss: ${metrics[0].valLoss} → ${m2[0].valLoss}`);
});

test("pretrain --objective mlm trains a BERT (masked LM) and lowers its loss below chance", async () => {
  const out = path.join(tmp, "bert");
  const r = await capture(() => pretrainCommand.run(["--model-config", "bert-tiny", "--objective", "mlm", "--mask-token", "<|im_start|>", "--data", REPUBLIC, "--out", out, "--max-steps", "40", "--block-size", "64", "--batch-size", "8", "--lr", "2e-3", "--progress", "off"]));
  assert.equal(r.code, 0);
  const evals = fs.readFileSync(path.join(out, "metrics.jsonl"), "utf8").trim().split("\n").map((l) => JSON.parse(l)).filter((l) => l.split === "eval");
  assert.equal(evals.length, 1);
  assert.ok(evals[0].loss < Math.log(320) - 1.5, `MLM val loss ${evals[0].loss}`);
  assert.equal(loadModel(out).constructor.name, "BertForMaskedLM");
});

test("a config file and the same flags give the same options; bad keys and values are named", () => {
  const cfg = path.join(tmp, "c.json");
  fs.writeFileSync(cfg, JSON.stringify({ lr: 2e-4, max_steps: 100, "grad-accum": 4, early_stopping: 3, resume: true, schedule: "cosine" }));
  const a = parseFlags(["--config", cfg], trainFlagSpec).values;
  const b = parseFlags(["--lr", "2e-4", "--max-steps", "100", "--grad-accum", "4", "--early-stopping", "3", "--resume", "--schedule", "cosine"], trainFlagSpec).values;
  assert.deepEqual(a, b);
  assert.deepEqual(trainOptionsFrom(a), { lr: 2e-4, maxSteps: 100, gradAccumSteps: 4, earlyStopping: { patience: 3, minDelta: undefined }, resume: true, schedule: "cosine" });
  fs.writeFileSync(cfg, JSON.stringify({ learning_rate: 1 }));
  assert.throws(() => parseFlags(["--config", cfg], trainFlagSpec), /c\.json: unknown option "learning_rate"/);
  fs.writeFileSync(cfg, JSON.stringify({ max_steps: 1.5 }));
  assert.throws(() => parseFlags(["--config", cfg], trainFlagSpec), /--max-steps must be an integer, got 1\.5/);
  assert.throws(() => parseFlags(["--lr", "fast"], trainFlagSpec), /--lr must be a number, got "fast"/);
  assert.throws(() => trainOptionsFrom(parseFlags(["--schedule", "step"], trainFlagSpec).values), /--schedule must be linear, cosine or constant/);
  assert.deepEqual(peftOptionsFrom({ r: 8, "lora-alpha": 16, "target-modules": ["q_proj", "v_proj"], "peft-option": ["bias=\"none\"", "init_lora_weights=false"], peft: { lora_dropout: 0.1 } }), {
    lora_dropout: 0.1, r: 8, lora_alpha: 16, target_modules: ["q_proj", "v_proj"], bias: "none", init_lora_weights: false,
  });
});

test("train: unknown method and missing flags are errors", async () => {
  await assert.rejects(trainCommand.run(["--base", tmp, "--data", tmp, "--out", tmp, "--method", "magic"]), /--method "magic" is not full, freeze or a PEFT method/);
  await assert.rejects(trainCommand.run(["--data", tmp, "--out", tmp]), /--base is required/);
  await assert.rejects(pretrainCommand.run(["--data", REPUBLIC, "--out", tmp]), /--model-config <preset\|config.json> is required/);
  await assert.rejects(prepareCommand.run([MEDICAL_300, "--out", tmp, "--format", "csv"]), /--format must be one of medical, alpaca, sharegpt, messages/);
});
