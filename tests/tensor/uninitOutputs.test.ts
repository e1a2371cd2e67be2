/**
 * Ops that allocate their outputs with Tensor.uninit (contents unspecified) must write every element:
 * with Tensor.uninit swapped for a NaN-filled allocation, RMSNorm, RoPE (partial rotary dims),
 * embedding and attention, forward and backward, give exactly the results of the normal allocation,
 * on every backend.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import "../../src/backend/index.ts";
import { setDefaultBackend } from "../../src/backend/registry.ts";
import { availableBackends } from "../helpers/backends.ts";
import type { DType } from "../../src/core/dtype.ts";
import { Generator } from "../../src/core/rng.ts";
import * as T from "../../src/tensor/index.ts";

const backends = availableBackends();

/** Outputs and input gradients of f over fresh leaves (copies of `inputs`). */
function run(f: (...xs: T.Tensor[]) => T.Tensor, inputs: T.Tensor[]): number[][] {
  const leaves = inputs.map((x) => x.detach().contiguous().setRequiresGrad(true));
  const out = f(...leaves);
  const w = T.randn(out.shape, { generator: new Generator(9) }).to(out.dtype);
  T.sum(T.mul(out, w)).backward();
  return [out.toArray(), ...leaves.map((l) => l.grad!.toArray())];
}

/** Runs body with Tensor.uninit returning NaN-filled storage; also returns how many calls it served. */
function nanUninit<R>(body: () => R): [R, number] {
  const uninit = T.Tensor.uninit;
  let calls = 0;
  T.Tensor.uninit = (shape: readonly number[], dtype?: DType) => {
    calls++;
    const t = T.Tensor.empty(shape, dtype);
    if (t.dtype === "float32") (t.storage as Float32Array).fill(NaN);
    else if (t.dtype === "bfloat16") (t.storage as Uint16Array).fill(0x7fc0);
    return t;
  };
  try {
    return [body(), calls];
  } finally {
    T.Tensor.uninit = uninit;
  }
}

for (const name of backends) {
  for (const dtype of ["float32", "bfloat16"] as const) {
    test(`${name} ${dtype}: rmsnorm, rope, embedding and attention overwrite every output element`, () => {
      setDefaultBackend(name);
      const g = new Generator(1);
      const rnd = (shape: number[]) => T.randn(shape, { generator: g }).to(dtype);
      const [B, Tn, H, D] = [2, 40, 3, 24];
      const cases: [string, (...xs: T.Tensor[]) => T.Tensor, T.Tensor[]][] = [
        ["rmsnorm", (x, w) => T.rmsNorm(x, w), [rnd([B, Tn, 96]), rnd([96])]],
        ["rope, 16 of 24 dims rotated", (x) => T.rope(x, [...Array(Tn).keys()], { rotaryDim: 16 }), [rnd([B, Tn, H, D])]],
        ["embedding", (w) => T.embedding(T.tensor([[3, 0, 7, 3]], { dtype: "int32" }), w), [rnd([10, 64])]],
        ["attention, causal GQA", (q, k, v) => T.scaledDotProductAttention(q, k, v, { causal: true }), [rnd([B, H, Tn, D]), rnd([B, 1, Tn, D]), rnd([B, 1, Tn, D])]],
      ];
      for (const [label, f, inputs] of cases) {
        const want = run(f, inputs);
        const [got, calls] = nanUninit(() => run(f, inputs));
        assert.ok(calls >= 2, `${label}: forward and backward outputs come from Tensor.uninit (${calls} calls)`);
        for (const [i, xs] of want.entries()) {
          assert.ok(xs.every(Number.isFinite), `${label}: result ${i} is finite`);
          assert.deepEqual(got[i], xs, `${label}: result ${i} with NaN-filled uninit outputs`);
        }
      }
    });
  }
}
