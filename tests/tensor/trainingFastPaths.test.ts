/**
 * The training fast paths keep results exact: cross-entropy of bf16 logits upcast to float32 reads
 * the bf16 logits directly (loss and gradient bit-identical to the float32 route), and frozen
 * operands of add/sub/mul/div/where get no gradient computed (trainable ones unchanged); native
 * elementwise kernels split long rows across threads (a dense tensor is one row) and still match the
 * reference backend, for dense, strided and broadcast views.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import "../../src/backend/index.ts";
import { getBackend, setDefaultBackend } from "../../src/backend/registry.ts";
import { availableBackends } from "../helpers/backends.ts";
import type { Storage } from "../../src/core/dtype.ts";
import { Generator } from "../../src/core/rng.ts";
import * as T from "../../src/tensor/index.ts";

const backends = availableBackends();

for (const name of backends) {
  test(`${name}: CE of bf16 logits .to("float32") equals CE of a detached float32 copy, loss and grad`, () => {
    setDefaultBackend(name);
    const gen = new Generator(3);
    const V = 1000;
    const N = 6;
    const w = T.randn([N, V], { generator: gen, std: 3 }).to("bfloat16");
    const targets = T.tensor([1, 999, -100, 0, 512, 7], { dtype: "int32" });
    for (const opts of [{}, { labelSmoothing: 0.1 }, { reduction: "sum" as const }]) {
      // Fast path: the graph is bf16 leaf → cast → CE.
      const a = w.detach();
      a.requiresGrad = true;
      const lossA = T.crossEntropy(T.mul(a, 1).to("float32"), targets, opts);
      const be = getBackend(name);
      const orig = be.crossEntropyBackward;
      const seen: string[] = [];
      be.crossEntropyBackward = (...args: Parameters<typeof orig>) => {
        seen.push(args[1]);
        orig.apply(be, args);
      };
      try {
        lossA.backward();
      } finally {
        be.crossEntropyBackward = orig;
      }
      assert.deepEqual(seen, ["bfloat16"], "the backward reads the bf16 logits, no float32 gradient of [N, V]");
      // Float32 route: CE on a float32 leaf, gradient cast to bf16 afterwards.
      const b = w.detach().to("float32");
      b.requiresGrad = true;
      const lossB = T.crossEntropy(b, targets, opts);
      lossB.backward();
      assert.equal(lossA.dtype, "float32");
      assert.equal(lossA.item(), lossB.item(), `loss ${JSON.stringify(opts)}`);
      assert.equal(a.grad!.dtype, "bfloat16");
      assert.deepEqual(a.grad!.toArray(), b.grad!.to("bfloat16").toArray(), `grad ${JSON.stringify(opts)}`);
      // Row 2 is ignored: zero gradient.
      assert.ok((a.grad!.select(0, 2).toArray() as number[]).every((x) => x === 0));
    }
  });

  test(`${name}: frozen operands get no gradient, trainable ones the usual one`, () => {
    setDefaultBackend(name);
    const gen = new Generator(5);
    const x = T.randn([3, 4], { generator: gen, dtype: "float64" });
    x.requiresGrad = true;
    const frozen = T.randn([4], { generator: gen, dtype: "float64" });
    const pos = T.rand([4], { generator: gen, dtype: "float64", low: 0.5, high: 2 });
    const cond = T.tensor([1, 0, 1, 0], { dtype: "int32" });
    const y = T.where(cond, T.div(T.mul(T.sub(T.add(x, frozen), frozen), frozen), pos), frozen);
    y.sum().backward();
    assert.equal(frozen.grad, null);
    assert.equal(pos.grad, null);
    // d/dx where(c, (x + f - f) * f / p, f) = c * f / p, broadcast over rows.
    const f = frozen.toArray() as number[];
    const p = pos.toArray() as number[];
    const c = [1, 0, 1, 0];
    const gx = x.grad!.toArray() as number[]; // flat [3, 4]
    gx.forEach((g, i) => assert.ok(Math.abs(g - (c[i % 4]! * f[i % 4]!) / p[i % 4]!) < 1e-12, `grad ${g} at ${i}`));
    // The same expression with the operand trainable does get its gradient.
    frozen.requiresGrad = true;
    T.mul(x, frozen).sum().backward();
    const colSums = [0, 0, 0, 0];
    (x.toArray() as number[]).forEach((v, i) => (colSums[i % 4]! += v));
    (frozen.grad!.toArray() as number[]).forEach((g, j) => assert.ok(Math.abs(g - colSums[j]!) < 1e-12));
  });
}

/** Seeded values (bf16-representable when asked) so both backends see identical inputs. */
function values(n: number, seed: number): Float32Array {
  const g = new Generator(seed);
  return Float32Array.from({ length: n }, () => g.normal() * 2);
}

