/**
 * Matrix runner: every PEFT method on a tiny Qwen2 with the real Qwen2.5 tokenizer. For each:
 * trainable-parameter count against the formula PEFT's print_trainable_parameters would give,
 * identity at init where the method starts as the identity, loss decreasing on a slice of the
 * medical-dialogue data, cached decoding equal to a full forward, save → load giving the same
 * logits, and merge giving the unmerged logits within 1e-5 where the method can merge.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { Linear } from "../../src/nn/index.ts";
import type { CausalLM } from "../../src/models/index.ts";
import { type LoraModel, type PeftModel, type QLoraModel, applyPeft, isAdapterLayer, loadPeft, peftMethods, quantizeModelNF4 } from "../../src/peft/index.ts";
import * as T from "../../src/tensor/index.ts";
import { CONFIG, logits, maxAbsDiff, medicalBatch, tinyModel, trainSteps } from "./helpers.ts";

const C = CONFIG.hidden_size;
const L = CONFIG.num_hidden_layers;
const D = C / CONFIG.num_attention_heads;
const Q_OUT = CONFIG.num_attention_heads * D;
const KV_OUT = CONFIG.num_key_value_heads * D;
const F = CONFIG.intermediate_size;
/** [in, out] of every Linear of a decoder layer. */
const LINEARS: Record<string, [number, number]> = {
  q_proj: [C, Q_OUT], k_proj: [C, KV_OUT], v_proj: [C, KV_OUT], o_proj: [Q_OUT, C], gate_proj: [C, F], up_proj: [C, F], down_proj: [F, C],
};
const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0);
const lora = (r: number, names: string[]) => L * sum(names.map((n) => r * (LINEARS[n]![0] + LINEARS[n]![1])));
const linear = (i: number, o: number) => i * o + o;

interface Case {
  method: string;
  label: string;
  options: Record<string, unknown>;
  trainable: number;
  /** Whether the adapter starts as the identity (logits equal to the base's). */
  identityAtInit: boolean;
  mergeable: boolean;
  lr?: number;
  /** Prepares the fresh base an adapter is loaded onto (QLoRA: the same 4-bit base). */
  prepareBase?: (m: CausalLM) => void;
}

