/**
 * The decode-step kernels of native/decode.cpp against the reference backend: attention with few
 * query rows (the decode kernel the native backend picks for T <= DECODE_ATTENTION_MAX_T: GQA, causal
 * with T < S, key masks, a fully masked row, head dims off the vector width, odd or past four vectors,
 * a size that runs on the pool), and the fused decoder layer for float32 / bfloat16 / Q8_0 / Q4_0
 * projections, which must also equal the native backend's own ops run one by one, bit for bit; and
 * the fused stack (every layer in one call) against a decoderLayer call per layer, bit for bit,
 * whose bad layer is named before any layer runs.
 */
import { describe, test } from "node:test";
import "../../src/backend/index.ts";
import assert from "node:assert/strict";
import type { AttentionArgs, DecodeProjection, DecoderLayerArgs, DecoderLayerWeights } from "../../src/backend/Backend.ts";
import { composeDecoderLayer } from "../../src/backend/decoderLayer.ts";
import { DECODE_ATTENTION_MAX_T } from "../../src/backend/native/NativeBackend.ts";
import type { DType, Storage } from "../../src/core/dtype.ts";
import { Generator } from "../../src/core/rng.ts";
import { quantizeWeight } from "../../src/quant/index.ts";
import { Tensor } from "../../src/tensor/index.ts";
import { assertClose, randStorage, tolFor, toNumbers } from "../helpers/backends.ts";
import { addon, native, ref } from "../helpers/quantKernels.ts";

const skip = { skip: typeof addon["decoderLayer"] === "function" ? false : "the add-on lacks native/decode.cpp (npm run build:native)" };

function zeros(dtype: DType, n: number): Storage {
  return dtype === "bfloat16" ? new Uint16Array(n) : new Float32Array(n);
}

describe("decode attention (native) vs reference", () => {
  const cases: (Omit<AttentionArgs, "keyMask" | "scale"> & { mask?: (b: number, s: number) => number })[] = [
    { B: 2, Hq: 4, Hkv: 2, T: 1, S: 7, D: 16, causal: true, mask: (b, s) => (b === 0 && s < 2 ? 0 : 1) },
    { B: 1, Hq: 3, Hkv: 1, T: 3, S: 5, D: 10, causal: true },
    { B: 1, Hq: 2, Hkv: 2, T: 4, S: 4, D: 6, causal: false, mask: (_b, s) => (s === 1 ? 0 : 1) },
    // Row b = 1 sees no key at all: out 0, lse -inf.
    { B: 2, Hq: 2, Hkv: 1, T: 1, S: 3, D: 8, causal: true, mask: (b) => (b === 1 ? 0 : 1) },
    // Enough work for the thread pool (Qwen2.5-0.5B heads).
    { B: 1, Hq: 14, Hkv: 2, T: 1, S: 300, D: 64, causal: true },
    // An odd head dim (the key gathers' last column alone), rows of two positions in one block of 4.
    { B: 1, Hq: 5, Hkv: 1, T: 2, S: 37, D: 7, causal: true },
    // Head dims past 4 vectors: a full and a partial group of columns in P V; a mask inside the block.
    { B: 2, Hq: 6, Hkv: 2, T: 4, S: 40, D: 72, causal: true, mask: (b, s) => (b === 1 && s % 5 === 0 ? 0 : 1) },
    { B: 1, Hq: 4, Hkv: 1, T: 1, S: 17, D: 80, causal: false },
  ];
  for (const dtype of ["float32", "bfloat16"] as const) {
    test(`${dtype}: out and lse`, skip, () => {
      assert.ok(DECODE_ATTENTION_MAX_T >= 4);
      cases.forEach((c, i) => {
        const g = new Generator(10 + i);
        const { B, Hq, Hkv, T, S, D } = c;
        const keyMask = c.mask ? Uint8Array.from({ length: B * S }, (_, j) => c.mask!(Math.floor(j / S), j % S)) : null;
        const args: AttentionArgs = { B, Hq, Hkv, T, S, D, scale: 1 / Math.sqrt(D), causal: c.causal, keyMask };
        const q = randStorage(dtype, B * Hq * T * D, g);
        const k = randStorage(dtype, B * Hkv * S * D, g);
        const v = randStorage(dtype, B * Hkv * S * D, g);
        const out = zeros(dtype, B * Hq * T * D);
        const outR = zeros(dtype, B * Hq * T * D);
        const lse = new Float32Array(B * Hq * T);
        const lseR = new Float32Array(B * Hq * T);
        native.attention(q, k, v, out, lse, dtype, args);
        ref.attention(q, k, v, outR, lseR, dtype, args);
        assertClose(`case ${i} out`, out, outR, tolFor(dtype, 2));
        assertClose(`case ${i} lse`, lse, lseR, { rtol: 1e-5, atol: 1e-5 });
        if (i === 3) {
          assert.ok(toNumbers(out).slice(Hq * T * D).every((x) => x === 0), "fully masked row outputs 0");
          assert.equal(lse[Hq * T], -Infinity);
        }
      });
    });
  }

  test("bad sizes name the argument", skip, () => {
    assert.throws(
      () => addon["decodeAttention"]!(new Float32Array(8), new Float32Array(8), new Float32Array(7), new Float32Array(8), new Float32Array(2), 0, 1, 1, 1, 2, 2, 4, 1, true, null),
      /attention: v has 7 elements, needs 8/,
    );
  });
});