test("elementwise ops over long rows (split across threads) match the reference backend", { skip: !backends.includes("native") }, () => {
  const n = 100_003; // > 2 pieces of 16384, not a multiple of any vector width
  const run = (name: string) => {
    setDefaultBackend(name);
    const out: Record<string, number[]> = {};
    for (const dt of ["float32", "bfloat16"] as const) {
      const a = T.fromArray(values(2 * n, 1), [2 * n]).to(dt);
      const b = T.fromArray(values(n, 2), [1, n]).to(dt);
      const strided = a.slice(0, 0, 2 * n, 2).reshape([1, n]); // inner stride 2
      const row = T.fromArray(values(7, 3), [7, 1]).to(dt);
      out[`${dt} silu`] = T.silu(b).toArray();
      out[`${dt} add strided`] = T.add(strided, b).toArray();
      out[`${dt} mul`] = T.mul(b, b).toArray();
      out[`${dt} where`] = T.where(T.compare("gt", b, 0), strided, b).toArray();
      out[`${dt} cast`] = b.to(dt === "float32" ? "bfloat16" : "float32").toArray();
      // 7 rows < 2 pieces each: still the row-parallel path, with a broadcast column.
      out[`${dt} broadcast`] = T.mul(T.fromArray(values(7 * 40000, 4), [7, 40000]).to(dt), row).toArray();
      // silu backward through autograd on a long dense row
      const x = b.detach();
      x.requiresGrad = true;
      T.silu(x).sum().backward();
      out[`${dt} silu backward`] = x.grad!.toArray();
    }
    return out;
  };
  const ref = run("reference");
  const nat = run("native");
  for (const [key, want] of Object.entries(ref)) {
    const got = nat[key]!;
    assert.equal(got.length, want.length, key);
    const exact = !key.includes("silu");
    const tol = key.startsWith("bfloat16") ? 8e-3 : 1e-5;
    for (let i = 0; i < want.length; i++) {
      const ok = exact ? got[i] === want[i] : Math.abs(got[i]! - want[i]!) <= tol * (1 + Math.abs(want[i]!));
      if (!ok) assert.fail(`${key}: element ${i} native ${got[i]} vs reference ${want[i]}`);
    }
  }
});

test("swiglu kernels (fused, and composed for an add-on without them) match the reference backend", { skip: !backends.includes("native") }, async () => {
  const { NativeBackend } = await import("../../src/backend/native/NativeBackend.ts");
  const { loadAddon } = await import("../../src/backend/native/addon.ts");
  const { fromValues } = await import("../helpers/backends.ts");
  const addon = loadAddon();
  const { swiglu: _f, swigluBackward: _b, ...older } = addon;
  void _f;
  void _b;
  const ref = getBackend("reference");
  // An add-on built before the kernels existed (a stale build/) only has the composed route.
  const hasFused = typeof addon["swiglu"] === "function";
  const composed = new NativeBackend(older as typeof addon);
  const impls: Record<string, typeof ref> = hasFused ? { fused: getBackend("native"), composed } : { composed };
  const n = 50_001;
  for (const dt of ["float32", "bfloat16"] as const) {
    const [gate, up, gOut] = [1, 2, 3].map((seed) => fromValues(dt, values(n, seed)));
    const outs = (be: typeof ref) => {
      const o = fromValues(dt, new Float32Array(n));
      const gg = fromValues(dt, new Float32Array(n));
      const gu = fromValues(dt, new Float32Array(n));
      be.swiglu(gate!, up!, o, dt, n);
      be.swigluBackward(gate!, up!, gOut!, gg, gu, dt, n);
      return { o, gg, gu };
    };
    const want = outs(ref);
    const f32 = (s: Storage) => (dt === "bfloat16" ? T.fromArray(s as Uint16Array, [n], "bfloat16") : T.fromArray(s as Float32Array, [n])).toArray();
    for (const [kind, be] of Object.entries(impls)) {
      const got = outs(be);
      // The composed route rounds silu(gate) once more in bf16.
      const tol = dt === "bfloat16" ? 1.6e-2 : 2e-6;
      for (const key of ["o", "gg", "gu"] as const) {
        const w = f32(want[key]);
        const g = f32(got[key]);
        for (let i = 0; i < n; i++) {
          if (!(Math.abs(g[i]! - w[i]!) <= tol * (1 + Math.abs(w[i]!)))) assert.fail(`${kind} ${dt} ${key}[${i}]: ${g[i]} vs reference ${w[i]}`);
        }
      }
    }
  }
  const short = (be: typeof ref) => () => be.swiglu(new Float32Array(4), new Float32Array(3), new Float32Array(4), "float32", 4);
  if (hasFused) assert.throws(short(getBackend("native")), /swiglu: up has 3 elements, needs 4/);
  assert.throws(short(composed), /reaches elements \[0, 3\] of an array of 3/);
});

test("Tensor.uninit: right storage type and length for large and small buffers; bad shapes rejected", () => {
  for (const [dt, ctor] of [["float32", Float32Array], ["bfloat16", Uint16Array], ["float64", Float64Array], ["int32", Int32Array]] as const) {
    for (const shape of [[3, 5], [70, 1000]]) {
      const t = T.Tensor.uninit(shape, dt);
      assert.ok(t.storage instanceof ctor, `${dt} storage`);
      assert.equal(t.storage.length, shape[0]! * shape[1]!);
      assert.equal(t.storage.byteOffset, 0);
      assert.deepEqual(t.shape, shape);
      assert.equal(t.isContiguous, true);
    }
  }
  // Two live large buffers never share memory.
  const a = T.Tensor.uninit([100_000], "float32");
  const b = T.Tensor.uninit([100_000], "float32");
  (a.storage as Float32Array).fill(1);
  (b.storage as Float32Array).fill(2);
  assert.equal((a.storage as Float32Array)[99_999], 1);
  assert.throws(() => T.Tensor.uninit([2, -1]), /uninit: invalid shape \[2, -1\]/);
});
