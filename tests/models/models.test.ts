/**
 * Model tests beyond the golden fixtures: strict loading errors, save → load round trips (single
 * and sharded safetensors), KV-cache decoding equal to a full prefill, left-padded batches equal to
 * each prompt alone, bfloat16 weights, random init, and a tiny Qwen2 over the real Qwen2.5 vocab.
 */
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";
import "../../src/backend/index.ts";
import { type TensorMap, writeSafetensors } from "../../src/formats/index.ts";
import {
  BertForSequenceClassification,
  type CausalLM,
  KVCache,
  type Model,
  causalLMLoss,
  createModel,
  isCausalLM,
  loadCausalLM,
  loadModel,
  registeredModelTypes,
  saveModel,
} from "../../src/models/index.ts";
import { StateDictError } from "../../src/nn/index.ts";
import * as T from "../../src/tensor/index.ts";
import { type Tensor, noGrad } from "../../src/tensor/index.ts";
import { Tokenizer } from "../../src/tokenizers/index.ts";

const here = path.dirname(fileURLToPath(import.meta.url));

const QWEN2 = {
  model_type: "qwen2",
  vocab_size: 97,
  hidden_size: 32,
  intermediate_size: 48,
  num_hidden_layers: 2,
  num_attention_heads: 4,
  num_key_value_heads: 2,
  max_position_embeddings: 64,
  rope_theta: 10000,
  tie_word_embeddings: true,
  eos_token_id: 2,
};
const LLAMA = { ...QWEN2, model_type: "llama", head_dim: 12, num_key_value_heads: 1, tie_word_embeddings: false, rope_scaling: { rope_type: "llama3", factor: 4, low_freq_factor: 1, high_freq_factor: 4, original_max_position_embeddings: 16 } };
const GPT2 = { model_type: "gpt2", vocab_size: 97, n_embd: 32, n_head: 4, n_layer: 2, n_positions: 64 };

function tmpDir(): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), "graft-models-"));
}

/** Writes config.json + model.safetensors (state dict keys as they are). */
function writeModelDir(model: Model, dir: string, edit?: (m: TensorMap) => void): void {
  fs.writeFileSync(path.join(dir, "config.json"), JSON.stringify(model.config));
  const tensors: TensorMap = {};
  for (const [k, t] of Object.entries(model.stateDict())) tensors[k] = { dtype: t.dtype, shape: [...t.shape], data: t.contiguous().data() };
  edit?.(tensors);
  writeSafetensors(path.join(dir, "model.safetensors"), tensors);
}

const ids = (rows: number[][]) => T.tensor(rows, { dtype: "int32" });

function maxAbsDiff(a: Tensor, b: Tensor): number {
  assert.deepEqual([...a.shape], [...b.shape]);
  const x = a.toArray();
  const y = b.toArray();
  let m = 0;
  for (let i = 0; i < x.length; i++) m = Math.max(m, Math.abs(x[i]! - y[i]!));
  return m;
}

