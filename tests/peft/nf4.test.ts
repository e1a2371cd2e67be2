/**
 * NF4 with double quantization (src/quant/nf4.ts, the pure-TS oracle): the bitsandbytes codebook,
 * packing, exact round trips of code values, bounded error on Gaussian weights, the NF4Linear
 * layer, and the memory it saves on a Qwen2.5-0.5B-shaped set of Linear layers.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import "../../src/backend/index.ts";
import { Generator } from "../../src/core/rng.ts";
import { Linear } from "../../src/nn/index.ts";
import { NF4Linear } from "../../src/peft/index.ts";
import { NF4_CODEBOOK, dequantizeNF4, dynamicMap, nf4Bytes, nf4BytesFor, quantizeNF4 } from "../../src/quant/nf4.ts";
import * as T from "../../src/tensor/index.ts";

test("NF4 codebook is bitsandbytes' (DESIGN.md), the nested 8-bit map is the signed dynamic map", () => {
  const design = [-1, -0.6961928, -0.5250731, -0.3949175, -0.2844414, -0.1847734, -0.09105, 0, 0.0795803, 0.1609302, 0.2461123, 0.3379152, 0.4407098, 0.562617, 0.7229568, 1];
  assert.equal(NF4_CODEBOOK.length, 16);
  NF4_CODEBOOK.forEach((c, i) => assert.ok(Math.abs(c - design[i]!) < 1e-7, `code ${i}`));
  const m = dynamicMap();
  assert.equal(m.length, 256);
  for (let i = 1; i < 256; i++) assert.ok(m[i]! >= m[i - 1]!);
  assert.equal(m[255], 1);
  assert.ok(m.includes(0));
  // Exponent 0: midpoints of linspace(0.1, 1, 65); the last is (0.1 + 0.9·63/64 + 1) / 2.
  assert.ok(Math.abs(m[0]! + 0.99296875) < 1e-6 && Math.abs(m[254]! - 0.99296875) < 1e-6);
  // Exponent -6: one midpoint of linspace(0.1, 1, 2), times 1e-6.
  assert.ok(Math.abs(m[128]! - 5.5e-7) < 1e-12 && Math.abs(m[126]! + 5.5e-7) < 1e-12, `${m[126]} ${m[127]} ${m[128]}`);
});

test("code values times a block absmax round-trip, two codes per byte with the first in the high nibble", () => {
  const absmax = 2.5;
  const x = Array.from({ length: 64 }, (_, i) => NF4_CODEBOOK[i % 16]! * absmax);
  const q = quantizeNF4(x, [64]);
  assert.equal(q.packed.length, 32);
  assert.equal(q.packed[0], (0 << 4) | 1, "codes 0 and 1");
  assert.equal(q.packed[7], (14 << 4) | 15);
  // One block: the nested quantization stores absmax - mean(absmax) = 0 exactly.
  assert.equal(q.offset, absmax);
  const d = dequantizeNF4(q);
  for (let i = 0; i < 64; i++) assert.ok(Math.abs(d[i]! - x[i]!) < 1e-6, `element ${i}`);
});

test("odd sizes and small blocks: the last partial block and the last half byte", () => {
  for (const bs of [64, 4]) {
    // Block k: code values times the scale 1 + k, its first element the code 1 (so absmax = scale).
    const x = Array.from({ length: 21 }, (_, i) => (i % bs === 0 ? 1 : NF4_CODEBOOK[(i * 5) % 16]!) * (1 + Math.floor(i / bs)));
    const q = quantizeNF4(x, [3, 7], bs);
    assert.equal(q.packed.length, 11);
    const d = dequantizeNF4(q);
    assert.equal(d.length, 21);
    // Each value is code · its block's absmax, so it comes back up to the 8-bit absmax error: half the
    // dynamic map's widest gap (0.9/64, near ±1) times the largest |absmax - mean(absmax)|.
    const scales = Array.from({ length: Math.ceil(21 / bs) }, (_, k) => 1 + k);
    const mean = scales.reduce((a, b) => a + b, 0) / scales.length;
    const tol = (0.9 / 64 / 2) * Math.max(...scales.map((v) => Math.abs(v - mean))) + 1e-6;
    for (let i = 0; i < 21; i++) assert.ok(Math.abs(d[i]! - x[i]!) <= tol, `bs ${bs} element ${i}: ${d[i]} vs ${x[i]}`);
  }
  assert.throws(() => quantizeNF4(new Float32Array(21), [4, 7]), /21 values do not fill shape \[4, 7\]/);
});

test("Gaussian weights: error within half a code gap per block, double quant of the absmax is close", () => {
  const g = new Generator(0);
  const n = 64 * 300;
  const x = Float32Array.from({ length: n }, () => g.normal() * 0.02);
  const q = quantizeNF4(x, [300, 64]);
  const d = dequantizeNF4(q);
  let maxGap = 0;
  for (let i = 1; i < 16; i++) maxGap = Math.max(maxGap, NF4_CODEBOOK[i]! - NF4_CODEBOOK[i - 1]!);
  let sq = 0;
  for (let b = 0; b < 300; b++) {
    let amax = 0;
    for (let i = 0; i < 64; i++) amax = Math.max(amax, Math.abs(x[b * 64 + i]!));
    for (let i = 0; i < 64; i++) {
      const e = Math.abs(d[b * 64 + i]! - x[b * 64 + i]!);
      // Half a gap of the codebook plus the 8-bit absmax error (< 1% of absmax).
      assert.ok(e <= amax * (maxGap / 2 + 0.01) + 1e-7, `block ${b} element ${i}: error ${e}, absmax ${amax}`);
      sq += e * e;
    }
  }
  const rmse = Math.sqrt(sq / n);
  assert.ok(rmse < 0.1 * 0.02, `rmse ${rmse} is under 10% of the weights' std`);
  assert.equal(nf4Bytes(q), nf4BytesFor(n));
});

test("NF4Linear computes x·deq(W)ᵀ + b and stores ~4.1 bits per weight", () => {
  const g = new Generator(1);
  const lin = new Linear(128, 48, { generator: g });
  const q = new NF4Linear(lin);
  const x = T.randn([5, 128], { generator: g });
  const w = q.dequantizeWeight();
  assert.deepEqual(Array.from(w.data() as Float32Array), Array.from(dequantizeNF4(q.qweight)), "backend dequant equals the TS oracle");
  const want = T.add(T.matmul(x, w.T), lin.bias!);
  const got = T.noGrad(() => q.forward(x));
  assert.ok(Math.max(...T.sub(got, want).abs().toArray()) < 1e-5, "inference path (NF4 matmul)");
  // Training path: x needs a gradient, the weight is dequantized on the fly; dL/dx = g · deq(W).
  const xg = x.detach().setRequiresGrad();
  const yg = q.forward(xg);
  assert.ok(Math.max(...T.sub(yg.detach(), want).abs().toArray()) < 1e-5, "training path");
  T.sum(yg).backward();
  const dx = T.matmul(T.ones([5, 48]), w);
  assert.ok(Math.max(...T.sub(xg.grad!, dx).abs().toArray()) < 1e-5, "gradient through the dequantized weight");
  const exact = T.noGrad(() => lin.forward(x));
  const rel = Math.sqrt(T.sum(T.square(T.sub(got, exact))).item() / T.sum(T.square(exact)).item());
  assert.ok(rel > 0 && rel < 0.12, `close to the fp32 layer (relative error ${rel})`);
  assert.equal(q.parameters().length, 1, "only the bias is a tensor parameter, frozen");
  assert.equal(q.parameters()[0]!.requiresGrad, false);
  assert.ok((q.weightBytes * 8) / (128 * 48) < 4.2);
});

test("memory saved by NF4 on a Qwen2.5-0.5B-shaped set of Linear layers", () => {
  // hidden 896, intermediate 4864, 24 layers, 14 heads / 2 kv heads of 64.
  const shapes: [number, number][] = [[896, 896], [128, 896], [128, 896], [896, 896], [4864, 896], [4864, 896], [896, 4864]];
  let fp32 = 0;
  let nf4 = 0;
  for (let l = 0; l < 24; l++) {
    for (const [o, i] of shapes) {
      fp32 += o * i * 4;
      nf4 += nf4BytesFor(o * i);
    }
  }
  // One layer really quantized has exactly the predicted size.
  const g = new Generator(2);
  const kv = Float32Array.from({ length: 128 * 896 }, () => g.normal());
  assert.equal(nf4Bytes(quantizeNF4(kv, [128, 896])), nf4BytesFor(128 * 896));
  const ratio = fp32 / nf4;
  console.log(`# NF4 memory, 0.5B Linear set (168 layers, ${(fp32 / 4 / 1e6).toFixed(1)}M weights): fp32 ${(fp32 / 2 ** 20).toFixed(1)} MiB → NF4+absmax ${(nf4 / 2 ** 20).toFixed(1)} MiB (${ratio.toFixed(2)}x smaller, saves ${((fp32 - nf4) / 2 ** 20).toFixed(1)} MiB)`);
  assert.ok(ratio > 7.7 && ratio < 8, `ratio ${ratio}`);
});
