/**
 * Module.packParameters and Module.to: every floating parameter moves into one block per dtype, at
 * 64-byte boundaries in module order, with its values, shape and requiresGrad; a shared parameter
 * stays one storage; integer parameters and withEmptyWeights placeholders stay as they were; the
 * model computes what it did. loadModel reads a qwen2 checkpoint into packed parameters, and
 * quantizeModel repacks what stays in float, off the old block.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import "../../src/backend/index.ts";
import { Generator } from "../../src/core/rng.ts";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { type CausalLM, createModel, isEmptyWeight, loadCausalLM, saveModel, withEmptyWeights } from "../../src/models/index.ts";
import { linear } from "../../src/models/weights.ts";
import * as nn from "../../src/nn/index.ts";
import { quantizeModel } from "../../src/quant/index.ts";
import * as T from "../../src/tensor/index.ts";

class Net extends nn.Module {
  readonly a: nn.Linear;
  readonly b: nn.Linear;
  readonly norm: nn.RMSNorm;
  constructor() {
    super();
    const g = new Generator(1);
    this.a = this.module("a", new nn.Linear(5, 7, { generator: g }));
    this.b = this.module("b", new nn.Linear(7, 3, { bias: false, generator: g }));
    this.norm = this.module("norm", new nn.RMSNorm(7));
    this.param("steps", T.tensor([1, 2, 3], { dtype: "int32" }), false);
  }
  forward(x: T.Tensor): T.Tensor {
    return this.b.forward(this.norm.forward(this.a.forward(x)));
  }
}

test("packParameters: one block per dtype, 64-byte aligned in module order, values and flags kept", () => {
  const net = new Net();
  net.b.weight.requiresGrad = false;
  const x = T.randn([2, 5], { generator: new Generator(2) });
  const before = net.forward(x).toArray();
  const values = new Map(net.namedParameters().map(([k, p]) => [k, p.toArray()]));
  const steps = net.getParameter("steps");
  net.packParameters();
  const params = net.namedParameters();
  const floats = params.filter(([, p]) => p.dtype === "float32");
  const buffer = floats[0]![1].storage.buffer;
  let last = -1;
  for (const [k, p] of floats) {
    assert.equal(p.storage.buffer, buffer, `${k} is in the block`);
    assert.equal(p.storage.byteOffset % 64, 0, `${k} at a 64-byte boundary`);
    assert.ok(p.storage.byteOffset > last, `${k} after the one before`);
    last = p.storage.byteOffset;
    assert.deepEqual(p.toArray(), values.get(k), `${k} keeps its values`);
  }
  assert.deepEqual(floats.map(([k]) => k), ["a.weight", "a.bias", "b.weight", "norm.weight"]);
  assert.equal(net.b.weight.requiresGrad, false);
  assert.equal(net.a.weight.requiresGrad, true);
  assert.equal(net.getParameter("steps"), steps, "an int32 parameter stays");
  assert.deepEqual(net.forward(x).toArray(), before);
});

test("to(dtype) packs the cast parameters; to() of the dtype they have is a no-op", () => {
  const net = new Net();
  const a = net.a.weight;
  net.to("float32");
  assert.equal(net.a.weight, a);
  net.to("bfloat16");
  const floats = net.parameters().filter((p) => p.dtype === "bfloat16");
  assert.equal(floats.length, 4);
  assert.ok(floats.every((p) => p.storage.buffer === floats[0]!.storage.buffer && p.storage instanceof Uint16Array));
  assert.deepEqual(
    net.a.weight.toArray(),
    a.toArray().map((v) => T.tensor([v]).to("bfloat16").item()),
  );
});

test("packParameters keeps a shared storage shared and leaves placeholders alone", () => {
  const twice = new (class extends nn.Module {
    readonly x = this.module("x", new nn.Linear(2, 2));
    readonly y = this.module("y", new nn.Linear(2, 2));
  })();
  twice.y.setParameter("weight", twice.x.weight);
  twice.packParameters();
  assert.equal(twice.x.weight.storage, twice.y.weight.storage, "one storage for the shared parameter");
  T.noGrad(() => twice.x.weight.fill_(3));
  assert.deepEqual(twice.y.weight.toArray(), [3, 3, 3, 3]);

  const holder = withEmptyWeights(() => linear(4, 4));
  assert.ok(isEmptyWeight(holder.weight));
  holder.packParameters();
  assert.ok(isEmptyWeight(holder.weight) && isEmptyWeight(holder.bias!), "placeholders are not materialised");
  holder.to("bfloat16");
  assert.ok(holder.weight.dtype === "bfloat16" && holder.bias!.dtype === "bfloat16", "to() still casts them");

  // Two different views of one storage stay as they are, and to() still casts each.
  const views = new (class extends nn.Module {
    readonly x = this.module("x", new nn.Linear(2, 2));
    readonly y = this.module("y", new nn.Linear(2, 2));
  })();
  const whole = T.tensor([1, 2, 3, 4, 5, 6, 7, 8]);
  views.x.setParameter("weight", whole.slice(0, 0, 4).reshape([2, 2]));
  views.y.setParameter("weight", whole.slice(0, 4, 8).reshape([2, 2]));
  views.packParameters();
  assert.equal(views.x.weight.storage, whole.storage);
  assert.equal(views.y.weight.storage, whole.storage);
  views.to("bfloat16");
  assert.deepEqual(views.y.weight.toArray(), [5, 6, 7, 8]);
  assert.equal(views.y.weight.dtype, "bfloat16");
});

test("loadModel reads a qwen2 checkpoint into packed parameters; quantizeModel moves what stays in float off the block", () => {
  const config = { model_type: "qwen2", vocab_size: 64, hidden_size: 32, intermediate_size: 48, num_hidden_layers: 2, num_attention_heads: 2, num_key_value_heads: 1, max_position_embeddings: 32 };
  const made = createModel(config, { seed: 3 }) as CausalLM;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "graft-pack-"));
  try {
    saveModel(made, dir);
    for (const dtype of ["float32", "bfloat16"] as const) {
      const m = loadCausalLM(dir, { dtype });
      const params = m.parameters();
      const block = params[0]!.storage.buffer;
      assert.ok(params.every((p) => p.storage.buffer === block && p.dtype === dtype), `${dtype}: one block for the whole model`);
      const want = new Map(made.namedParameters());
      for (const [k, p] of m.namedParameters()) assert.deepEqual(p.toArray(), want.get(k)!.to(dtype).toArray(), `${dtype}: ${k}`);
    }
    const m = loadCausalLM(dir);
    const block = m.parameters()[0]!.storage.buffer;
    const ids = T.tensor(Int32Array.from([1, 5, 9]), { shape: [1, 3], dtype: "int32" });
    const logits = T.noGrad(() => m.forward(ids).toArray());
    quantizeModel(m, "q8_0");
    const rest = m.parameters().filter((p) => p.dtype === "float32");
    assert.ok(rest.length > 0 && rest.every((p) => p.storage.buffer !== block && p.storage.buffer === rest[0]!.storage.buffer));
    const q = T.noGrad(() => m.forward(ids).toArray());
    assert.ok(q.every((v, i) => Math.abs(v - logits[i]!) < 0.05 * (1 + Math.abs(logits[i]!))));
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
