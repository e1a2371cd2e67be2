/**
 * Method details the matrix does not reach: AdaLoRA's cubic budget, orthogonal regulariser and
 * pruned save layout; prompt tuning's TEXT init; IA3's feed-forward (input) scaling and merge by hand.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import type { Qwen2ForCausalLM } from "../../src/models/index.ts";
import { IA3Linear, type InjectedPeftModel, RankAllocator, SVDLinear, adaLoraConfig, applyPeft, loadPeft, orthogonalRegularization, type PromptLearningModel } from "../../src/peft/index.ts";
import * as T from "../../src/tensor/index.ts";
import { logits, maxAbsDiff, medicalBatch, qwenTokenizer, tinyModel, trainSteps } from "./helpers.ts";

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "graft-peft-methods-"));
process.on("exit", () => fs.rmSync(tmp, { recursive: true, force: true }));

test("AdaLoRA budget: Σinit_r until tinit, cubic decay, Σtarget_r after total_step - tfinal", () => {
  const cfg = adaLoraConfig({ init_r: 6, target_r: 2, tinit: 1, tfinal: 2, total_step: 12, deltaT: 2 });
  const fake = Array.from({ length: 4 }, () => ({ r: 6 }) as unknown as SVDLinear);
  const alloc = new RankAllocator(cfg, fake.map((l, i) => [`l${i}`, l]));
  assert.equal(alloc.initBudget, 24);
  assert.equal(alloc.targetBudget, 8);
  assert.deepEqual(alloc.budgetSchedule(1, 12), [24, false]);
  // step 5: mul = 1 - (5 - 1) / (12 - 2 - 1) = 5/9 → floor(16 · (5/9)^3 + 8) = 10; masks at deltaT multiples only.
  assert.deepEqual(alloc.budgetSchedule(5, 12), [Math.floor(16 * (5 / 9) ** 3 + 8), false]);
  assert.equal(alloc.budgetSchedule(5, 12)[0], 10);
  assert.deepEqual(alloc.budgetSchedule(6, 12), [Math.floor(16 * (4 / 9) ** 3 + 8), true]);
  assert.deepEqual(alloc.budgetSchedule(11, 12), [8, true]);
});

test("AdaLoRA orthogonal regulariser equals mean ‖AAᵀ - I‖_F, ‖BᵀB - I‖_F computed by hand", () => {
  const pm = applyPeft(tinyModel(), "adalora", { init_r: 3, target_r: 1, total_step: 10 }) as InjectedPeftModel;
  const layers = pm.adapterLayers().map(([, l]) => l as SVDLinear);
  const fro = (m: number[], rows: number, cols: number, gram: "rows" | "cols") => {
    const n = gram === "rows" ? rows : cols;
    let s = 0;
    for (let i = 0; i < n; i++) {
      for (let j = 0; j < n; j++) {
        let d = 0;
        if (gram === "rows") for (let k = 0; k < cols; k++) d += m[i * cols + k]! * m[j * cols + k]!;
        else for (let k = 0; k < rows; k++) d += m[k * cols + i]! * m[k * cols + j]!;
        s += (d - (i === j ? 1 : 0)) ** 2;
      }
    }
    return Math.sqrt(s);
  };
  let want = 0;
  for (const l of layers) want += fro(l.lora_A.toArray(), 3, l.inFeatures, "rows") + fro(l.lora_B.toArray(), l.outFeatures, 3, "cols");
  want /= 2 * layers.length;
  assert.ok(Math.abs(orthogonalRegularization(layers)!.item() - want) < 1e-5);
  pm.train();
  assert.ok(Math.abs(pm.extraLoss!()!.item() - 0.5 * want) < 1e-5, "extraLoss = orth_reg_weight · regulariser");
  pm.eval();
  assert.equal(pm.extraLoss!(), null, "no regulariser outside training");
});

test("AdaLoRA saves only the kept ranks with rank_pattern, as PEFT, and reloads to the same logits", async () => {
  const ids = await medicalBatch(2, 12);
  const pm = applyPeft(tinyModel(), "adalora", { init_r: 4, target_r: 1, total_step: 4, lora_alpha: 16 });
  trainSteps(pm, ids, 4, 0.1);
  const dir = path.join(tmp, "adalora");
  pm.save(dir);
  const cfg = JSON.parse(fs.readFileSync(path.join(dir, "adapter_config.json"), "utf8"));
  assert.equal(cfg.peft_type, "ADALORA");
  const key = "model.layers.0.self_attn.q_proj.lora_E.default";
  assert.equal(cfg.rank_pattern[key].length, 4);
  const kept = cfg.rank_pattern[key].filter(Boolean).length;
  const raw = fs.readFileSync(path.join(dir, "adapter_model.safetensors"));
  const header = JSON.parse(raw.subarray(8, 8 + Number(raw.readBigUInt64LE(0))).toString("utf8"));
  const p = "base_model.model.model.layers.0.self_attn.q_proj";
  assert.deepEqual(header[`${p}.lora_A`].shape, [kept, 16]);
  assert.deepEqual(header[`${p}.lora_E`].shape, [kept, 1]);
  assert.deepEqual(header[`${p}.lora_B`].shape, [16, kept]);
  const loaded = loadPeft(tinyModel(), dir).eval() as InjectedPeftModel;
  assert.ok(maxAbsDiff(logits(loaded, ids), logits(pm, ids)) < 1e-6);
  const l = loaded.adapterLayers()[0]![1] as SVDLinear;
  assert.equal(l.ranknum, 4, "ranknum stays init_r after resizing (PEFT)");
});

test("prompt tuning TEXT init: the embeddings of the text's tokens, repeated to num_virtual_tokens", () => {
  const tok = qwenTokenizer();
  const text = "高血压";
  const ids = tok.encode(text, { addSpecialTokens: false });
  const P = ids.length * 2 + 1;
  const base = tinyModel();
  const pm = applyPeft(base, "prompt-tuning", { num_virtual_tokens: P, prompt_tuning_init: "TEXT", prompt_tuning_init_text: text, tokenizer: tok }) as PromptLearningModel;
  const emb = (base as unknown as Qwen2ForCausalLM).model.embed_tokens.weight;
  const want = T.embedding(T.tensor([...ids, ...ids, ids[0]!], { dtype: "int32" }), emb);
  assert.equal(maxAbsDiff(pm.promptEmbeddings(), want), 0);
  assert.equal(pm.peftConfig["prompt_tuning_init"], "TEXT");
  assert.throws(() => applyPeft(tinyModel(), "prompt-tuning", { prompt_tuning_init: "TEXT", prompt_tuning_init_text: text }), /needs a tokenizer/);
});

test("IA3: feed-forward modules scale the input, others the output; merge folds both", () => {
  const pm = applyPeft(tinyModel(), "ia3", {}) as InjectedPeftModel;
  const layers = new Map(pm.adapterLayers());
  const down = layers.get("model.layers.0.mlp.down_proj") as IA3Linear;
  const k = layers.get("model.layers.0.self_attn.k_proj") as IA3Linear;
  assert.ok(down.isFeedforward && !k.isFeedforward);
  assert.deepEqual(down.ia3_l.shape, [1, 32]);
  assert.deepEqual(k.ia3_l.shape, [8, 1]);
  const s = T.tensor(Array.from({ length: 32 }, (_, i) => 0.5 + i / 32), { shape: [1, 32] });
  down.setParameter("ia3_l", s);
  const x = T.randn([3, 32]);
  const want = T.noGrad(() => down.base_layer.forward(T.mul(x, s.reshape([32]))));
  assert.ok(maxAbsDiff(T.noGrad(() => down.forward(x)), want) < 1e-6);
  assert.ok(maxAbsDiff(T.noGrad(() => down.mergedLayer().forward(x)), want) < 1e-5);
  const sk = T.tensor(Array.from({ length: 8 }, (_, i) => 2 - i / 8), { shape: [8, 1] });
  k.setParameter("ia3_l", sk);
  const xk = T.randn([3, 16]);
  const wantK = T.noGrad(() => T.mul(k.base_layer.forward(xk), sk.reshape([8])));
  assert.ok(maxAbsDiff(T.noGrad(() => k.forward(xk)), wantK) < 1e-6);
  assert.ok(maxAbsDiff(T.noGrad(() => k.mergedLayer().forward(xk)), wantK) < 1e-5, "bias scales with the output");
});
