/**
 * Quantize-as-you-build (CreateOptions.quantize "nf4", transformers' load_in_4bit): a model created
 * or loaded that way holds the same NF4 codes, absmax and full-precision tensors, and gives the
 * same loss and gradients, bit for bit, as the full-precision model quantized afterwards; QLoRA
 * only wraps it; loading quantizes each layer before the next tensor is read; the training path
 * keeps no dequantized weight in the graph and frees the graph as backward runs.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import "../../src/backend/index.ts";
import type { DType } from "../../src/core/dtype.ts";
import { Generator } from "../../src/core/rng.ts";
import {
  type CausalLM,
  type CreateOptions,
  ModelError,
  assignWeightsStreaming,
  causalLMLoss,
  createModel,
  loadCausalLM,
  saveModel,
} from "../../src/models/index.ts";
import { Linear, type Module, StateDictError } from "../../src/nn/index.ts";
import { type QLoraModel, applyPeft, quantizeModelNF4 } from "../../src/peft/index.ts";
import { NF4Linear } from "../../src/quant/index.ts";
import * as T from "../../src/tensor/index.ts";

const QWEN = {
  model_type: "qwen2",
  vocab_size: 320,
  hidden_size: 64,
  intermediate_size: 128,
  num_hidden_layers: 2,
  num_attention_heads: 4,
  num_key_value_heads: 2,
  max_position_embeddings: 64,
  rope_theta: 10000,
  tie_word_embeddings: true,
};
/** Llama flavour: untied lm_head (stays full precision), biases on every projection. */
const LLAMA = { ...QWEN, model_type: "llama", tie_word_embeddings: false, attention_bias: true, mlp_bias: true };
const GPT2 = { model_type: "gpt2", vocab_size: 320, n_embd: 64, n_layer: 2, n_head: 4, n_positions: 64 };
const LORA = { r: 4, lora_alpha: 8, lora_dropout: 0, target_modules: ["q_proj", "v_proj"] };

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "graft-qlora-build-"));
const ids = T.randint(0, QWEN.vocab_size, [2, 12], { generator: new Generator(5), dtype: "int32" });

function nf4Layers(m: Module): [string, NF4Linear][] {
  return [...m.namedModules()].filter((e): e is [string, NF4Linear] => e[1] instanceof NF4Linear);
}

/** Same NF4 layers (codes, 8-bit absmax, nested absmax, offset, dtype) and same other tensors, exactly. */
function assertSameQuantizedModel(a: Module, b: Module, label: string): void {
  const la = nf4Layers(a);
  const lb = nf4Layers(b);
  assert.deepEqual(la.map(([p]) => p), lb.map(([p]) => p), `${label}: the same layers are NF4`);
  assert.ok(la.length > 0);
  for (const [[p, x], [, y]] of la.map((e, i) => [e, lb[i]!] as const)) {
    assert.deepEqual(x.qweight.shape, y.qweight.shape, `${label} ${p} shape`);
    assert.equal(x.qweight.blockSize, y.qweight.blockSize);
    assert.ok(Buffer.from(x.qweight.packed).equals(Buffer.from(y.qweight.packed)), `${label} ${p}: same 4-bit codes`);
    assert.ok(Buffer.from(x.qweight.absmax.codes).equals(Buffer.from(y.qweight.absmax.codes)), `${label} ${p}: same 8-bit absmax codes`);
    assert.deepEqual(Array.from(x.qweight.absmax.absmax), Array.from(y.qweight.absmax.absmax), `${label} ${p}: same nested absmax`);
    assert.equal(x.qweight.offset, y.qweight.offset, `${label} ${p}: same absmax offset`);
    assert.equal(x.computeDtype, y.computeDtype, `${label} ${p}: compute dtype`);
  }
  const sa = a.stateDict();
  const sb = b.stateDict();
  assert.deepEqual(Object.keys(sa).sort(), Object.keys(sb).sort(), `${label}: same full-precision keys`);
  for (const k of Object.keys(sa)) {
    assert.equal(sa[k]!.dtype, sb[k]!.dtype, `${label} ${k} dtype`);
    assert.deepEqual(Array.from(sa[k]!.contiguous().data() as Float32Array), Array.from(sb[k]!.contiguous().data() as Float32Array), `${label} ${k} values`);
  }
}

/** Loss and the LoRA gradients of one QLoRA step, as plain numbers. */
function qloraStep(base: CausalLM): { loss: number; grads: number[][]; memory: QLoraModel["memory"] } {
  const pm = applyPeft(base, "qlora", LORA) as QLoraModel;
  pm.train();
  const loss = causalLMLoss(pm.forward(ids), ids);
  loss.backward();
  return { loss: loss.item(), grads: pm.trainableParameters().map((p) => Array.from(p.grad!.to("float32").data() as Float32Array)), memory: pm.memory };
}

