/** Every primitive's gradient rule against central finite differences in float64 (reference backend). */
import { test } from "node:test";
import assert from "node:assert/strict";
import "../../src/backend/index.ts";
import { setDefaultBackend } from "../../src/backend/registry.ts";
import { Generator } from "../../src/core/rng.ts";
import * as T from "../../src/tensor/index.ts";
import { type GradcheckOptions, gradcheck } from "../helpers/gradcheck.ts";

setDefaultBackend("reference");
const gen = new Generator(7);
const f64 = (shape: number[], scale = 1) => T.randn(shape, { dtype: "float64", generator: gen, std: scale });
const pos64 = (shape: number[]) => T.rand(shape, { dtype: "float64", generator: gen, low: 0.5, high: 2 });

const covered = new Set<string>();
function check(primitive: string, name: string, f: (...xs: T.Tensor[]) => T.Tensor, inputs: T.Tensor[], opts?: GradcheckOptions) {
  covered.add(primitive);
  gradcheck(name, f, inputs, opts);
}

test("views and copies", () => {
  check("reshape", "reshape", (x) => x.reshape(3, 4), [f64([2, 6])]);
  check("permute", "permute", (x) => x.permute(2, 0, 1), [f64([2, 3, 4])]);
  check("expand", "expand", (x) => x.expand(4, 3, 5), [f64([3, 1])]);
  check("slice", "slice with step", (x) => x.slice(1, 1, 7, 2), [f64([3, 8])]);
  check("copy", "contiguous of a transpose", (x) => x.transpose(0, 1).contiguous(), [f64([3, 5])]);
  // Through float32 the finite difference needs a large step to rise above rounding.
  check("cast", "cast float64→float32→float64", (x) => x.to("float32").to("float64"), [f64([4])], { h: 1e-2, rtol: 1e-4, atol: 1e-5 });
  check("cat", "cat", (a, b) => T.cat([a, b], 1), [f64([2, 3]), f64([2, 2])]);
  check("cat", "stack", (a, b) => T.stack([a, b], 0), [f64([2, 3]), f64([2, 3])]);
  check("slice", "select + narrow + chunk", (x) => T.mul(x.select(0, 1).narrow(0, 1, 2), x.chunk(2, 1)[1]!.select(0, 0)), [f64([2, 4])]);
});

test("unary ops", () => {
  const ops: [string, (x: T.Tensor) => T.Tensor, T.Tensor][] = [
    ["neg", T.neg, f64([7])],
    ["exp", T.exp, f64([7])],
    ["log", T.log, pos64([7])],
    ["sqrt", T.sqrt, pos64([7])],
    ["rsqrt", T.rsqrt, pos64([7])],
    ["tanh", T.tanh, f64([7])],
    ["sigmoid", T.sigmoid, f64([7])],
    ["silu", T.silu, f64([7])],
    ["gelu tanh", (x) => T.gelu(x, "tanh"), f64([7])],
    ["gelu erf", (x) => T.gelu(x, "none"), f64([7])],
    ["relu", T.relu, T.tensor([-1.5, -0.2, 0.3, 2], { dtype: "float64" })],
    ["abs", T.abs, T.tensor([-1.5, -0.2, 0.3, 2], { dtype: "float64" })],
    ["sin", T.sin, f64([7])],
    ["cos", T.cos, f64([7])],
    ["square", T.square, f64([7])],
    ["reciprocal", T.reciprocal, pos64([7])],
  ];
  for (const [name, f, x] of ops) check("unary", name, f, [x]);
});

test("binary ops with broadcasting", () => {
  check("add", "add", T.add, [f64([3, 1, 4]), f64([2, 1])]);
  check("sub", "sub", T.sub, [f64([3, 4]), f64([4])]);
  check("mul", "mul", T.mul, [f64([2, 3, 1]), f64([1, 3, 5])]);
  check("div", "div", T.div, [f64([3, 4]), pos64([3, 1])]);
  check("pow", "pow", T.pow, [pos64([3, 4]), f64([4])]);
  check("maximum", "maximum", T.maximum, [f64([5, 3]), f64([3])]);
  check("minimum", "minimum", T.minimum, [f64([5, 3]), f64([5, 1])]);
  check("where", "where", (a, b) => T.where(T.tensor([1, 0, 1], { dtype: "float64" }), a, b), [f64([2, 3]), f64([3])]);
  check("mul", "scalar operands", (x) => T.add(T.mul(x, 3), 2).div(4), [f64([5])]);
});

test("reductions", () => {
  check("sum", "sum all", (x) => T.sum(x), [f64([3, 4])]);
  check("sum", "sum over dims keepdim", (x) => T.sum(x, [0, 2], true), [f64([2, 3, 4])]);
  check("sum", "mean over a dim", (x) => T.mean(x, 1), [f64([2, 3, 4])]);
  check("sum", "variance", (x) => x.var(1), [f64([3, 5])]);
  check("extreme", "max over a dim", (x) => x.max(1), [f64([4, 6])]);
  check("extreme", "min over all", (x) => x.min(), [f64([4, 6])]);
});

test("matmul: 2-D, batched, broadcast, transposed views, vectors", () => {
  check("matmul", "2-D", T.matmul, [f64([3, 4]), f64([4, 5])]);
  check("matmul", "batched with broadcast", T.matmul, [f64([2, 3, 4]), f64([4, 2])]);
  check("matmul", "broadcast batch dims", T.matmul, [f64([2, 1, 3, 4]), f64([3, 4, 2])]);
  check("matmul", "transposed views", (a, b) => T.matmul(a.transpose(0, 1), b.T), [f64([4, 3]), f64([5, 4])]);
  check("matmul", "vector @ matrix", T.matmul, [f64([4]), f64([4, 3])]);
  const w = f64([5, 4]);
  check("frozen_linear", "frozen weight made on demand", (x) => T.frozenLinear(x, () => w), [f64([2, 3, 4])]);
});

