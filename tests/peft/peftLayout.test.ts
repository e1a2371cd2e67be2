/**
 * The Hugging Face PEFT layout: an adapter written by hand with PEFT's key names (no graft writer)
 * loads and computes what LoRA defines; graft's own saves use the same keys and shapes; bad
 * adapters fail naming the key.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { Generator } from "../../src/core/rng.ts";
import { type TensorMap, writeSafetensors } from "../../src/formats/index.ts";
import type { Qwen2ForCausalLM } from "../../src/models/index.ts";
import { Linear } from "../../src/nn/index.ts";
import { LoraLinear, applyPeft, loadPeft } from "../../src/peft/index.ts";
import * as T from "../../src/tensor/index.ts";
import { CONFIG, logits, maxAbsDiff, medicalBatch, tinyModel } from "./helpers.ts";

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "graft-peft-layout-"));
process.on("exit", () => fs.rmSync(tmp, { recursive: true, force: true }));

const C = CONFIG.hidden_size;
const D = C / CONFIG.num_attention_heads;
const OUT: Record<string, number> = { q_proj: CONFIG.num_attention_heads * D, v_proj: CONFIG.num_key_value_heads * D };
const R = 2;
const ALPHA = 6;

function randArray(n: number, g: Generator): Float32Array {
  return Float32Array.from({ length: n }, () => g.normal() * 0.3);
}

/** An adapter directory as PEFT's save_pretrained writes it, built with plain arrays. */
function writePeftAdapter(dir: string, extraConfig: Record<string, unknown> = {}, mutate?: (t: TensorMap) => void): TensorMap {
  fs.mkdirSync(dir, { recursive: true });
  const config = {
    alpha_pattern: {}, auto_mapping: null, base_model_name_or_path: "Qwen/Qwen2.5-0.5B-Instruct", bias: "none", fan_in_fan_out: false,
    inference_mode: true, init_lora_weights: true, layer_replication: null, layers_pattern: null, layers_to_transform: null, loftq_config: {},
    lora_alpha: ALPHA, lora_dropout: 0.05, megatron_config: null, megatron_core: "megatron.core", modules_to_save: null, peft_type: "LORA",
    r: R, rank_pattern: {}, revision: null, target_modules: ["v_proj", "q_proj"], task_type: "CAUSAL_LM", use_dora: false, use_rslora: false,
    a_key_of_a_newer_peft: 1, ...extraConfig,
  };
  fs.writeFileSync(path.join(dir, "adapter_config.json"), JSON.stringify(config));
  const g = new Generator(7);
  const tensors: TensorMap = {};
  for (let l = 0; l < CONFIG.num_hidden_layers; l++) {
    for (const m of ["q_proj", "v_proj"]) {
      const p = `base_model.model.model.layers.${l}.self_attn.${m}`;
      tensors[`${p}.lora_A.weight`] = { dtype: "float32", shape: [R, C], data: randArray(R * C, g) };
      tensors[`${p}.lora_B.weight`] = { dtype: "float32", shape: [OUT[m]!, R], data: randArray(OUT[m]! * R, g) };
    }
  }
  mutate?.(tensors);
  writeSafetensors(path.join(dir, "adapter_model.safetensors"), tensors, { format: "pt" });
  return tensors;
}

/** W + (alpha/r)·B·A computed with loops over plain arrays. */
function manualMerged(w: number[], a: Float32Array, b: Float32Array, out: number, inp: number): Float32Array {
  const res = Float32Array.from(w);
  for (let o = 0; o < out; o++) {
    for (let i = 0; i < inp; i++) {
      let s = 0;
      for (let k = 0; k < R; k++) s += b[o * R + k]! * a[k * inp + i]!;
      res[o * inp + i]! += (ALPHA / R) * s;
    }
  }
  return res;
}