for (const dtype of ["float32", "bfloat16"] as DType[]) {
  for (const cfg of [QWEN, LLAMA]) {
    test(`createModel quantize nf4 (${cfg.model_type}, ${dtype}) equals create + quantizeModelNF4, bit for bit`, () => {
      const opts: CreateOptions = { seed: 3, dtype };
      const after = createModel(cfg, opts) as CausalLM;
      quantizeModelNF4(after);
      const built = createModel(cfg, { ...opts, quantize: "nf4" }) as CausalLM;
      assertSameQuantizedModel(built, after, "create");
      assert.equal(nf4Layers(built).length, 7 * cfg.num_hidden_layers, "every projection but lm_head");
      const head = [...built.namedModules()].find(([p]) => p === "lm_head")?.[1];
      if (!cfg.tie_word_embeddings) assert.ok(head instanceof Linear && head.weight.dtype === dtype, "lm_head stays a full-precision Linear");
      const embed = built.stateDict()["model.embed_tokens.weight"]!;
      assert.equal(embed.dtype, dtype, "the embedding stays in the compute dtype");

      const a = qloraStep(built);
      const b = qloraStep(after);
      assert.ok(Number.isFinite(a.loss));
      assert.equal(a.loss, b.loss, "same loss");
      assert.deepEqual(a.grads, b.grads, "same LoRA gradients");
      assert.deepEqual(a.memory, b.memory, "the QLoRA memory report counts the layers built NF4");
      assert.equal(a.memory.layers, 7 * cfg.num_hidden_layers);
    });
  }

  test(`loadCausalLM quantize nf4 (${dtype}, single file and shards) equals load + quantizeModelNF4, bit for bit`, () => {
    for (const [cfg, sharded] of [[QWEN, false], [LLAMA, true]] as const) {
      const dir = path.join(tmp, `${cfg.model_type}-${dtype}-${sharded}`);
      saveModel(createModel(cfg, { seed: 11 }), dir, { maxShardBytes: sharded ? 40_000 : undefined });
      if (sharded) assert.ok(fs.existsSync(path.join(dir, "model.safetensors.index.json")));
      const after = loadCausalLM(dir, { dtype });
      quantizeModelNF4(after);
      const loaded = loadCausalLM(dir, { dtype, quantize: "nf4" });
      assert.equal(loaded.training, false, "eval mode, as from_pretrained");
      assertSameQuantizedModel(loaded, after, `load ${cfg.model_type}`);
      assert.equal(qloraStep(loaded).loss, qloraStep(after).loss, "same loss");
    }
  });
}

test("GPT-2 (Conv1D weights transposed while streaming) loads and creates quantized, equal to quantizing afterwards", () => {
  const dir = path.join(tmp, "gpt2");
  saveModel(createModel(GPT2, { seed: 2 }), dir);
  const after = loadCausalLM(dir);
  quantizeModelNF4(after);
  const loaded = loadCausalLM(dir, { quantize: "nf4" });
  assertSameQuantizedModel(loaded, after, "gpt2 load");
  assert.equal(nf4Layers(loaded).length, 4 * GPT2.n_layer, "c_attn, c_proj, c_fc, mlp c_proj");
  const created = createModel(GPT2, { seed: 2, quantize: "nf4" });
  const createdAfter = createModel(GPT2, { seed: 2 });
  quantizeModelNF4(createdAfter);
  assertSameQuantizedModel(created, createdAfter, "gpt2 create");
});

test("applyPeft qlora on an NF4-built model only wraps it: the same NF4 layers, never quantized twice", () => {
  const base = createModel(QWEN, { seed: 1, quantize: "nf4" }) as CausalLM;
  const before = new Set(nf4Layers(base).map(([, m]) => m));
  const pm = applyPeft(base, "qlora", LORA);
  const after = nf4Layers(pm);
  assert.equal(after.length, before.size);
  for (const [p, m] of after) assert.ok(before.has(m), `${p} is an NF4Linear the model was built with`);
  // A block size other than the base's is refused, naming both.
  const base128 = createModel(QWEN, { seed: 1, quantize: "nf4", quantBlockSize: 128 }) as CausalLM;
  assert.equal(nf4Layers(base128)[0]![1].qweight.blockSize, 128);
  assert.throws(() => applyPeft(base128, "qlora", { ...LORA, bnb_4bit_blocksize: 64 }), /bnb_4bit_blocksize=64, but model\.layers\.0\.self_attn\.q_proj is already NF4 with block size 128/);
  assert.doesNotThrow(() => applyPeft(createModel(QWEN, { seed: 1, quantize: "nf4", quantBlockSize: 128 }) as CausalLM, "qlora", LORA), "no block size given: the base's is used");
});