test("softmax, log-softmax and cross-entropy", () => {
  check("softmax", "softmax last dim", (x) => x.softmax(-1), [f64([3, 5])]);
  check("softmax", "log-softmax middle dim", (x) => x.logSoftmax(1), [f64([2, 4, 3])]);
  const targets = T.tensor([1, -100, 4, 0], { dtype: "int32" });
  check("cross_entropy", "CE mean with ignore_index", (x) => T.crossEntropy(x, targets), [f64([4, 6])]);
  check("cross_entropy", "CE label smoothing, none", (x) => T.crossEntropy(x, targets, { labelSmoothing: 0.1, reduction: "none" }), [f64([4, 6])]);
});

test("norms, rope, embedding", () => {
  check("rmsnorm", "rmsnorm", (x, w) => T.rmsNorm(x, w, 1e-6), [f64([3, 8]), f64([8])]);
  check("rmsnorm", "rmsnorm without weight", (x) => T.rmsNorm(x, null), [f64([2, 5])]);
  check("swiglu", "swiglu", (g, u) => T.swiglu(g, u), [f64([3, 7], 2), f64([3, 7])]);
  check("layernorm", "layernorm", (x, w, b) => T.layerNorm(x, w, b), [f64([3, 6]), f64([6]), f64([6])]);
  check("rope", "rope half", (x) => T.rope(x, [3, 4, 9], { theta: 10000 }), [f64([2, 3, 2, 8])]);
  check("rope", "rope interleaved partial", (x) => T.rope(x, [0, 5], { rotaryDim: 4, style: "interleaved" }), [f64([1, 2, 1, 6])]);
  const ids = T.tensor([[1, 3, 1], [0, 2, 3]], { dtype: "int32" });
  check("embedding", "embedding with repeated ids", (w) => T.embedding(ids, w), [f64([4, 5])]);
});

test("attention: causal, GQA, T != S, key mask", () => {
  check("attention", "causal self-attention", (q, k, v) => T.scaledDotProductAttention(q, k, v, { causal: true }), [f64([1, 2, 4, 3]), f64([1, 2, 4, 3]), f64([1, 2, 4, 3])]);
  check("attention", "GQA decode (T < S)", (q, k, v) => T.scaledDotProductAttention(q, k, v, { causal: true }), [f64([2, 4, 2, 3]), f64([2, 2, 5, 3]), f64([2, 2, 5, 3])]);
  const mask = new Uint8Array([1, 1, 0, 1, 0, 1, 1, 1]);
  check("attention", "key mask", (q, k, v) => T.scaledDotProductAttention(q, k, v, { keyMask: mask, scale: 0.7 }), [f64([2, 1, 3, 2]), f64([2, 1, 4, 2]), f64([2, 1, 4, 2])]);
});

test("every primitive with a gradient rule was checked", () => {
  const missing = T.primitiveNames.filter((p) => !covered.has(p));
  assert.deepEqual(missing, []);
});

test("gradient accumulation, shared inputs and noGrad", () => {
  const x = T.tensor([1, 2, 3], { dtype: "float64", requiresGrad: true });
  const y = T.add(T.mul(x, x), x); // x used twice
  y.sum().backward();
  assert.deepEqual(x.grad!.toArray(), [3, 5, 7]);
  T.mul(x, 2).sum().backward(); // accumulates
  assert.deepEqual(x.grad!.toArray(), [5, 7, 9]);
  const z = T.noGrad(() => T.mul(x, 2));
  assert.equal(z.requiresGrad, false);
  assert.equal(z.node, null);
});

test("backward frees the graph as it goes (retain_graph=False): a second backward is an error, a new graph is not", () => {
  const x = T.tensor([1, 2, 3], { dtype: "float64", requiresGrad: true });
  const h = T.mul(x, x);
  const y = T.sum(T.exp(h));
  y.backward();
  assert.deepEqual(h.node!.inputs, [], "intermediate nodes drop their inputs");
  assert.deepEqual(y.node!.inputs, []);
  const g = x.grad!.toArray();
  assert.throws(() => y.backward(), /sum: trying to backward through the graph a second time/);
  assert.throws(() => T.add(h, 1).sum().backward(), /backward through the graph a second time/, "a freed intermediate reused in a new graph");
  assert.deepEqual(x.grad!.toArray(), g, "the failed calls add nothing");
  T.sum(T.exp(T.mul(x, x))).backward();
  assert.deepEqual(x.grad!.toArray(), g.map((v) => 2 * v), "a recomputed graph accumulates as usual");
});

test("bad backward calls name the op and shapes", () => {
  const x = T.tensor([1, 2, 3], { requiresGrad: true });
  assert.throws(() => T.mul(x, 2).backward(), /backward: grad can be implicitly created only for scalar outputs; got shape \[3\]/);
  assert.throws(() => T.mul(x, 2).backward(T.ones([2])), /backward: gradient shape \[2\] does not match tensor shape \[3\]/);
  assert.throws(() => T.tensor([1]).backward(), /backward: tensor of shape \[1\] does not require grad/);
  assert.throws(() => x.mul_(2), /mul_: in-place op on a tensor of shape \[3\] that requires grad/);
});
