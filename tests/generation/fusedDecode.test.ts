/**
 * Fused decode (for a no-grad decode step, one Backend.decoderStack call, or a decoderLayer call
 * per layer) against the unfused forward (every op separately, as training runs it), on tiny random
 * Qwen2 models in float32, bfloat16, Q8_0 and Q4_0, on every backend: a left-padded batch of 2 must give the same
 * greedy tokens and the same logits at every step, with the fused kernel really taken; models it
 * does not fit (rope_scaling) fall back. Plus the KVCache slots the fused step writes into.
 */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import "../../src/backend/index.ts";
import { getBackend, listBackends, setDefaultBackend, defaultBackendName } from "../../src/backend/registry.ts";
import { GenerationRun } from "../../src/generation/index.ts";
import { type CausalLM, KVCache, createModel } from "../../src/models/index.ts";
import { quantizeModel } from "../../src/quant/index.ts";
import { type Tensor, noGrad, tensor, zeros } from "../../src/tensor/index.ts";

const CONFIG = {
  model_type: "qwen2",
  vocab_size: 384,
  hidden_size: 64,
  intermediate_size: 96,
  num_hidden_layers: 2,
  num_attention_heads: 4,
  num_key_value_heads: 2,
  max_position_embeddings: 64,
  rope_theta: 10000,
  tie_word_embeddings: true,
  // Larger than HF's 0.02, so a random model's greedy tokens vary.
  initializer_range: 0.25,
};
const PROMPTS = [
  [11, 12, 13, 14, 15],
  [70, 71, 72, 73, 74, 75, 76, 77, 78],
];
const NEW_TOKENS = 8;

const backends = listBackends().filter((b) => b === "reference" || b === "native");

function buildModel(variant: string, config: Record<string, unknown> = CONFIG): CausalLM {
  const m = createModel({ ...CONFIG, ...config }, { seed: 5, dtype: variant === "bfloat16" ? "bfloat16" : "float32" }) as CausalLM;
  if (variant === "q8_0" || variant === "q4_0") quantizeModel(m, variant);
  m.eval();
  return m;
}

/** Counts the layers run fused while fn runs: Backend.decoderLayer calls plus the layers of decoderStack calls. */
function countFused<T>(fn: () => T): [T, number] {
  const be = getBackend() as unknown as Record<string, (...a: unknown[]) => void>;
  let calls = 0;
  const wrapped: [string, boolean, (...a: unknown[]) => void][] = [];
  for (const name of ["decoderLayer", "decoderStack"]) {
    const orig = be[name]!;
    wrapped.push([name, Object.prototype.hasOwnProperty.call(be, name), orig]);
    be[name] = (...a: unknown[]) => {
      calls += name === "decoderStack" ? (a[2] as unknown[]).length : 1;
      // decoderStack composed layer by layer calls decoderLayer: count those layers once.
      const before = calls;
      const r = orig.apply(be, a);
      if (name === "decoderStack") calls = before;
      return r;
    };
  }
  try {
    return [fn(), calls];
  } finally {
    for (const [name, own, orig] of wrapped) {
      if (own) be[name] = orig;
      else delete be[name];
    }
  }
}

function greedy(model: CausalLM, fused: boolean): number[][] {
  const run = new GenerationRun(model, null, PROMPTS, { maxNewTokens: NEW_TOKENS, eosTokenIds: [], fused });
  while (!run.done) run.step();
  return run.results().map((r) => r.tokenIds);
}

/** Prefills the padded batch into two caches, then feeds the same tokens to both: logits per step, fused and not. */
function stepLogits(model: CausalLM): { fused: Float32Array[]; unfused: Float32Array[] } {
  const B = PROMPTS.length;
  const L = Math.max(...PROMPTS.map((p) => p.length));
  const pad = PROMPTS.map((p) => L - p.length);
  const mask = (n: number) => tensor(Int32Array.from({ length: B * n }, (_, j) => (j % n < pad[Math.floor(j / n)]! ? 0 : 1)), { shape: [B, n], dtype: "int32" });
  const pos = (start: number, n: number) =>
    tensor(Int32Array.from({ length: B * n }, (_, j) => Math.max(0, start + (j % n) - pad[Math.floor(j / n)]!)), { shape: [B, n], dtype: "int32" });
  const ids = tensor(Int32Array.from(PROMPTS.flatMap((p, b) => [...new Array<number>(pad[b]!).fill(0), ...p])), { shape: [B, L], dtype: "int32" });
  const out = { fused: [] as Float32Array[], unfused: [] as Float32Array[] };
  noGrad(() => {
    const caches = [model.newCache(B, L + 4), model.newCache(B, L + 4)] as const;
    for (const c of caches) model.forward(ids, { cache: c, attentionMask: mask(L), positionIds: pos(0, L) });
    for (let s = 0; s < 4; s++) {
      const next = tensor(Int32Array.from([100 + s, 200 + 3 * s]), { shape: [B, 1], dtype: "int32" });
      const o = { cache: caches[0], attentionMask: mask(L + s + 1), positionIds: pos(L + s, 1) };
      out.fused.push(Float32Array.from(model.forward(next, o).data() as Float32Array));
      out.unfused.push(Float32Array.from(model.forward(next, { ...o, cache: caches[1], fused: false }).data() as Float32Array));
    }
  });
  return out;
}

