/** The tensor API's forward behaviour, run on every backend (one body, each backend). */
import { test } from "node:test";
import assert from "node:assert/strict";
import "../../src/backend/index.ts";
import { listBackends, setDefaultBackend } from "../../src/backend/registry.ts";
import { Generator, manualSeed } from "../../src/core/rng.ts";
import * as T from "../../src/tensor/index.ts";

const close = (a: number[], b: number[], tol = 1e-5) => {
  assert.equal(a.length, b.length, `length ${a.length} vs ${b.length}`);
  a.forEach((x, i) => assert.ok(Math.abs(x - b[i]!) <= tol * Math.max(1, Math.abs(b[i]!)), `element ${i}: ${x} vs ${b[i]}`));
};

for (const name of listBackends()) {
  test(`[${name}] creation ops`, () => {
    setDefaultBackend(name);
    assert.deepEqual(T.zeros([2, 3]).toArray(), [0, 0, 0, 0, 0, 0]);
    assert.deepEqual(T.full([2], 7).toArray(), [7, 7]);
    assert.deepEqual(T.eye(2, 3).tolist(), [[1, 0, 0], [0, 1, 0]]);
    assert.deepEqual(T.arange(5).toArray(), [0, 1, 2, 3, 4]);
    assert.equal(T.arange(5).dtype, "int32");
    close(T.arange(0, 1, 0.25).toArray(), [0, 0.25, 0.5, 0.75]);
    close(T.linspace(0, 1, 5).toArray(), [0, 0.25, 0.5, 0.75, 1]);
    assert.deepEqual(T.tensor([[1, 2], [3, 4]]).shape, [2, 2]);
    assert.throws(() => T.tensor([[1, 2], [3]]), /tensor: ragged nested array/);
    const a = T.randn([1000], { generator: new Generator(5) }).toArray();
    const mean = a.reduce((s, x) => s + x, 0) / a.length;
    const sd = Math.sqrt(a.reduce((s, x) => s + (x - mean) ** 2, 0) / a.length);
    assert.ok(Math.abs(mean) < 0.1 && Math.abs(sd - 1) < 0.1, `randn moments ${mean} ${sd}`);
    assert.deepEqual(T.randn([4], { generator: new Generator(9) }).toArray(), T.randn([4], { generator: new Generator(9) }).toArray());
    manualSeed(3);
    const r1 = T.rand([3]).toArray();
    manualSeed(3);
    assert.deepEqual(T.rand([3]).toArray(), r1);
    const ri = T.randint(2, 5, [200], { generator: new Generator(1) }).toArray();
    assert.ok(ri.every((x) => x >= 2 && x < 5) && new Set(ri).size === 3);
  });

  test(`[${name}] views share storage and index correctly`, () => {
    setDefaultBackend(name);
    const x = T.arange(24, undefined, 1, { dtype: "float32" }).reshape(2, 3, 4);
    assert.deepEqual(x.transpose(0, 2).contiguous().select(0, 1).tolist(), [[1, 13], [5, 17], [9, 21]]);
    assert.deepEqual(x.permute(1, 0, 2).shape, [3, 2, 4]);
    assert.deepEqual(x.slice(2, 1, 4, 2).contiguous().toArray(), [1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23]);
    assert.deepEqual(x.select(1, -1).toArray(), [8, 9, 10, 11, 20, 21, 22, 23]);
    assert.deepEqual(x.unsqueeze(0).shape, [1, 2, 3, 4]);
    assert.deepEqual(x.unsqueeze(-1).shape, [2, 3, 4, 1]);
    assert.deepEqual(x.unsqueeze(0).squeeze().shape, [2, 3, 4]);
    assert.deepEqual(T.tensor([1, 2]).reshape(2, 1).expand(2, 3).toArray(), [1, 1, 1, 2, 2, 2]);
    assert.deepEqual(x.flatten(1).shape, [2, 12]);
    assert.equal(x.view(6, 4).storage, x.storage, "view of contiguous data shares storage");
    assert.throws(() => x.transpose(0, 1).view(-1), /view: view shape \[24\] is not compatible/);
    assert.deepEqual(x.transpose(0, 1).reshape(-1).toArray().slice(0, 5), [0, 1, 2, 3, 12]);
    assert.deepEqual(x.split(2, 2).map((t) => t.shape), [[2, 3, 2], [2, 3, 2]]);
    assert.deepEqual(T.cat([T.ones([1, 2]), T.zeros([2, 2])]).toArray(), [1, 1, 0, 0, 0, 0]);
    assert.deepEqual(T.stack([T.ones([2]), T.zeros([2])], 1).tolist(), [[1, 0], [1, 0]]);
    const y = T.zeros([3, 3]);
    y.slice(0, 1, 3).slice(1, 0, 1).fill_(5);
    assert.deepEqual(y.toArray(), [0, 0, 0, 5, 0, 0, 5, 0, 0]);
  });

  test(`[${name}] elementwise, reductions, matmul, dtypes`, () => {
    setDefaultBackend(name);
    const a = T.tensor([[1, -2, 3], [4, 5, -6]]);
    const b = T.tensor([10, 20, 30]);
    assert.deepEqual(a.add(b).toArray(), [11, 18, 33, 14, 25, 24]);
    assert.deepEqual(a.mul(2).sub(1).toArray(), [1, -5, 5, 7, 9, -13]);
    assert.deepEqual(a.gt(0).toArray(), [1, 0, 1, 1, 1, 0]);
    assert.deepEqual(T.where(a.gt(0), a, 0).toArray(), [1, 0, 3, 4, 5, 0]);
    assert.deepEqual(a.relu().toArray(), [1, 0, 3, 4, 5, 0]);
    assert.deepEqual(a.sum(1).toArray(), [2, 3]);
    assert.deepEqual(a.sum(0, true).shape, [1, 3]);
    assert.equal(a.sum().item(), 5);
    close(a.mean(1).toArray(), [2 / 3, 1]);
    assert.deepEqual(a.max(1).toArray(), [3, 5]);
    assert.deepEqual(a.argmax(1).toArray(), [2, 1]);
    assert.equal(a.argmin().item(), 5);
    assert.equal(a.min().item(), -6);
    close(a.var(1).toArray(), [19 / 3, 37]);
    close(T.tensor([1, 2, 3]).softmax().toArray(), [0.09003057, 0.24472847, 0.66524096]);
    close(T.tensor([1, 2, 3]).logSoftmax().toArray(), [-2.40760596, -1.40760596, -0.40760596]);
    assert.deepEqual(T.matmul(a, T.tensor([[1], [1], [1]])).toArray(), [2, 3]);
    assert.deepEqual(T.matmul(a.T, a).shape, [3, 3]);
    assert.deepEqual(T.matmul(a.T, a).toArray(), [17, 18, -21, 18, 29, -36, -21, -36, 45]);
    const batch = T.matmul(T.ones([4, 2, 3]), T.ones([3, 5]));
    assert.deepEqual(batch.shape, [4, 2, 5]);
    assert.ok(batch.toArray().every((v) => v === 3));
    const bf = a.to("bfloat16");
    assert.equal(bf.dtype, "bfloat16");
    assert.deepEqual(bf.add(1).toArray(), [2, -1, 4, 5, 6, -5]);
    assert.equal(bf.add(T.tensor([0.5])).dtype, "float32", "bf16 + f32 promotes to f32");
    close(T.tensor([1.2345678]).to("bfloat16").toArray(), [1.234375], 1e-7);
    assert.equal(T.tensor([1, 2], { dtype: "int32" }).add(0.5).dtype, "float32");
  });

  test(`[${name}] matmulTo: matmul(a, b).to(dtype) bit for bit, in one GEMM without a gradient`, () => {
    setDefaultBackend(name);
    const g = new Generator(11);
    for (const [m, n, k, batch] of [[1, 300, 64, []], [3, 33, 17, []], [9, 40, 24, []], [1, 20, 8, [2]]] as [number, number, number, number[]][]) {
      const a = T.randn([...batch, m, k], { generator: g }).to("bfloat16");
      const w = T.randn([n, k], { generator: g }).to("bfloat16");
      const got = T.noGrad(() => T.matmulTo(a, w.T, "float32"));
      const want = T.matmul(a, w.T).to("float32");
      assert.equal(got.dtype, "float32");
      assert.deepEqual(got.shape, want.shape);
      assert.deepEqual(got.toArray(), want.toArray(), `[${batch}] ${m}x${k} @ ${k}x${n}`);
    }
    // With a gradient to record it is the matmul and the cast, and backpropagates through both.
    const x = T.randn([2, 8], { generator: g }).to("bfloat16").detach().setRequiresGrad();
    const w = T.randn([5, 8], { generator: g }).to("bfloat16");
    const y = T.matmulTo(x, w.T, "float32");
    assert.equal(y.dtype, "float32");
    y.sum().backward();
    assert.equal(x.grad!.dtype, "bfloat16");
    assert.deepEqual(x.grad!.toArray(), T.ones([2, 5]).to("bfloat16").matmul(w).toArray());
    // Other dtypes cast as .to() does.
    const f = T.randn([2, 3], { generator: g });
    assert.deepEqual(T.matmulTo(f, f.T, "bfloat16").toArray(), T.matmul(f, f.T).to("bfloat16").toArray());
  });

  test(`[${name}] bad calls throw errors naming the op and the shapes`, () => {
    setDefaultBackend(name);
    assert.throws(() => T.add(T.zeros([2, 3]), T.zeros([4])), /add: shapes \[2, 3\] and \[4\] cannot be broadcast together/);
    assert.throws(() => T.matmul(T.zeros([2, 3]), T.zeros([4, 5])), /matmul: shapes \[2, 3\] and \[4, 5\] cannot be multiplied \(3 != 4\)/);
    assert.throws(() => T.matmul(T.zeros([2, 3], { dtype: "int32" }), T.zeros([3, 2], { dtype: "int32" })), /matmul: expected floating point tensors, got int32/);
    assert.throws(() => T.zeros([6]).reshape(4, -1), /reshape: shape \[4, -1\] is invalid for input of size 6/);
    assert.throws(() => T.zeros([2, 3]).sum(2), /sum: axis 2 is out of range/);
    assert.throws(() => T.embedding(T.tensor([0.5]), T.zeros([3, 2])), /embedding: expected int32 or int64 indices, got float32/);
    assert.throws(() => T.embedding(T.tensor([3], { dtype: "int32" }), T.zeros([3, 2])), /embedding.*3/);
    assert.throws(() => T.crossEntropy(T.zeros([2, 3]), T.tensor([0, 1, 2], { dtype: "int32" })), /crossEntropy: logits \[2, 3\] need targets of shape \[2\], got \[3\]/);
    assert.throws(() => T.zeros([2]).item(), /item: only one-element tensors/);
    assert.throws(() => T.zeros([2]).setRequiresGrad(true) && T.zeros([2], { dtype: "int32" }).setRequiresGrad(true), /requiresGrad: only floating point tensors/);
  });
}