test("a PEFT-layout LoRA adapter made elsewhere loads and computes W x + (alpha/r) B A x", async () => {
  const dir = path.join(tmp, "elsewhere");
  const tensors = writePeftAdapter(dir);
  const ids = await medicalBatch(1, 12);
  const model = tinyModel().eval();
  // Reference: the same base with the deltas added by hand.
  const ref = tinyModel().eval() as unknown as Qwen2ForCausalLM;
  for (let l = 0; l < CONFIG.num_hidden_layers; l++) {
    for (const m of ["q_proj", "v_proj"] as const) {
      const lin = ref.model.layers.items[l]!.self_attn[m];
      const p = `base_model.model.model.layers.${l}.self_attn.${m}`;
      const merged = manualMerged(lin.weight.toArray(), tensors[`${p}.lora_A.weight`]!.data as Float32Array, tensors[`${p}.lora_B.weight`]!.data as Float32Array, OUT[m]!, C);
      lin.setParameter("weight", T.fromArray(merged, [OUT[m]!, C]));
    }
  }
  const pm = loadPeft(model, dir);
  assert.equal(pm.method, "lora");
  assert.equal(pm.trainableParameters().length, 4 * CONFIG.num_hidden_layers);
  const q = (model as unknown as Qwen2ForCausalLM).model.layers.items[0]!.self_attn.q_proj as unknown as LoraLinear;
  assert.ok(q instanceof LoraLinear);
  assert.equal(q.scaling, ALPHA / R);
  assert.equal(q.dropoutP, 0.05);
  const d = maxAbsDiff(logits(pm, ids), logits(ref, ids));
  assert.ok(d < 1e-4, `logits match the hand-merged model (${d})`);

  // One layer, fully by hand: x W^T + b + s · (x A^T) B^T.
  const g = new Generator(3);
  const x = T.fromArray(randArray(3 * C, g), [3, C]);
  const base = q.base_layer as Linear;
  const w = base.weight.toArray();
  const bias = base.bias!.toArray();
  const a = tensors["base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight"]!.data as Float32Array;
  const b = tensors["base_model.model.model.layers.0.self_attn.q_proj.lora_B.weight"]!.data as Float32Array;
  const xs = x.toArray();
  const got = T.noGrad(() => q.forward(x)).toArray();
  const O = OUT["q_proj"]!;
  for (let n = 0; n < 3; n++) {
    const xa = Array.from({ length: R }, (_, k) => xs.slice(n * C, (n + 1) * C).reduce((s, v, i) => s + v * a[k * C + i]!, 0));
    for (let o = 0; o < O; o++) {
      let y = bias[o]!;
      for (let i = 0; i < C; i++) y += xs[n * C + i]! * w[o * C + i]!;
      for (let k = 0; k < R; k++) y += (ALPHA / R) * xa[k]! * b[o * R + k]!;
      assert.ok(Math.abs(got[n * O + o]! - y) < 1e-5, `q_proj output [${n}, ${o}]`);
    }
  }
});

