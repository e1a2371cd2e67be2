/** nn modules and losses against hand-computed values. */
import { test } from "node:test";
import assert from "node:assert/strict";
import "../../src/backend/index.ts";
import { Generator } from "../../src/core/rng.ts";
import * as T from "../../src/tensor/index.ts";
import * as nn from "../../src/nn/index.ts";

const close = (a: number[], b: number[], tol = 1e-5) =>
  a.forEach((x, i) => assert.ok(Math.abs(x - b[i]!) <= tol * Math.max(1, Math.abs(b[i]!)), `element ${i}: ${x} vs ${b[i]}`));

test("Linear computes x W^T + b with W stored [out, in]", () => {
  const lin = new nn.Linear(3, 2);
  T.noGrad(() => {
    lin.weight.copy_(T.tensor([[1, 2, 3], [4, 5, 6]]));
    lin.bias!.copy_(T.tensor([0.5, -1]));
  });
  const y = lin.forward(T.tensor([[1, 0, -1], [2, 1, 0]]));
  assert.deepEqual(y.shape, [2, 2]);
  close(y.toArray(), [1 - 3 + 0.5, 4 - 6 - 1, 2 + 2 + 0.5, 8 + 5 - 1]);
});

test("Linear init follows torch: kaiming-uniform(a=sqrt 5) weight and bias within 1/sqrt(in)", () => {
  const lin = new nn.Linear(64, 32, { generator: new Generator(3) });
  const bound = 1 / Math.sqrt(64);
  const w = lin.weight.toArray();
  assert.ok(w.every((x) => Math.abs(x) <= bound + 1e-7));
  assert.ok(Math.max(...w.map(Math.abs)) > bound * 0.9, "weights should fill the range");
  assert.ok(lin.bias!.toArray().every((x) => Math.abs(x) <= bound + 1e-7));
});

class Net extends nn.Module {
  body = this.module("body", new nn.Sequential(new nn.Linear(4, 3), new nn.ReLU(), new nn.Linear(3, 1)));
  norm = this.module("norm", new nn.LayerNorm(4));
  forward(x: T.Tensor) {
    return this.body.forward(this.norm.forward(x));
  }
}

test("parameters are named by module path; stateDict round-trips; strict load names bad keys", () => {
  const net = new Net();
  assert.deepEqual(
    net.namedParameters().map(([n]) => n),
    ["body.0.weight", "body.0.bias", "body.2.weight", "body.2.bias", "norm.weight", "norm.bias"],
  );
  assert.equal(net.numParameters(), 4 * 3 + 3 + 3 + 1 + 4 + 4);
  const other = new Net();
  other.loadStateDict(net.stateDict());
  const x = T.randn([5, 4]);
  assert.deepEqual(other.forward(x).toArray(), net.forward(x).toArray());

  const sd = net.stateDict();
  delete sd["norm.bias"];
  sd["extra.weight"] = T.zeros([1]);
  sd["body.0.weight"] = T.zeros([2, 2]);
  assert.throws(
    () => other.loadStateDict(sd),
    /missing keys: norm\.bias; unexpected keys: extra\.weight; shape mismatches: body\.0\.weight: expected \[3, 4\], got \[2, 2\]/,
  );
});

test("freeze, train/eval and Dropout", () => {
  const net = new Net();
  net.freeze((n) => n.startsWith("body.0"));
  assert.equal(net.numParameters(true), 3 + 1 + 4 + 4);
  net.unfreeze();
  assert.equal(net.numParameters(true), net.numParameters());

  const drop = new nn.Dropout(0.25, new Generator(1));
  const x = T.ones([1000]);
  const y = drop.forward(x).toArray();
  const zeros = y.filter((v) => v === 0).length;
  assert.ok(zeros > 200 && zeros < 300, `about 25% dropped, got ${zeros}`);
  assert.ok(y.filter((v) => v !== 0).every((v) => Math.abs(v - 1 / 0.75) < 1e-6));
  drop.eval();
  assert.deepEqual(drop.forward(x).toArray(), x.toArray());
});

test("losses match their formulas", () => {
  const p = T.tensor([0.9, 0.2, 0.6]);
  const y = T.tensor([1, 0, 0]);
  const bce = -(Math.log(0.9) + Math.log(0.8) + Math.log(0.4)) / 3;
  close([nn.bceLoss(p, y).item()], [bce]);
  const logits = T.tensor([2.0, -1.0, 0.5]);
  const sig = (x: number) => 1 / (1 + Math.exp(-x));
  const bcel = -(Math.log(sig(2)) + Math.log(1 - sig(-1)) + Math.log(1 - sig(0.5))) / 3;
  close([nn.bceWithLogitsLoss(logits, y).item()], [bcel]);
  close([new nn.BCEWithLogitsLoss("sum").forward(T.tensor([-200, 200]), T.tensor([1, 0])).item()], [400], 1e-4);
  close([nn.mseLoss(T.tensor([1, 2, 3]), T.tensor([1, 0, 0])).item()], [13 / 3]);

  // Cross-entropy with ignore_index: mean over the two kept rows.
  const x = T.tensor([[1, 2, 3], [1, 1, 1], [3, 0, 0]]);
  const t = T.tensor([2, -100, 0], { dtype: "int32" });
  const lse = (r: number[]) => Math.log(r.reduce((s, v) => s + Math.exp(v), 0));
  const ce = ((lse([1, 2, 3]) - 3) + (lse([3, 0, 0]) - 3)) / 2;
  close([new nn.CrossEntropyLoss().forward(x, t).item()], [ce]);
  // Label smoothing 0.1: (1 - eps) * nll + eps * mean_j(-log p_j).
  const smooth = (r: number[], k: number) => 0.9 * (lse(r) - r[k]!) + 0.1 * (lse(r) - r.reduce((a, b) => a + b, 0) / r.length);
  close([nn.crossEntropyLoss(x, t, { labelSmoothing: 0.1 }).item()], [(smooth([1, 2, 3], 2) + smooth([3, 0, 0], 0)) / 2]);
  assert.throws(() => nn.mseLoss(T.zeros([2]), T.zeros([3])), /mseLoss: input \[2\] and target \[3\]/);
});

test("Embedding and RMSNorm modules", () => {
  const emb = new nn.Embedding(10, 4);
  const ids = T.tensor([[3, 7]], { dtype: "int32" });
  const out = emb.forward(ids);
  assert.deepEqual(out.shape, [1, 2, 4]);
  assert.deepEqual(out.select(1, 1).select(0, 0).toArray(), emb.weight.select(0, 7).toArray());
  const norm = new nn.RMSNorm(4, 1e-6);
  const v = norm.forward(T.tensor([1, 2, 3, 4])).toArray();
  const rms = Math.sqrt((1 + 4 + 9 + 16) / 4 + 1e-6);
  close(v, [1 / rms, 2 / rms, 3 / rms, 4 / rms]);
});