test("registry: model types, createModel, loadCausalLM rejects encoders, config errors", () => {
  assert.deepEqual(registeredModelTypes(), ["bert", "gpt2", "llama", "qwen2"]);
  const m = createModel(QWEN2, { seed: 1 });
  assert.ok(isCausalLM(m));
  assert.equal(m.config.model_type, "qwen2");
  assert.equal(m.config["rms_norm_eps"], 1e-6, "HF default filled in");
  assert.ok(!m.stateDict()["lm_head.weight"], "tied: no separate lm_head");
  assert.equal(createModel(QWEN2, { seed: 1 }).stateDict()["model.layers.0.self_attn.q_proj.weight"]!.toArray()[5], m.stateDict()["model.layers.0.self_attn.q_proj.weight"]!.toArray()[5], "seeded");
  assert.ok(m.stateDict()["model.layers.0.self_attn.q_proj.bias"], "qwen2 has q/k/v biases");
  const llama = createModel(LLAMA, { seed: 1 });
  const sd = llama.stateDict();
  assert.ok(!sd["model.layers.0.self_attn.q_proj.bias"], "llama: no attention bias by default");
  assert.deepEqual([...sd["model.layers.0.self_attn.q_proj.weight"]!.shape], [48, 32], "head_dim 12 x 4 heads");
  assert.deepEqual([...sd["lm_head.weight"]!.shape], [97, 32]);
  assert.throws(() => createModel({ model_type: "mamba" }), /model_type "mamba" is not supported \(supported: bert, gpt2, llama, qwen2\)/);
  assert.throws(() => createModel({ ...QWEN2, num_key_value_heads: 3 }), /not a multiple/);
  assert.throws(() => createModel({ ...LLAMA, rope_scaling: { rope_type: "yarn", factor: 2 } }), /rope_scaling type "yarn" is not supported/);

  const dir = tmpDir();
  try {
    assert.throws(() => loadModel(dir), /config\.json is missing/);
    const bert = createModel({ model_type: "bert", vocab_size: 50, hidden_size: 16, num_hidden_layers: 1, num_attention_heads: 2, intermediate_size: 32, max_position_embeddings: 16, architectures: ["BertForSequenceClassification"] });
    assert.ok(bert instanceof BertForSequenceClassification);
    saveModel(bert, dir);
    assert.throws(() => loadCausalLM(dir), /not a causal LM/);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test("strict loading names every missing, unexpected and mis-shaped key", () => {
  const dir = tmpDir();
  try {
    const m = createModel(QWEN2, { seed: 2 });
    writeModelDir(m, dir, (t) => {
      delete t["model.layers.1.mlp.up_proj.weight"];
      delete t["model.norm.weight"];
      t["model.layers.0.self_attn.extra.weight"] = { dtype: "float32", shape: [2], data: new Float32Array(2) };
      t["model.layers.0.self_attn.k_proj.bias"] = { dtype: "float32", shape: [3], data: new Float32Array(3) };
    });
    assert.throws(
      () => loadModel(dir),
      (e: Error) => {
        assert.ok(e instanceof StateDictError, e.message);
        for (const s of [
          "missing keys (2): model.layers.1.mlp.up_proj.weight, model.norm.weight",
          "unexpected keys (1): model.layers.0.self_attn.extra.weight",
          "mis-shaped keys (1): model.layers.0.self_attn.k_proj.bias (model [16], model.safetensors [3])",
        ]) {
          assert.ok(e.message.includes(s), `message lacks "${s}": ${e.message}`);
        }
        return true;
      },
    );
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test("save → load round trips (single file, sharded, bf16, tied lm_head copy) give identical logits", () => {
  const input = ids([[3, 14, 15, 92, 65, 35]]);
  for (const cfg of [QWEN2, LLAMA, GPT2]) {
    const m = (createModel(cfg, { seed: 3 }) as unknown as CausalLM).eval();
    const want = noGrad(() => m.forward(input));
    for (const sharded of [false, true]) {
      const dir = tmpDir();
      try {
        saveModel(m, dir, { maxShardBytes: sharded ? 20_000 : undefined });
        assert.equal(fs.existsSync(path.join(dir, "model.safetensors.index.json")), sharded);
        const loaded = loadCausalLM(dir);
        assert.equal(loaded.training, false, "loaded models are in eval mode");
        assert.equal(maxAbsDiff(noGrad(() => loaded.forward(input)), want), 0, `${cfg.model_type} sharded=${sharded}`);
      } finally {
        fs.rmSync(dir, { recursive: true, force: true });
      }
    }
  }
  // A tied checkpoint that also stores lm_head.weight loads (sanitize drops the copy).
  const dir = tmpDir();
  try {
    const m = createModel(QWEN2, { seed: 4 });
    writeModelDir(m, dir, (t) => {
      t["lm_head.weight"] = t["model.embed_tokens.weight"]!;
    });
    const loaded = loadCausalLM(dir, { dtype: "bfloat16" });
    assert.equal(loaded.stateDict()["model.embed_tokens.weight"]!.dtype, "bfloat16");
    const logits = noGrad(() => loaded.forward(input));
    assert.equal(logits.dtype, "float32");
    const ref = noGrad(() => (m as unknown as CausalLM).forward(input));
    assert.ok(maxAbsDiff(logits, ref) < 0.05, `bf16 logits near fp32 (${maxAbsDiff(logits, ref)})`);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

/** Feeds `prompt` in chunks of the given sizes through one cache; returns the concatenated logits. */
function chunked(model: CausalLM, prompt: number[][], sizes: number[], cache: KVCache, mask?: number[][]): Tensor {
  const out: Tensor[] = [];
  let pos = 0;
  for (const n of sizes) {
    const step = ids(prompt.map((r) => r.slice(pos, pos + n)));
    const attentionMask = mask ? ids(mask.map((r) => r.slice(0, pos + n))) : undefined;
    out.push(model.forward(step, { cache, attentionMask }));
    pos += n;
  }
  assert.equal(cache.length, pos);
  return T.cat(out, 1);
}

test("KV cache: token-by-token and chunked decoding equal the full prefill (qwen2, llama, gpt2)", () => {
  const prompt = [
    [5, 17, 33, 2, 81, 40, 9, 64],
    [7, 7, 1, 90, 12, 3, 55, 28],
  ];
  for (const cfg of [QWEN2, LLAMA, GPT2]) {
    const m = (createModel(cfg, { seed: 5 }) as unknown as CausalLM).eval();
    noGrad(() => {
      const full = m.forward(ids(prompt));
      const oneByOne = chunked(m, prompt, new Array(8).fill(1), m.newCache(2));
      const preallocated = chunked(m, prompt, [3, 1, 4], m.newCache(2, 16));
      assert.ok(maxAbsDiff(oneByOne, full) < 1e-5, `${cfg.model_type} token by token: ${maxAbsDiff(oneByOne, full)}`);
      assert.ok(maxAbsDiff(preallocated, full) < 1e-5, `${cfg.model_type} chunked, preallocated: ${maxAbsDiff(preallocated, full)}`);
    });
  }
});

test("logitsToKeep: the last N positions' logits, bit for bit those of the full forward (qwen2, llama, gpt2; float32, bfloat16)", () => {
  const prompt = [
    [5, 17, 33, 2, 81, 40],
    [7, 7, 1, 90, 12, 3],
  ];
  for (const cfg of [QWEN2, LLAMA, GPT2]) {
    for (const dtype of ["float32", "bfloat16"] as const) {
      const m = (createModel(cfg, { seed: 6, dtype }) as unknown as CausalLM).eval();
      noGrad(() => {
        const full = m.forward(ids(prompt));
        for (const keep of [1, 2, 6, 9]) {
          const got = m.forward(ids(prompt), { logitsToKeep: keep });
          const n = Math.min(keep, 6);
          assert.deepEqual(got.shape, [2, n, 97], `${cfg.model_type} ${dtype} keep ${keep}`);
          assert.equal(got.dtype, "float32");
          assert.deepEqual(got.toArray(), full.slice(1, 6 - n, 6).toArray(), `${cfg.model_type} ${dtype} keep ${keep}`);
        }
        assert.deepEqual(m.forward(ids(prompt), { logitsToKeep: 1, upcastLogits: false }).dtype, dtype);
        assert.throws(() => m.forward(ids(prompt), { logitsToKeep: 0 }), /logitsToKeep must be a positive integer, got 0/);
      });
    }
  }
});

test("KVCache: capacity, crop, clone, reset", () => {
  const c = new KVCache(1, 1, 2, 4, 5);
  const k = T.randn([1, 2, 3, 4]);
  const [k1] = noGrad(() => c.append(0, k, k));
  assert.deepEqual([...k1.shape], [1, 2, 3, 4]);
  assert.equal(maxAbsDiff(k1, k), 0);
  const copy = c.clone();
  c.crop(1);
  assert.equal(c.length, 1);
  assert.equal(copy.length, 3);
  assert.throws(() => noGrad(() => copy.append(0, k, k)), /exceed the capacity of 5/);
  assert.throws(() => c.append(0, T.randn([1, 3, 1, 4]), T.randn([1, 3, 1, 4])), /expected k, v of shape/);
  c.reset();
  assert.equal(c.length, 0);
  assert.equal(c.get(0), null);
});

test("left padding: a padded batch gives each prompt's logits alone, in prefill and cached decoding", () => {
  const a = [11, 22, 33, 44, 55, 66];
  const b = [70, 8, 19];
  const pad = 0;
  const batch = [a, [pad, pad, pad, ...b]];
  const mask = [a.map(() => 1), [0, 0, 0, 1, 1, 1]];
  const nextA = 9;
  const nextB = 31;
  for (const cfg of [QWEN2, LLAMA, GPT2]) {
    const m = (createModel(cfg, { seed: 6 }) as unknown as CausalLM).eval();
    noGrad(() => {
      const aloneA = m.forward(ids([[...a, nextA]]));
      const aloneB = m.forward(ids([[...b, nextB]]));
      // Prefill the padded batch through a cache, then decode one more token per row.
      const cache = m.newCache(2, 16);
      const pre = m.forward(ids(batch), { cache, attentionMask: ids(mask) });
      const step = m.forward(ids([[nextA], [nextB]]), { cache, attentionMask: ids(mask.map((r) => [...r, 1])) });
      const got = T.cat([pre, step], 1);
      const V = got.shape[2]!;
      const rowA = got.select(0, 0);
      const rowB = got.select(0, 1).slice(0, 3);
      assert.ok(maxAbsDiff(rowA, aloneA.select(0, 0)) < 1e-5, `${cfg.model_type} row a`);
      assert.ok(maxAbsDiff(rowB, aloneB.select(0, 0)) < 1e-5, `${cfg.model_type} row b: ${maxAbsDiff(rowB, aloneB.select(0, 0))}`);
      assert.equal(V, cfg.vocab_size);
    });
  }
});

test("causalLMLoss shifts labels and ignores -100; gradients reach every parameter", () => {
  const m = createModel(QWEN2, { seed: 7 }) as unknown as CausalLM;
  const input = ids([[4, 8, 15, 16, 23, 42]]);
  const logits = m.forward(input);
  const labels = ids([[4, 8, -100, 16, 23, 42]]);
  const loss = causalLMLoss(logits, labels);
  // By hand: positions 0, 2, 3, 4 predict 8, 16, 23, 42 (position 1 predicts an ignored label).
  const lp = T.logSoftmax(logits.detach(), -1).toArray();
  const V = 97;
  const manual = -([0, 2, 3, 4].map((t, i) => lp[t * V + [8, 16, 23, 42][i]!]!).reduce((x, y) => x + y, 0) / 4);
  assert.ok(Math.abs(loss.item() - manual) < 1e-5);
  loss.backward();
  for (const [name, p] of m.namedParameters()) assert.ok(p.grad && p.grad.abs().sum().item() > 0, `${name} got a gradient`);
});

test("bfloat16 model: forward, loss and backward run in bf16 with float32 logits", () => {
  const m = createModel(QWEN2, { seed: 8, dtype: "bfloat16" }) as unknown as CausalLM;
  const f = createModel(QWEN2, { seed: 8 }) as unknown as CausalLM;
  for (const [, p] of m.namedParameters()) assert.equal(p.dtype, "bfloat16");
  const input = ids([[1, 2, 3, 4, 5]]);
  const logits = m.forward(input);
  assert.equal(logits.dtype, "float32");
  assert.ok(maxAbsDiff(logits.detach(), noGrad(() => f.forward(input))) < 0.05);
  causalLMLoss(logits, input).backward();
  const g = m.stateDict()["model.layers.1.mlp.down_proj.weight"]!.grad!;
  assert.equal(g.dtype, "bfloat16");
  const cache = m.newCache(1, 8);
  noGrad(() => m.forward(input, { cache }));
  assert.equal(cache.get(0)![0].dtype, "bfloat16");
});

test("tiny Qwen2 over the real Qwen2.5 vocabulary (151,936) runs a chat prompt with a cache", () => {
  const tok = Tokenizer.fromDir(path.join(here, "..", "..", "node_modules", "@lenml", "tokenizer-qwen2_5", "models"));
  const m = createModel({ ...QWEN2, vocab_size: 151936, hidden_size: 16, intermediate_size: 32, num_hidden_layers: 1, num_attention_heads: 2, num_key_value_heads: 1 }, { seed: 9 }) as unknown as CausalLM;
  const prompt = tok.encode(tok.applyChatTemplate([{ role: "user", content: "你好" }], { addGenerationPrompt: true }));
  noGrad(() => {
    const cache = m.newCache(1, prompt.length + 2);
    const logits = m.forward(ids([prompt]), { cache });
    assert.deepEqual([...logits.shape], [1, prompt.length, 151936]);
    const next = logits.select(1, prompt.length - 1).argmax(-1).item();
    const step = m.forward(ids([[next]]), { cache });
    const full = m.forward(ids([[...prompt, next]]));
    assert.ok(maxAbsDiff(step.select(1, 0), full.select(1, prompt.length)) < 1e-5);
  });
});

test("KVCache with a capacity keeps working after an append under autograd", () => {
  const c = new KVCache(1, 1, 1, 2, 6);
  const a = T.randn([1, 1, 2, 2]);
  const b = T.randn([1, 1, 1, 2], { requiresGrad: true });
  const d = T.randn([1, 1, 2, 2]);
  noGrad(() => c.append(0, a, a));
  const [k2] = c.append(0, b, b); // grad enabled: concatenates, keeps the graph
  assert.ok(k2.requiresGrad);
  const [k3] = noGrad(() => c.append(0, d, d));
  assert.equal(c.length, 5);
  assert.equal(maxAbsDiff(k3, T.cat([a, b.detach(), d], 2)), 0);
});
