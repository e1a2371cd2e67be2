/**
 * QuantizedLinear and quantizeModel: which modules are swapped (named in the report), the tied head,
 * inference-only enforcement, and a tiny Qwen2's logits and greedy tokens after q8_0 / q4_0
 * quantization against the float32 model, on the native and the reference backend.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import "../../src/backend/index.ts";
import { getBackend, setDefaultBackend } from "../../src/backend/registry.ts";
import { Generator } from "../../src/core/rng.ts";
import { GenerationRun } from "../../src/generation/index.ts";
import { type CausalLM, createModel } from "../../src/models/index.ts";
import { Linear } from "../../src/nn/index.ts";
import { QuantizedLinear, dequantizeWeight, qmatmul, quantizeModel, quantizeWeight } from "../../src/quant/index.ts";
import * as T from "../../src/tensor/index.ts";
import { noGrad } from "../../src/tensor/index.ts";

const CONFIG = {
  model_type: "qwen2",
  vocab_size: 384,
  hidden_size: 64,
  intermediate_size: 160,
  num_hidden_layers: 2,
  num_attention_heads: 4,
  num_key_value_heads: 2,
  max_position_embeddings: 256,
  rope_theta: 10000,
  tie_word_embeddings: true,
  initializer_range: 0.1, // peaked enough logits for greedy margins
};

function tiny(extra: Record<string, unknown> = {}): CausalLM {
  return createModel({ ...CONFIG, ...extra }, { seed: 7 }).eval() as CausalLM;
}

function logitsOf(model: CausalLM, ids: number[]): Float32Array {
  return noGrad(() => model.forward(T.tensor(Int32Array.from(ids), { shape: [1, ids.length], dtype: "int32" })).data() as Float32Array);
}

function greedyTokens(model: CausalLM, prompt: number[], n: number): number[] {
  const run = new GenerationRun(model, null, [prompt], { maxNewTokens: n, eosTokenIds: [] });
  while (!run.done) run.step();
  return run.results()[0]!.tokenIds;
}

const PROMPT = [3, 17, 99, 250, 7, 42, 300, 5];

test("QuantizedLinear: x Wq^T + b equals qmatmul plus the bias, and is close to the float Linear", () => {
  const lin = new Linear(96, 40, { generator: new Generator(1) });
  const x = T.randn([2, 3, 96], { generator: new Generator(2) });
  for (const type of ["q8_0", "q4_0"] as const) {
    const q = QuantizedLinear.fromLinear(lin, type);
    assert.equal(q.inFeatures, 96);
    assert.equal(q.outFeatures, 40);
    assert.equal(q.weightBytes, type === "q8_0" ? 40 * 96 + 40 * 3 * 2 : 40 * 48 + 40 * 3 * 2);
    const y = noGrad(() => q.forward(x));
    assert.deepEqual(y.shape, [2, 3, 40]);
    const want = noGrad(() => T.add(qmatmul(x, q.qweight), lin.bias!)).toArray();
    assert.deepEqual(y.toArray(), want);
    // Against the float layer: the weight's quantization error dominates.
    const ref = noGrad(() => lin.forward(x)).data() as Float32Array;
    const got = y.data() as Float32Array;
    const err = Math.max(...got.map((v, i) => Math.abs(v - ref[i]!)));
    const scale = Math.max(...ref.map(Math.abs));
    assert.ok(err < (type === "q8_0" ? 0.01 : 0.1) * scale, `${type}: max error ${err} vs max |y| ${scale}`);
    // And to the dequantized weight, within activation rounding (< 1% here).
    const dq = noGrad(() => T.add(T.matmul(x, dequantizeWeight(q.qweight).T), lin.bias!)).data() as Float32Array;
    const err2 = Math.max(...got.map((v, i) => Math.abs(v - dq[i]!)));
    assert.ok(err2 < 0.01 * scale, `${type}: error vs dequantized ${err2}`);
  }
});

test("QuantizedLinear is inference-only: an input that requires grad is refused", () => {
  const q = QuantizedLinear.fromLinear(new Linear(32, 8, { generator: new Generator(3) }), "q8_0");
  const x = T.randn([1, 32], { generator: new Generator(4) }).setRequiresGrad(true);
  assert.throws(() => q.forward(x), /QuantizedLinear\(32→8, q8_0\): quantized q8_0 weights are inference-only/);
  assert.deepEqual(noGrad(() => q.forward(x)).shape, [1, 8]);
  assert.deepEqual(q.parameters().map((p) => p.requiresGrad), [false]); // the bias, frozen
  assert.throws(() => q.forward(T.randn([1, 31])), /does not end in in_features=32/);
});

test("quantizeModel replaces every Linear and the tied head, naming them", () => {
  const m = tiny();
  const r = quantizeModel(m, "q8_0");
  const layerMods = ["self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj", "mlp.gate_proj", "mlp.up_proj", "mlp.down_proj"];
  const expected = [0, 1].flatMap((l) => layerMods.map((s) => `model.layers.${l}.${s}`));
  assert.deepEqual(r.replaced, [...expected, "lm_head"]);
  assert.deepEqual(r.skipped, []);
  for (const [path, mod] of m.namedModules()) assert.ok(!(mod instanceof Linear), `${path} is still a Linear`);
  const layer = (m as unknown as { model: { layers: { items: { mlp: { up_proj: unknown } }[] } } }).model.layers.items[0]!;
  assert.ok(layer.mlp.up_proj instanceof QuantizedLinear, "the field points at the new module");
  // Linear weights: 4 bytes per value before; 34 bytes per 32 after. The head streams the embedding.
  const linearParams = 2 * (64 * 64 * 2 + 64 * 32 * 2 + 3 * 64 * 160) + 384 * 64;
  assert.equal(r.bytesBefore, linearParams * 4);
  assert.equal(r.bytesAfter, (linearParams / 32) * 34);
  // The embedding stays float for the lookup.
  assert.equal((m as unknown as { model: { embed_tokens: { weight: T.Tensor } } }).model.embed_tokens.weight.dtype, "float32");
});

test("quantizeModel: lmHead type, filter and unquantizable widths are reported", () => {
  const untied = tiny({ tie_word_embeddings: false });
  const r = quantizeModel(untied, "q4_0", { filter: (p) => !p.includes("down_proj") });
  assert.ok(r.replaced.includes("lm_head"));
  assert.equal(((untied as unknown as { lm_head: QuantizedLinear }).lm_head).type, "q8_0", "the head defaults to q8_0");
  assert.equal(((untied as unknown as { model: { layers: { items: { mlp: { up_proj: QuantizedLinear } }[] } } }).model.layers.items[1]!.mlp.up_proj).type, "q4_0");
  assert.deepEqual(
    r.skipped,
    [0, 1].map((l) => ({ path: `model.layers.${l}.mlp.down_proj`, reason: "excluded by filter" })),
  );
  const kept = tiny();
  const r2 = quantizeModel(kept, "q4_0", { lmHead: "none" });
  assert.ok(!r2.replaced.includes("lm_head"));
  assert.equal((kept as unknown as { lm_head: unknown }).lm_head, null);
  assert.deepEqual(r2.skipped, [{ path: "lm_head", reason: "lmHead: none (tied embedding kept in float)" }]);
  const odd = createModel({ ...CONFIG, hidden_size: 48, num_attention_heads: 4, num_key_value_heads: 2, intermediate_size: 64 }, { seed: 1 });
  const r3 = quantizeModel(odd, "q8_0");
  assert.ok(r3.skipped.some((s) => s.path === "model.layers.0.self_attn.q_proj" && /in_features 48 is not a multiple of 32/.test(s.reason)));
  assert.ok(r3.replaced.includes("model.layers.0.mlp.down_proj"), "down_proj (in 64) still quantizes");
  assert.throws(() => quantizeModel(tiny(), "q3_k" as "q8_0"), /unknown type "q3_k"/);
});

for (const backend of ["native", "reference"]) {
  test(`quantized tiny Qwen2 on ${backend}: logits near float32, greedy tokens equal where the margin allows`, () => {
    setDefaultBackend(backend);
    try {
      const base = tiny();
      const want = logitsOf(base, PROMPT);
      const wantTokens = greedyTokens(base, PROMPT, 12);
      const spread = Math.max(...want) - Math.min(...want);
      for (const [type, tol] of [["q8_0", 0.02], ["q4_0", 0.2]] as const) {
        const m = tiny();
        quantizeModel(m, type);
        const got = logitsOf(m, PROMPT);
        const err = Math.max(...got.map((v, i) => Math.abs(v - want[i]!)));
        assert.ok(err < tol * spread, `${type}: max logit error ${err.toFixed(4)} vs logit spread ${spread.toFixed(3)}`);
        if (type !== "q8_0") continue;
        // Greedy, teacher-forced on the float model's tokens: wherever the float top-2 margin exceeds
        // twice that position's logit error, the argmax must be the same; and free-running greedy
        // generation matches up to the first position without such a margin.
        const tokens = greedyTokens(m, PROMPT, 12);
        const seq = [...PROMPT, ...wantTokens];
        const lf = logitsOf(base, seq);
        const lq = logitsOf(m, seq);
        const V = CONFIG.vocab_size;
        let safe = 0;
        let firstUnsafe = -1;
        for (let t = 0; t < seq.length; t++) {
          const a = lf.subarray(t * V, (t + 1) * V);
          const b = lq.subarray(t * V, (t + 1) * V);
          const e = Math.max(...a.map((v, i) => Math.abs(v - b[i]!)));
          const sorted = Array.from(a).sort((x, y) => y - x);
          if (sorted[0]! - sorted[1]! > 2 * e) {
            safe++;
            assert.equal(b.indexOf(Math.max(...b)), a.indexOf(sorted[0]!), `${type}: argmax at position ${t}`);
          } else if (firstUnsafe < 0 && t >= PROMPT.length - 1) firstUnsafe = t - (PROMPT.length - 1);
        }
        assert.ok(safe >= seq.length / 2, `only ${safe} of ${seq.length} positions had a safe margin`);
        const n = firstUnsafe < 0 ? wantTokens.length : firstUnsafe;
        assert.deepEqual(tokens.slice(0, n), wantTokens.slice(0, n));
      }
    } finally {
      setDefaultBackend("native");
    }
  });
}

test("native and reference backends agree on a quantized model's logits", () => {
  const m = tiny();
  quantizeModel(m, "q4_0");
  setDefaultBackend("reference");
  const ref = logitsOf(m, PROMPT);
  setDefaultBackend("native");
  const nat = logitsOf(m, PROMPT);
  const err = Math.max(...nat.map((v, i) => Math.abs(v - ref[i]!)));
  assert.ok(err < 1e-3, `max difference ${err}`);
  assert.equal(getBackend().name, "native");
});

test("quantizing a bf16 model keeps activations in bf16", () => {
  const m = tiny().to("bfloat16");
  quantizeModel(m, "q8_0");
  const out = noGrad(() => m.forward(T.tensor(Int32Array.from(PROMPT), { shape: [1, PROMPT.length], dtype: "int32" })));
  assert.equal(out.dtype, "float32"); // the model casts logits to float32
  const w = quantizeWeight(T.randn([8, 32]), "q8_0");
  assert.equal(noGrad(() => qmatmul(T.randn([2, 32]).to("bfloat16"), w)).dtype, "bfloat16");
});
