/**
 * NF4 kernels: native dequantization and dequant-matmul (every kernel set) against the reference
 * backend and against the pure-TS oracle in src/quant/nf4.ts, on odd shapes and block sizes.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import "../../src/backend/index.ts";
import { type DType, bf16ToF32 } from "../../src/core/dtype.ts";
import { Generator } from "../../src/core/rng.ts";
import { dequantizeNF4, dequantizeNF4Tensor, nf4Absmax, nf4Matmul, quantizeNF4 } from "../../src/quant/index.ts";
import * as T from "../../src/tensor/index.ts";
import { noGrad } from "../../src/tensor/index.ts";
import { assertClose, fromValues } from "../helpers/backends.ts";
import { addon, kernelSets, native, needsKernels, ref } from "../helpers/quantKernels.ts";


function randn(n: number, seed: number, scale = 1): Float32Array {
  const g = new Generator(seed);
  return Float32Array.from({ length: n }, () => g.normal() * scale);
}

test("nf4Dequantize: native equals the reference exactly and the nf4.ts oracle to the last bit, every kernel set", needsKernels, () => {
  try {
    for (const set of kernelSets) {
      addon["quantUseKernels"]!(set);
      for (const [n, k, bs] of [[7, 64, 64], [3, 100, 64], [5, 96, 32], [2, 30, 6]]) {
        const w = quantizeNF4(randn(n * k, n + k, 0.05), [n, k], bs);
        const got = dequantizeNF4Tensor(w).data() as Float32Array;
        const exact = new Float32Array(n * k);
        ref.nf4Dequantize(w.packed, nf4Absmax(w), bs, n * k, exact, "float32");
        assert.deepEqual(Array.from(got), Array.from(exact), `${set} [${n}, ${k}] block ${bs}`);
        // The kernels multiply the float32 code value by the float32 absmax (as bitsandbytes does);
        // the oracle multiplies the double code value, so they may differ in the last bit.
        assertClose(`${set} vs nf4.ts`, got, dequantizeNF4(w), { rtol: 2 ** -23, atol: 0 });
        const bf = new Uint16Array(n * k);
        native.nf4Dequantize(w.packed, nf4Absmax(w), bs, n * k, bf, "bfloat16");
        const wantBf = new Uint16Array(n * k);
        ref.nf4Dequantize(w.packed, nf4Absmax(w), bs, n * k, wantBf, "bfloat16");
        assert.deepEqual(bf, wantBf, `${set} bf16`);
      }
    }
  } finally {
    addon["quantUseKernels"]!(null);
  }
});

test("nf4Matmul: native matches the reference and x @ dequantized(W)^T for every kernel set", needsKernels, () => {
  try {
    for (const set of kernelSets) {
      addon["quantUseKernels"]!(set);
      for (const dtype of ["float32", "bfloat16"] as DType[]) {
        for (const [M, N, K, bs] of [[1, 9, 64, 64], [3, 17, 200, 64], [6, 5, 96, 32], [2, 4, 30, 6]]) {
          const w = quantizeNF4(randn(N * K, M + N + K, 0.05), [N, K], bs);
          const x = fromValues(dtype, randn(M * K, K));
          const got = dtype === "float32" ? new Float32Array(M * N) : new Uint16Array(M * N);
          const want = dtype === "float32" ? new Float32Array(M * N) : new Uint16Array(M * N);
          native.nf4Matmul(x, dtype, w.packed, nf4Absmax(w), got, { m: M, n: N, k: K, blockSize: bs });
          ref.nf4Matmul(x, dtype, w.packed, nf4Absmax(w), want, { m: M, n: N, k: K, blockSize: bs });
          assertClose(`${set} ${dtype} [${M}, ${N}, ${K}]`, got, want, dtype === "float32" ? { rtol: 1e-5, atol: 1e-5 } : { rtol: 8e-3, atol: 1e-4 });
          // Against the float matmul over the oracle's dequantized weight.
          const xf = dtype === "float32" ? (x as Float32Array) : Float32Array.from(x as Uint16Array, bf16ToF32);
          const wd = dequantizeNF4(w);
          const exact = Float32Array.from({ length: M * N }, (_, i) => {
            const m = Math.floor(i / N), n = i % N;
            let s = 0;
            for (let k = 0; k < K; k++) s += xf[m * K + k]! * wd[n * K + k]!;
            return s;
          });
          assertClose(`${set} ${dtype} vs dequantized`, dtype === "float32" ? got : Float32Array.from(got as Uint16Array, bf16ToF32), exact, dtype === "float32" ? { rtol: 1e-5, atol: 1e-5 } : { rtol: 8e-3, atol: 1e-3 });
        }
      }
    }
  } finally {
    addon["quantUseKernels"]!(null);
  }
});

test("nf4Matmul: tensors, inference only, errors name the argument", () => {
  const w = quantizeNF4(randn(8 * 64, 1, 0.05), [8, 64]);
  const x = T.randn([2, 3, 64], { generator: new Generator(2) });
  const y = noGrad(() => nf4Matmul(x, w));
  assert.deepEqual(y.shape, [2, 3, 8]);
  const want = noGrad(() => T.matmul(x, dequantizeNF4Tensor(w).T));
  assertClose("tensor op", y.data(), want.data(), { rtol: 1e-5, atol: 1e-5 });
  assert.throws(() => nf4Matmul(x.setRequiresGrad(true), w), /inference-only/);
  assert.throws(() => noGrad(() => nf4Matmul(T.randn([1, 63]), w)), /does not end in in_features=64/);
  for (const be of [ref, native]) {
    assert.throws(() => be.nf4Matmul(new Float32Array(64), "float32", w.packed.subarray(0, 10), nf4Absmax(w), new Float32Array(8), { m: 1, n: 8, k: 64, blockSize: 64 }), /packed has 10 elements/);
    assert.throws(() => be.nf4Dequantize(w.packed, nf4Absmax(w), 3, 512, new Float32Array(512), "float32"), /blockSize must be an even number/);
  }
});
