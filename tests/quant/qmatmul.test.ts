/**
 * Quantized matmul: every native kernel set (generic, AVX2, AVX-512 VNNI) against the reference
 * backend on odd shapes, both weight types and both activation dtypes; hand-computed exact cases;
 * the error against the dequantized float matmul within the bound activation rounding allows; and
 * bad arguments naming what is wrong.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import "../../src/backend/index.ts";
import type { QuantType } from "../../src/backend/Backend.ts";
import { f16ToNumber } from "../../src/backend/reference/qmatmul.ts";
import { type DType, bf16ToF32 } from "../../src/core/dtype.ts";
import { Generator } from "../../src/core/rng.ts";
import { dequantizeWeight, fromGgmlBlocks, quantizeWeight, toGgmlBlocks } from "../../src/quant/index.ts";
import { quantizeQ4_0, quantizeQ8_0 } from "../../src/formats/ggmlQuant.ts";
import { Tensor } from "../../src/tensor/index.ts";
import { assertClose, fromValues } from "../helpers/backends.ts";
import { addon, kernelSets, native, needsKernels, ref } from "../helpers/quantKernels.ts";

const TYPES: QuantType[] = ["q8_0", "q4_0"];
const SHAPES: [number, number, number][] = [
  [1, 1, 32],
  [1, 7, 96],
  [3, 13, 160], // odd block count: the 256-bit tail of the AVX-512 kernel
  [5, 33, 64],
  [17, 9, 224],
  [2, 70, 896],
];

function randn(n: number, seed: number, scale = 1): number[] {
  const g = new Generator(seed);
  return Array.from({ length: n }, () => g.normal() * scale);
}

function weight(n: number, k: number, type: QuantType, seed: number) {
  return quantizeWeight(new Tensor(Float32Array.from(randn(n * k, seed, 0.05)), "float32", [n, k]), type);
}

test("qmatmul: every native kernel set matches the reference on odd shapes", needsKernels, () => {
  try {
    for (const set of kernelSets) {
      addon["quantUseKernels"]!(set);
      for (const type of TYPES) {
        for (const dtype of ["float32", "bfloat16"] as DType[]) {
          for (const [M, N, K] of SHAPES) {
            const w = weight(N, K, type, M * 1000 + N);
            const x = fromValues(dtype, randn(M * K, N * 7 + K));
            const got = dtype === "float32" ? new Float32Array(M * N) : new Uint16Array(M * N);
            const want = dtype === "float32" ? new Float32Array(M * N) : new Uint16Array(M * N);
            native.qmatmul(x, dtype, w.qs, w.scales, got, { m: M, n: N, k: K, type });
            ref.qmatmul(x, dtype, w.qs, w.scales, want, { m: M, n: N, k: K, type });
            // Only the float32 summation order differs; bf16 outputs may round one ulp apart.
            const tol = dtype === "float32" ? { rtol: 1e-5, atol: 1e-5 } : { rtol: 8e-3, atol: 1e-5 };
            assertClose(`${set} ${type} ${dtype} [${M}, ${N}, ${K}]`, got, want, tol);
          }
        }
      }
    }
  } finally {
    addon["quantUseKernels"]!(null);
  }
});

test("qmatmul: exact integer products when activations and weights quantize without loss", needsKernels, () => {
  // x has amax 127 per block (d = 1) and integer values; q8_0 weights likewise; q4_0 weights are
  // integers in [-8, 7] with a -8 in every block (d = 1, q = w + 8). The result is the integer dot.
  const K = 64;
  const x = Float32Array.from({ length: K }, (_, i) => (i % 32 === 0 ? 127 : ((i * 37) % 255) - 127));
  const w8 = Float32Array.from({ length: 2 * K }, (_, i) => (i % 32 === 5 ? -127 : ((i * 53) % 255) - 127));
  const w4 = Float32Array.from({ length: 2 * K }, (_, i) => (i % 32 === 3 ? -8 : ((i * 5) % 16) - 8));
  for (const [type, wv] of [["q8_0", w8], ["q4_0", w4]] as [QuantType, Float32Array][]) {
    const w = quantizeWeight(new Tensor(wv, "float32", [2, K]), type);
    assert.ok(Array.from(w.scales).every((s) => f16ToNumber(s) === 1), `${type}: unit scales`);
    const expected = [0, 1].map((n) => x.reduce((s, v, k) => s + v * wv[n * K + k]!, 0));
    for (const be of [ref, native]) {
      for (const set of be === native ? kernelSets : ["reference"]) {
        if (be === native) addon["quantUseKernels"]!(set);
        const out = new Float32Array(2);
        be.qmatmul(x, "float32", w.qs, w.scales, out, { m: 1, n: 2, k: K, type });
        assert.deepEqual(Array.from(out), expected, `${set} ${type}`);
      }
    }
  }
  addon["quantUseKernels"]!(null);
});

test("qmatmul: error against the dequantized float matmul stays within the activation rounding bound", () => {
  const [M, N, K] = [3, 24, 256];
  for (const type of TYPES) {
    const w = weight(N, K, type, 11);
    const wd = dequantizeWeight(w).data() as Float32Array;
    const x = Float32Array.from(randn(M * K, 12));
    const out = new Float32Array(M * N);
    native.qmatmul(x, "float32", w.qs, w.scales, out, { m: M, n: N, k: K, type });
    for (let m = 0; m < M; m++) {
      for (let n = 0; n < N; n++) {
        let exact = 0;
        let bound = 0; // |x - q * dx| <= dx / 2 for every element, dx = block amax / 127
        for (let b = 0; b < K / 32; b++) {
          let amax = 0;
          for (let j = 0; j < 32; j++) amax = Math.max(amax, Math.abs(x[m * K + b * 32 + j]!));
          for (let j = 0; j < 32; j++) {
            const k = b * 32 + j;
            exact += x[m * K + k]! * wd[n * K + k]!;
            bound += (amax / 127 / 2) * Math.abs(wd[n * K + k]!);
          }
        }
        const err = Math.abs(out[m * N + n]! - exact);
        assert.ok(err <= bound * 1.001 + 1e-5, `${type} [${m}, ${n}]: error ${err} exceeds bound ${bound}`);
      }
    }
  }
});

test("quantized weights are ggml's blocks: round trip through block bytes, and dequantized values", () => {
  const vals = Float32Array.from(randn(4 * 96, 3));
  const t = new Tensor(vals, "float32", [4, 96]);
  for (const [type, ggml] of [["q8_0", quantizeQ8_0(vals)], ["q4_0", quantizeQ4_0(vals)]] as [QuantType, Uint8Array][]) {
    const w = quantizeWeight(t, type);
    assert.deepEqual(toGgmlBlocks(w), ggml, `${type}: same bytes as the ggml quantizer`);
    const back = fromGgmlBlocks(ggml, type, 4, 96);
    assert.deepEqual(back.qs, w.qs);
    assert.deepEqual(back.scales, w.scales);
    const dq = dequantizeWeight(w).data() as Float32Array;
    const maxErr = Math.max(...vals.map((v, i) => Math.abs(v - dq[i]!)));
    assert.ok(maxErr < (type === "q8_0" ? 0.02 : 0.3), `${type}: dequantization error ${maxErr}`);
  }
  // bf16 weights quantize from their float values.
  const bf = quantizeWeight(t.to("bfloat16"), "q8_0");
  const expected = quantizeWeight(new Tensor(Float32Array.from(t.to("bfloat16").data() as Uint16Array, bf16ToF32), "float32", [4, 96]), "q8_0");
  assert.deepEqual(bf.qs, expected.qs);
});

test("qmatmul and quantizeWeight reject bad arguments, naming them", () => {
  const w = weight(4, 64, "q8_0", 1);
  const x = new Float32Array(64);
  for (const be of [ref, native]) {
    assert.throws(() => be.qmatmul(x, "float32", w.qs, w.scales, new Float32Array(4), { m: 1, n: 4, k: 48, type: "q8_0" }), /multiple of the block size 32/);
    assert.throws(() => be.qmatmul(x, "float32", w.qs.subarray(0, 100), w.scales, new Float32Array(4), { m: 1, n: 4, k: 64, type: "q8_0" }), /qs has 100 elements/);
    assert.throws(() => be.qmatmul(x, "float32", w.qs, w.scales, new Float32Array(3), { m: 1, n: 4, k: 64, type: "q8_0" }), /out has 3 elements/);
  }
  assert.throws(() => quantizeWeight(new Tensor(new Float32Array(40), "float32", [2, 20]), "q8_0", "layers.0.fc"), /layers\.0\.fc: in_features 20 is not a multiple of the block size 32/);
  assert.throws(() => quantizeWeight(new Tensor(new Float32Array(64), "float32", [64]), "q4_0"), /expected a 2-D weight/);
  assert.throws(() => quantizeWeight(new Tensor(new Float32Array(64), "float32", [2, 32]), "q5_k" as QuantType), /unknown type "q5_k"/);
});