interface LayerCase {
  name: string;
  dtype: DType;
  /** Weight kind of q, k, v, o, gate, up, down: float (the dtype) or a quant type. */
  kinds: ("float" | "q8_0" | "q4_0")[];
  B: number;
  T: number;
  past: number;
  padded: boolean;
}

const C = 64;
const F = 96;
const Hq = 4;
const Hkv = 2;
const D = 16;
const CAP = 9;

function makeLayer(c: LayerCase, seed: number) {
  const g = new Generator(seed);
  const shapes: [number, number, boolean][] = [
    [Hq * D, C, true],
    [Hkv * D, C, true],
    [Hkv * D, C, true],
    [C, Hq * D, false],
    [F, C, false],
    [F, C, c.dtype === "float32"], // an MLP bias (Llama mlp_bias) on some cases
    [C, F, false],
  ];
  const projs: DecodeProjection[] = shapes.map(([n, k, hasBias], i) => {
    const kind = c.kinds[i]!;
    const w = randStorage(c.dtype, n * k, g, (x) => x / Math.sqrt(k));
    const bias = hasBias ? randStorage(c.dtype, n, g, (x) => 0.1 * x) : null;
    if (kind === "float") return { kind: "float", weight: w, bias };
    const qw = quantizeWeight(new Tensor(w, c.dtype, [n, k]), kind);
    return { kind: "quant", type: kind, qs: qw.qs, scales: qw.scales, bias };
  });
  const [q, k, v, o, gate, up, down] = projs as [DecodeProjection, DecodeProjection, DecodeProjection, DecodeProjection, DecodeProjection, DecodeProjection, DecodeProjection];
  const w: DecoderLayerWeights = {
    inputNorm: randStorage(c.dtype, C, g, (x) => 1 + 0.1 * x),
    postNorm: randStorage(c.dtype, C, g, (x) => 1 + 0.1 * x),
    q, k, v, o, gate, up, down,
  };
  const S = c.past + c.T;
  const padLeft = (b: number) => (c.padded && b === 0 ? 2 : 0);
  const keyMask = c.padded ? Uint8Array.from({ length: c.B * S }, (_, j) => (j % S < padLeft(Math.floor(j / S)) ? 0 : 1)) : null;
  const positions = Int32Array.from({ length: c.B * c.T }, (_, j) => Math.max(0, c.past + (j % c.T) - padLeft(Math.floor(j / c.T))));
  const args: DecoderLayerArgs = { B: c.B, T: c.T, C, F, Hq, Hkv, D, past: c.past, capacity: CAP, eps: 1e-6, theta: 10000, positions, keyMask };
  const h = randStorage(c.dtype, c.B * c.T * C, g);
  const kc = randStorage(c.dtype, c.B * Hkv * CAP * D, g);
  const vc = randStorage(c.dtype, c.B * Hkv * CAP * D, g);
  return { w, args, h, kc, vc };
}

const copyOf = (s: Storage) => s.slice() as Storage;