function maxAbsDiff(a: Float32Array, b: Float32Array): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}

for (const name of backends) {
  // An add-on without native/decode.cpp runs Backend.decoderLayer as its ops one by one: the same test holds.
  describe(`fused decode on the ${name} backend`, () => {
    const withBackend = <T>(fn: () => T): T => {
      const prev = defaultBackendName();
      setDefaultBackend(name);
      try {
        return fn();
      } finally {
        setDefaultBackend(prev);
      }
    };
    for (const variant of ["float32", "bfloat16", "q8_0", "q4_0"]) {
      test(`${variant}: same greedy tokens and logits as the unfused forward, padded batch of 2`, () =>
        withBackend(() => {
          const model = buildModel(variant);
          const [fusedIds, calls] = countFused(() => greedy(model, true));
          const [unfusedIds, none] = countFused(() => greedy(model, false));
          // Every decode step after the prefill ran each of the 2 layers fused; fused: false none.
          assert.equal(calls, CONFIG.num_hidden_layers * (NEW_TOKENS - 1));
          assert.equal(none, 0);
          assert.deepEqual(fusedIds, unfusedIds);
          assert.ok(new Set(fusedIds.flat()).size > 2, `the model's greedy tokens vary (${JSON.stringify(fusedIds)})`);
          const { fused, unfused } = stepLogits(model);
          const tol = variant === "bfloat16" ? 2e-2 : 1e-5;
          fused.forEach((l, s) => {
            assert.ok(maxAbsDiff(l, unfused[s]!) <= tol, `step ${s}: logits differ by ${maxAbsDiff(l, unfused[s]!)}`);
            assert.ok(l.some((x) => x !== 0));
          });
        }));
    }

    test("a model the fused kernel does not fit (rope_scaling) runs unfused with the same tokens", () =>
      withBackend(() => {
        const model = buildModel("float32", { rope_scaling: { rope_type: "linear", factor: 2 } });
        const [ids, calls] = countFused(() => greedy(model, true));
        assert.equal(calls, 0);
        assert.deepEqual(ids, greedy(model, false));
      }));
  });
}

describe("KVCache slots for fused decode", () => {
  const kv = (t: number, fill: number): Tensor => zeros([1, 2, t, 4]).add(fill);

  test("slots hand out the preallocated buffers and commit advances them", () => {
    const c = new KVCache(2, 1, 2, 4, 5);
    c.append(0, kv(2, 1), kv(2, 2));
    const s = c.slots(0, 1, "float32")!;
    assert.equal(s.past, 2);
    assert.deepEqual(s.k.shape, [1, 2, 5, 4]);
    s.k.slice(2, 2, 3).fill_(7);
    s.v.slice(2, 2, 3).fill_(8);
    c.commit(0, 1);
    assert.equal(c.layerLength(0), 3);
    const [k, v] = c.get(0)!;
    assert.deepEqual(k.select(2, 2).toArray(), new Array(8).fill(7));
    assert.deepEqual(v.select(2, 1).toArray(), new Array(8).fill(2));
    // A layer not yet appended to gets zeroed buffers.
    assert.equal(c.slots(1, 5, "float32")!.past, 0);
  });

  test("no capacity, no room or another dtype: null; commit past the capacity throws", () => {
    assert.equal(new KVCache(1, 1, 2, 4).slots(0, 1, "float32"), null);
    const c = new KVCache(1, 1, 2, 4, 3);
    c.append(0, kv(3, 1), kv(3, 1));
    assert.equal(c.slots(0, 1, "float32"), null);
    const d = new KVCache(1, 1, 2, 4, 3);
    d.append(0, kv(1, 1), kv(1, 1));
    assert.equal(d.slots(0, 1, "bfloat16"), null);
    assert.throws(() => d.commit(0, 3), /KVCache\.commit: 1 cached \+ 3 new positions exceed the capacity of 3/);
    assert.throws(() => d.slots(4, 1, "float32"), /KVCache\.slots: layer 4 out of range/);
  });
});