test("a quantized load is streaming: each Linear is NF4 before the next tensor is read", () => {
  const dir = path.join(tmp, "stream");
  const src = createModel(LLAMA, { seed: 4 });
  saveModel(src, dir);
  const model = loadCausalLM(dir); // a model to load into again, tensor by tensor
  const state = Object.entries(src.stateDict());
  const seenAfter: string[] = [];
  function* tensors(): IterableIterator<[string, T.Tensor]> {
    for (const [k, t] of state) {
      // Before yielding a tensor, every Linear whose weight and bias were already yielded is NF4.
      for (const [p, m] of model.namedModules()) {
        if (m instanceof Linear && p !== "lm_head" && seenAfter.includes(`${p}.weight`) && seenAfter.includes(`${p}.bias`)) assert.fail(`${p} is still full precision`);
      }
      seenAfter.push(k);
      yield [k, t];
    }
  }
  assignWeightsStreaming(model, tensors(), { dtype: "float32" }, "float32", "test");
  assert.equal(nf4Layers(model).length, 7 * LLAMA.num_hidden_layers);
});

test("quantized loads are strict and bad quantize options are named", () => {
  const dir = path.join(tmp, "strict");
  const m = createModel(QWEN, { seed: 4 });
  saveModel(m, dir);
  const model = loadCausalLM(dir);
  const state = Object.entries(m.stateDict()).filter(([k]) => k !== "model.layers.1.mlp.up_proj.weight");
  state.push(["model.layers.0.extra.weight", T.zeros([2])], ["model.norm.weight", T.zeros([3])]);
  assert.throws(
    () => assignWeightsStreaming(model, state, { dtype: "float32" }, "float32", "model.safetensors"),
    (e: unknown) =>
      e instanceof StateDictError &&
      /missing keys \(1\): model\.layers\.1\.mlp\.up_proj\.weight;/.test(e.message) &&
      /unexpected keys \(1\): model\.layers\.0\.extra\.weight/.test(e.message) &&
      /mis-shaped keys \(1\): model\.norm\.weight \(model \[64\], model\.safetensors \[3\]\)/.test(e.message),
  );
  assert.throws(() => createModel(QWEN, { quantize: "int8" as "nf4" }), (e: unknown) => e instanceof ModelError && /quantize: "int8" is not supported/.test(e.message));
  assert.throws(() => loadCausalLM(dir, { quantize: "nf4", quantBlockSize: 7 }), /quantBlockSize must be a positive even integer, got 7/);
  assert.throws(() => createModel(QWEN, { quantize: "nf4", dtype: "float64" }), /quantize "nf4" computes in float32 or bfloat16, not dtype float64/);
});

test("NF4Linear training path: gradients equal the dequantized matmul's exactly, no weight kept in the graph", () => {
  const g = new Generator(9);
  for (const dtype of ["float32", "bfloat16"] as DType[]) {
    // Two layers of different sizes share the dequantization scratch buffer.
    const l1 = NF4Linear.fromWeight(T.randn([96, 64], { generator: g }).to(dtype), T.randn([96], { generator: g }).to(dtype));
    const l2 = NF4Linear.fromWeight(T.randn([32, 96], { generator: g }).to(dtype), null);
    const x = T.randn([3, 5, 64], { generator: g }).to(dtype).setRequiresGrad();
    const y = l2.forward(l1.forward(x));
    const w1 = l1.dequantizeWeight().to(dtype);
    const w2 = l2.dequantizeWeight().to(dtype);
    const xr = x.detach().setRequiresGrad();
    const yr = T.matmul(T.add(T.matmul(xr, w1.T), l1.bias!), w2.T);
    assert.deepEqual(Array.from(y.detach().to("float32").data() as Float32Array), Array.from(yr.detach().to("float32").data() as Float32Array), `${dtype} forward`);
    const gy = T.randn(y.shape as number[], { generator: g }).to(dtype);
    y.backward(gy);
    yr.backward(gy);
    assert.deepEqual(Array.from(x.grad!.to("float32").data() as Float32Array), Array.from(xr.grad!.to("float32").data() as Float32Array), `${dtype} dL/dx`);
    assert.ok(!y.node || y.node.inputs.length === 0, "the backward freed the graph");
    assert.throws(() => y.backward(gy), /backward through the graph a second time/);
  }
});