const P = 4;
const H = 8;
const STEPS = 6;
const cases: Case[] = [
  { method: "lora", label: "lora (q_proj, v_proj default)", options: { r: 4, lora_alpha: 8 }, trainable: lora(4, ["q_proj", "v_proj"]), identityAtInit: true, mergeable: true },
  {
    method: "lora", label: "lora all-linear + rsLoRA + dropout", options: { r: 2, lora_alpha: 4, use_rslora: true, target_modules: "all-linear", lora_dropout: 0.1 },
    trainable: lora(2, Object.keys(LINEARS)), identityAtInit: true, mergeable: true,
  },
  { method: "lora", label: "lora regex targets", options: { r: 2, target_modules: ".*\\.mlp\\.(up|down)_proj" }, trainable: lora(2, ["up_proj", "down_proj"]), identityAtInit: true, mergeable: true },
  {
    method: "qlora", label: "qlora (NF4 base)", options: { r: 4, lora_alpha: 8 }, trainable: lora(4, ["q_proj", "v_proj"]), identityAtInit: false, mergeable: true,
    prepareBase: (m) => void quantizeModelNF4(m),
  },
  {
    method: "adalora", label: "adalora", options: { init_r: 6, target_r: 2, tinit: 1, total_step: STEPS },
    trainable: L * sum(["q_proj", "v_proj"].map((n) => 6 * LINEARS[n]![0] + LINEARS[n]![1] * 6 + 6)), identityAtInit: true, mergeable: true, lr: 0.1,
  },
  { method: "ia3", label: "ia3", options: {}, trainable: L * (KV_OUT + KV_OUT + F), identityAtInit: true, mergeable: true, lr: 0.1 },
  { method: "prompt-tuning", label: "prompt tuning (random)", options: { num_virtual_tokens: P }, trainable: P * C, identityAtInit: false, mergeable: false, lr: 5e-2 },
  {
    method: "p-tuning", label: "p-tuning MLP", options: { num_virtual_tokens: P, encoder_hidden_size: H }, trainable: P * C + linear(C, H) + linear(H, H) + linear(H, C),
    identityAtInit: false, mergeable: false,
  },
  {
    method: "p-tuning", label: "p-tuning LSTM", options: { num_virtual_tokens: P, encoder_hidden_size: H / 2, encoder_reparameterization_type: "LSTM" },
    trainable: (() => {
      const h = H / 2;
      const cell = (inp: number) => 4 * h * inp + 4 * h * h + 8 * h;
      return P * C + 2 * (cell(C) + cell(2 * h)) + linear(2 * h, 2 * h) + linear(2 * h, C);
    })(),
    identityAtInit: false, mergeable: false,
  },
  { method: "prefix-tuning", label: "prefix tuning (GQA-sized)", options: { num_virtual_tokens: P }, trainable: P * L * 2 * KV_OUT, identityAtInit: false, mergeable: false, lr: 5e-2 },
  {
    method: "prefix-tuning", label: "prefix tuning + projection", options: { num_virtual_tokens: P, prefix_projection: true, encoder_hidden_size: H },
    trainable: P * KV_OUT + linear(KV_OUT, H) + linear(H, L * 2 * KV_OUT), identityAtInit: false, mergeable: false,
  },
  {
    method: "adapter", label: "bottleneck adapter", options: { bottleneck_size: 4 }, trainable: L * 2 * (linear(C, 4) + linear(4, C)), identityAtInit: true, mergeable: false,
  },
];

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "graft-peft-matrix-"));
process.on("exit", () => fs.rmSync(tmp, { recursive: true, force: true }));

test("every issue method is registered", () => {
  for (const m of ["lora", "qlora", "adalora", "ia3", "prompt-tuning", "p-tuning", "prefix-tuning", "adapter"]) assert.ok(peftMethods().includes(m), m);
});

/** Prefill T-1 tokens then one step with a cache, with the mask and positions generate() passes. */
function cachedLastLogits(m: CausalLM, ids: T.Tensor): T.Tensor {
  const [B, Tn] = ids.shape as [number, number];
  return T.noGrad(() => {
    const cache = m.newCache(B, Tn);
    const pos = (a: number, b: number) => T.tensor(Array.from({ length: B * (b - a) }, (_, i) => a + (i % (b - a))), { shape: [B, b - a], dtype: "int32" });
    m.forward(ids.slice(1, 0, Tn - 1), { cache, attentionMask: T.ones([B, Tn - 1], { dtype: "int32" }), positionIds: pos(0, Tn - 1) });
    return m.forward(ids.slice(1, Tn - 1, Tn).contiguous(), { cache, attentionMask: T.ones([B, Tn], { dtype: "int32" }), positionIds: pos(Tn - 1, Tn) });
  });
}