test("graft saves LoRA with PEFT's exact key names, shapes and config", () => {
  const model = tinyModel();
  const pm = applyPeft(model, "lora", { r: 4, lora_alpha: 16 });
  const dir = path.join(tmp, "graft-save");
  pm.save(dir);
  const raw = fs.readFileSync(path.join(dir, "adapter_model.safetensors"));
  const headerLen = Number(raw.readBigUInt64LE(0));
  const header = JSON.parse(raw.subarray(8, 8 + headerLen).toString("utf8")) as Record<string, { dtype: string; shape: number[] }>;
  const expected: Record<string, number[]> = {};
  for (let l = 0; l < CONFIG.num_hidden_layers; l++) {
    for (const m of ["q_proj", "v_proj"]) {
      expected[`base_model.model.model.layers.${l}.self_attn.${m}.lora_A.weight`] = [4, C];
      expected[`base_model.model.model.layers.${l}.self_attn.${m}.lora_B.weight`] = [OUT[m]!, 4];
    }
  }
  const { __metadata__: meta, ...tensors } = header;
  assert.deepEqual(meta, { format: "pt" });
  assert.deepEqual(Object.fromEntries(Object.entries(tensors).map(([k, v]) => [k, v.shape])), expected);
  assert.ok(Object.values(tensors).every((t) => t.dtype === "F32"));
  const cfg = JSON.parse(fs.readFileSync(path.join(dir, "adapter_config.json"), "utf8"));
  assert.equal(cfg.peft_type, "LORA");
  assert.equal(cfg.task_type, "CAUSAL_LM");
  assert.equal(cfg.r, 4);
  assert.equal(cfg.lora_alpha, 16);
  assert.deepEqual(cfg.target_modules, ["q_proj", "v_proj"]);
  // PEFT init: A ~ kaiming-uniform(a=√5) → |A| ≤ 1/√in; B = 0.
  const a = tensors["base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight"];
  assert.ok(a);
  const layer = (model as unknown as Qwen2ForCausalLM).model.layers.items[0]!.self_attn.q_proj as unknown as LoraLinear;
  const av = layer.lora_A.weight.toArray();
  assert.ok(av.every((v) => Math.abs(v) <= 1 / Math.sqrt(C)) && Math.max(...av.map(Math.abs)) > 0.5 / Math.sqrt(C));
  assert.ok(layer.lora_B.weight.toArray().every((v) => v === 0));
});

test("rsLoRA scales by alpha/sqrt(r)", () => {
  const pm = applyPeft(tinyModel(), "lora", { r: 4, lora_alpha: 8, use_rslora: true });
  const q = (pm.base as unknown as Qwen2ForCausalLM).model.layers.items[0]!.self_attn.q_proj as unknown as LoraLinear;
  assert.equal(q.scaling, 8 / 2);
});

test("bad adapters fail naming the key or option", () => {
  const missing = path.join(tmp, "missing");
  writePeftAdapter(missing, {}, (t) => delete t["base_model.model.model.layers.1.self_attn.v_proj.lora_B.weight"]);
  assert.throws(() => loadPeft(tinyModel(), missing), /missing keys \(1\): base_model\.model\.model\.layers\.1\.self_attn\.v_proj\.lora_B\.weight/);
  const shaped = path.join(tmp, "shaped");
  writePeftAdapter(shaped, {}, (t) => {
    t["base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight"] = { dtype: "float32", shape: [3, C], data: new Float32Array(3 * C) };
  });
  assert.throws(() => loadPeft(tinyModel(), shaped), /layers\.0\.self_attn\.q_proj\.lora_A\.weight \(expected \[2, 16\], file \[3, 16\]\)/);
  const extra = path.join(tmp, "extra");
  writePeftAdapter(extra, {}, (t) => {
    t["base_model.model.model.layers.0.self_attn.q_proj.lora_magnitude_vector"] = { dtype: "float32", shape: [16], data: new Float32Array(16) };
  });
  assert.throws(() => loadPeft(tinyModel(), extra), /unexpected keys \(1\): .*lora_magnitude_vector/);
  const dora = path.join(tmp, "dora");
  writePeftAdapter(dora, { use_dora: true });
  assert.throws(() => loadPeft(tinyModel(), dora), /use_dora=true is not supported/);
  const unknownType = path.join(tmp, "boft");
  writePeftAdapter(unknownType, { peft_type: "BOFT" });
  assert.throws(() => loadPeft(tinyModel(), unknownType), /peft_type "BOFT" is not supported/);
  assert.throws(() => loadPeft(tinyModel(), path.join(tmp, "nothing-here")), /adapter_config\.json is missing/);
  assert.throws(() => applyPeft(tinyModel(), "lora", { r: 4, lora_alhpa: 8 }), /unknown option\(s\) lora_alhpa/);
  assert.throws(() => applyPeft(tinyModel(), "lora", { target_modules: ["nope_proj"] }), /matched no Linear module/);
});