describe("fused decoder layer (native) vs the ops one by one", () => {
  const cases: LayerCase[] = [
    { name: "float32, B=2 T=1, padded", dtype: "float32", kinds: Array(7).fill("float"), B: 2, T: 1, past: 4, padded: true },
    { name: "float32, B=1 T=3", dtype: "float32", kinds: Array(7).fill("float"), B: 1, T: 3, past: 2, padded: false },
    { name: "bfloat16, B=2 T=1, padded", dtype: "bfloat16", kinds: Array(7).fill("float"), B: 2, T: 1, past: 5, padded: true },
    { name: "bfloat16, B=2 T=2", dtype: "bfloat16", kinds: Array(7).fill("float"), B: 2, T: 2, past: 0, padded: false },
    { name: "q8_0 / q4_0 over float32, B=2 T=1, padded", dtype: "float32", kinds: ["q8_0", "q8_0", "q4_0", "q4_0", "q8_0", "q4_0", "q8_0"], B: 2, T: 1, past: 6, padded: true },
    { name: "q4_0 over bfloat16, B=1 T=1", dtype: "bfloat16", kinds: Array(7).fill("q4_0"), B: 1, T: 1, past: 8, padded: false },
  ];
  cases.forEach((c, i) => {
    test(c.name, skip, () => {
      const { w, args, h, kc, vc } = makeLayer(c, 100 + i);
      const run = (f: (h: Storage, kc: Storage, vc: Storage) => void) => {
        const out = { h: copyOf(h), kc: copyOf(kc), vc: copyOf(vc) };
        f(out.h, out.kc, out.vc);
        return out;
      };
      const fused = run((hh, k, v) => native.decoderLayer(hh, c.dtype, w, k, v, args));
      const composed = run((hh, k, v) => composeDecoderLayer(native, hh, c.dtype, w, k, v, args));
      const reference = run((hh, k, v) => ref.decoderLayer(hh, c.dtype, w, k, v, args));
      // The same kernels in the same order: identical bits.
      assert.deepEqual(toNumbers(fused.h), toNumbers(composed.h), "h: fused vs native ops one by one");
      assert.deepEqual(toNumbers(fused.kc), toNumbers(composed.kc), "k cache: fused vs native ops one by one");
      assert.deepEqual(toNumbers(fused.vc), toNumbers(composed.vc), "v cache: fused vs native ops one by one");
      // Against the float64 reference (bf16: a rounding step may land on the other side).
      assertClose("h vs reference", fused.h, reference.h, c.dtype === "bfloat16" ? tolFor("bfloat16", 3) : { rtol: 1e-4, atol: 1e-4 });
      assertClose("k cache vs reference", fused.kc, reference.kc, c.dtype === "bfloat16" ? tolFor("bfloat16", 3) : { rtol: 1e-4, atol: 1e-4 });
      assertClose("v cache vs reference", fused.vc, reference.vc, c.dtype === "bfloat16" ? tolFor("bfloat16", 3) : { rtol: 1e-4, atol: 1e-4 });
      // Only the T new positions of each (b, kv head) were written.
      const before = toNumbers(kc);
      const after = toNumbers(fused.kc);
      for (let j = 0; j < before.length; j++) {
        const s = Math.floor(j / D) % CAP;
        if (s < args.past || s >= args.past + args.T) assert.equal(after[j], before[j], `k cache element ${j} (position ${s}) changed`);
      }
      assert.notDeepEqual(toNumbers(fused.h), toNumbers(h), "h was updated");
    });
  });

  test("bad input names the argument", skip, () => {
    const c: LayerCase = { name: "", dtype: "float32", kinds: Array(7).fill("float"), B: 1, T: 2, past: 8, padded: false };
    const { w, args, h, kc, vc } = makeLayer(c, 7);
    assert.throws(() => native.decoderLayer(h, "float32", w, kc, vc, args), /decoderLayer: 8 cached \+ 2 new positions exceed the capacity 9/);
    const ok = { ...args, past: 1 };
    const bad = { ...w, o: { kind: "float", weight: new Float32Array(10), bias: null } as DecodeProjection };
    assert.throws(() => native.decoderLayer(h, "float32", bad, kc, vc, ok), /decoderLayer: o_proj\.weight has 10 elements, needs 4096/);
    assert.throws(() => native.decoderLayer(h, "float32", w, kc, vc, { ...ok, keyMask: new Uint8Array(2) }), /keyMask must be a Uint8Array of B \* \(past \+ T\) = 3/);
    assert.throws(() => ref.decoderLayer(h, "float32", w, kc, vc, args), /exceed the capacity 9/);
  });
});