for (const c of cases) {
  test(`matrix: ${c.label}`, async () => {
    const ids = await medicalBatch(2, 16);
    const base = tinyModel();
    const baseLogits = logits(base, ids);
    const nBase = base.numParameters();
    const pm: PeftModel = applyPeft(base, c.method, c.options);
    assert.equal(pm.method, c.method);

    // Trainable parameters: the formula, and nothing of the base.
    const trainable = pm.trainableParameters();
    assert.equal(sum(trainable.map((p) => p.numel)), c.trainable, "trainable parameter count");
    assert.ok(trainable.every((p) => p.requiresGrad));
    const trainableSet = new Set(trainable);
    const leaked = pm.parameters().filter((p) => p.requiresGrad && !trainableSet.has(p));
    assert.equal(leaked.length, 0, "only the adapter trains");

    const initLogits = logits(pm, ids);
    assert.deepEqual(initLogits.shape, baseLogits.shape, "logits keep the caller's positions");
    if (c.identityAtInit) assert.ok(maxAbsDiff(initLogits, baseLogits) < 1e-6, "identity at init");
    else if (c.method === "qlora") {
      const d = maxAbsDiff(initLogits, baseLogits);
      assert.ok(d > 0 && d < 0.5, `NF4 base is close to, not equal to, the fp32 base (${d})`);
    }

    const losses = trainSteps(pm, ids, STEPS, c.lr);
    assert.ok(losses.every(Number.isFinite));
    assert.ok(losses[losses.length - 1]! < losses[0]! - 1e-3, `loss decreases: ${losses.map((l) => l.toFixed(4)).join(" → ")}`);

    const trained = logits(pm, ids);
    // Logits here are O(0.4): the adapters move them by 0.05-0.5, far above the 1e-5 tolerances below.
    assert.ok(maxAbsDiff(trained, initLogits) > 1e-2, "training changed the output");
    const last = cachedLastLogits(pm, ids);
    const fullLast = trained.slice(1, ids.shape[1]! - 1, ids.shape[1]!);
    assert.ok(maxAbsDiff(last, fullLast) < 1e-4, `cached decoding equals the full forward (${maxAbsDiff(last, fullLast)})`);

    // Save → load onto a fresh copy of the base: the same logits.
    const dir = path.join(tmp, c.label.replace(/\W+/g, "-"));
    pm.save(dir);
    const cfg = JSON.parse(fs.readFileSync(path.join(dir, "adapter_config.json"), "utf8")) as Record<string, unknown>;
    assert.equal(typeof cfg["peft_type"], "string");
    const fresh = tinyModel();
    c.prepareBase?.(fresh);
    const loaded = loadPeft(fresh, dir).eval();
    const loadedLogits = logits(loaded, ids);
    assert.equal(maxAbsDiff(loadedLogits, trained), 0, "save → load gives identical logits");

    if (c.method === "adalora") {
      const pattern = cfg["rank_pattern"] as Record<string, boolean[]>;
      const kept = sum(Object.values(pattern).map((k) => k.filter(Boolean).length));
      assert.equal(kept, 2 * Object.keys(pattern).length, "the budget ends at target_r per layer");
      assert.equal(Object.keys(pattern).length, 2 * L);
    }

    if (!c.mergeable) {
      assert.equal(pm.merge, undefined, "no merge for this method");
      return;
    }
    if (c.method === "lora") {
      const lm = pm as LoraModel;
      lm.mergeAdapter();
      assert.ok(maxAbsDiff(logits(pm, ids), trained) < 1e-5, "merge_adapter keeps the logits");
      lm.unmergeAdapter();
      assert.ok(maxAbsDiff(logits(pm, ids), trained) < 1e-5, "unmerge_adapter restores the logits");
    }
    if (c.method === "qlora") {
      const mem = (pm as QLoraModel).memory;
      assert.equal(mem.layers, 7 * L);
      assert.ok(mem.nf4Bytes < mem.fp32Bytes / 6, `NF4 saves memory: ${mem.fp32Bytes} → ${mem.nf4Bytes} bytes`);
    }
    const merged = pm.merge!();
    const mergedLogits = logits(merged, ids);
    assert.ok(maxAbsDiff(mergedLogits, trained) < 1e-5, `merged logits equal the unmerged (${maxAbsDiff(mergedLogits, trained)})`);
    assert.ok(![...merged.namedModules()].some(([, m]) => isAdapterLayer(m)), "no adapter layer is left");
    for (const [p, m] of merged.namedModules()) if (/_proj$/.test(p)) assert.ok(m instanceof Linear, `${p} is a plain full-precision Linear`);
    assert.equal(merged.numParameters(), nBase, "the merged model has the base's parameters");
    assert.throws(() => pm.forward(ids), /merged/);
  });
}