describe("fused decoder stack (native) vs its layers one call each", () => {
  const cases: LayerCase[] = [
    { name: "float32, B=2 T=1, padded", dtype: "float32", kinds: Array(7).fill("float"), B: 2, T: 1, past: 4, padded: true },
    { name: "bfloat16, B=1 T=2", dtype: "bfloat16", kinds: Array(7).fill("float"), B: 1, T: 2, past: 3, padded: false },
    { name: "q8_0 over bfloat16, B=1 T=1", dtype: "bfloat16", kinds: Array(7).fill("q8_0"), B: 1, T: 1, past: 6, padded: false },
  ];
  cases.forEach((c, i) => {
    test(c.name, skip, () => {
      // Three layers over the same h, each with its own weights and caches.
      const layers = [0, 1, 2].map((j) => makeLayer(c, 200 + 10 * i + j));
      const { args, h } = layers[0]!;
      const stackLayers = () => layers.map((l) => ({ w: l.w, kCache: copyOf(l.kc), vCache: copyOf(l.vc), past: args.past, capacity: CAP, keyMask: args.keyMask }));
      const { past: _p, capacity: _c, keyMask: _k, ...stepArgs } = args;
      const stacked = stackLayers();
      const hs = copyOf(h);
      native.decoderStack(hs, c.dtype, stacked, stepArgs);
      const byLayer = stackLayers();
      const hl = copyOf(h);
      for (const l of byLayer) native.decoderLayer(hl, c.dtype, l.w, l.kCache, l.vCache, args);
      const composed = stackLayers();
      const hc = copyOf(h);
      ref.decoderStack(hc, c.dtype, composed, stepArgs);
      assert.deepEqual(toNumbers(hs), toNumbers(hl), "h: one stack call vs a decoderLayer call per layer");
      stacked.forEach((l, j) => {
        assert.deepEqual(toNumbers(l.kCache), toNumbers(byLayer[j]!.kCache), `layer ${j} k cache`);
        assert.deepEqual(toNumbers(l.vCache), toNumbers(byLayer[j]!.vCache), `layer ${j} v cache`);
      });
      assertClose("h vs reference", hs, hc, c.dtype === "bfloat16" ? tolFor("bfloat16", 4) : { rtol: 1e-4, atol: 1e-4 });
      assert.notDeepEqual(toNumbers(hs), toNumbers(h), "h was updated");
    });
  });

  test("a bad layer is named and nothing runs", skip, () => {
    const c: LayerCase = { name: "", dtype: "float32", kinds: Array(7).fill("float"), B: 1, T: 1, past: 2, padded: false };
    const a = makeLayer(c, 300);
    const b = makeLayer(c, 301);
    const { past: _p, capacity: _c, keyMask: _k, ...stepArgs } = a.args;
    const h = copyOf(a.h);
    const kc = copyOf(a.kc);
    const good = { w: a.w, kCache: kc, vCache: copyOf(a.vc), past: 2, capacity: CAP, keyMask: null };
    const shortCache = { w: b.w, kCache: new Float32Array(5), vCache: copyOf(b.vc), past: 2, capacity: CAP, keyMask: null };
    assert.throws(() => native.decoderStack(h, "float32", [good, shortCache], stepArgs), /decoderStack: layers: layer 1: kCache has 5 elements, needs 288/);
    assert.deepEqual(toNumbers(h), toNumbers(a.h), "h untouched");
    assert.deepEqual(toNumbers(kc), toNumbers(a.kc), "layer 0's cache untouched");
    const full = { ...good, past: CAP };
    assert.throws(() => native.decoderStack(h, "float32", [good, full], stepArgs), /layer 1: 9 cached \+ 1 new positions exceed the capacity 9/);
    assert.throws(() => ref.decoderStack(h, "float32", [good, full], stepArgs), /decoderStack: layer 1: 9 cached \+ 1 new positions exceed the capacity 9/);
    assert.deepEqual(toNumbers(h), toNumbers(a.h), "h untouched by the reference either");
  });
});

