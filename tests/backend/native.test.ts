/**
 * The native backend against the reference backend: every Backend method except gemm (see
 * gemm.test.ts) on seeded random inputs, odd sizes (1, 7, 33, 4865), broadcasting, non-contiguous
 * views, float32 and bfloat16, plus the add-on's own argument checks. Skipped when the add-on is
 * not built (set GRAFT_NATIVE_PATH to a dev build).
 */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import type { DType } from "../../src/core/dtype.ts";
import type { Backend, BinaryOp, ReduceOp, UnaryOp, View } from "../../src/backend/Backend.ts";
import { ReferenceBackend } from "../../src/backend/reference/ReferenceBackend.ts";
import { NativeBackend } from "../../src/backend/native/NativeBackend.ts";
import { loadAddon } from "../../src/backend/native/addon.ts";
import type { Generator } from "../../src/core/rng.ts";
import { type Outputs, type Tolerance, compareBackends, contiguous, fromValues, makeView, randStorage, tolFor } from "../helpers/backends.ts";

const ref = new ReferenceBackend();
let native: NativeBackend | null = null;
let loadError = "";
try {
  // a partial dev build (e.g. gemm only) loads but lacks the ops kernels
  if (typeof loadAddon()["attentionBackward"] !== "function") throw new Error("the add-on was built without native/ops*.cpp");
  native = new NativeBackend();
} catch (e) {
  loadError = (e as Error).message;
}
const skip = native ? false : `native add-on not available: ${loadError}`;
const FLOATS: DType[] = ["float32", "bfloat16"];

/** Compares native to reference for one body; tolerances default to the dtype's. */
function check(name: string, dtype: DType, seed: number, body: (be: Backend, g: Generator) => Outputs, tol?: Tolerance | ((k: string) => Tolerance)): void {
  compareBackends(ref, native!, `${name} [${dtype}]`, seed, tol ?? tolFor(dtype), body);
}

/** Non-contiguous layouts of a logical shape: a base buffer and a view into it. */
type Layout = "contiguous" | "transposed" | "offset" | "stepped";
function layoutView(dtype: DType, shape: number[], layout: Layout, g: Generator, f?: (x: number) => number): View {
  const n = shape.reduce((a, b) => a * b, 1);
  switch (layout) {
    case "contiguous":
      return makeView(randStorage(dtype, n, g, f), dtype, shape);
    case "offset":
      return makeView(randStorage(dtype, n + 5, g, f), dtype, shape, contiguous(shape), 5);
    case "stepped": {
      // every other element of the last dimension
      const big = [...shape.slice(0, -1), shape[shape.length - 1]! * 2];
      const st = contiguous(big);
      st[st.length - 1] = 2;
      return makeView(randStorage(dtype, n * 2 + 1, g, f), dtype, shape, st, 1);
    }
    case "transposed": {
      // stored with the last two dims swapped
      const k = shape.length;
      const stored = [...shape];
      if (k >= 2) [stored[k - 2], stored[k - 1]] = [stored[k - 1]!, stored[k - 2]!];
      const st = contiguous(stored);
      if (k >= 2) [st[k - 2], st[k - 1]] = [st[k - 1]!, st[k - 2]!];
      return makeView(randStorage(dtype, n, g, f), dtype, shape, st);
    }
  }
}
function emptyOut(dtype: DType, shape: number[]): View {
  return makeView(fromValues(dtype, new Array(shape.reduce((a, b) => a * b, 1)).fill(0)), dtype, shape);
}
/** A broadcast view of `shape` (dims of size 1 get stride 0 when expanded to `outShape`). */
function broadcast(dtype: DType, shape: number[], outShape: number[], g: Generator, f?: (x: number) => number): View {
  const n = shape.reduce((a, b) => a * b, 1);
  const st = contiguous(shape).map((s, i) => (shape[i] === 1 && outShape[i] !== 1 ? 0 : s));
  return makeView(randStorage(dtype, n, g, f), dtype, outShape, st);
}

const UNARY: UnaryOp[] = ["neg", "exp", "log", "sqrt", "rsqrt", "tanh", "sigmoid", "silu", "gelu", "gelu_erf", "relu", "abs", "sin", "cos", "square", "reciprocal"];
const POSITIVE = new Set<UnaryOp>(["log", "sqrt", "rsqrt"]);
function domain(op: UnaryOp): (x: number) => number {
  if (POSITIVE.has(op)) return (x) => Math.abs(x) + 0.05;
  if (op === "reciprocal") return (x) => x + (x < 0 ? -0.1 : 0.1);
  return (x) => 3 * x;
}
const BINARY: BinaryOp[] = ["add", "sub", "mul", "div", "pow", "maximum", "minimum", "eq", "ne", "lt", "le", "gt", "ge"];

describe("native backend vs reference", { skip }, () => {
  test("copy casts between float32, bfloat16 and int32 over strided views", () => {
    const pairs: [DType, DType][] = [
      ["float32", "bfloat16"],
      ["bfloat16", "float32"],
      ["float32", "float32"],
      ["bfloat16", "bfloat16"],
      ["int32", "float32"],
      ["float32", "int32"],
      ["int32", "int32"],
      ["int32", "bfloat16"],
    ];
    const shapes = [[33, 7], [2, 3, 4, 5], [4865], [1], [7, 1, 33]];
    for (const [s, d] of pairs) {
      for (const shape of shapes) {
        for (const layout of ["contiguous", "transposed", "offset", "stepped"] as Layout[]) {
          check(`copy ${s}->${d} ${layout} [${shape}]`, d === "bfloat16" || s === "bfloat16" ? "bfloat16" : "float32", 1, (be, g) => {
            const src = layoutView(s, shape, layout, g, (x) => x * 100);
            const dst = layoutView(d, shape, layout === "contiguous" ? "transposed" : "contiguous", g);
            be.copy(src, dst);
            return { dst: dst.data };
          }, { rtol: 0, atol: 0 });
        }
      }
    }
  });

  test("fill writes strided views", () => {
    for (const dtype of [...FLOATS, "int32"] as DType[]) {
      check("fill", dtype, 2, (be, g) => {
        const v = layoutView(dtype, [7, 33], "stepped", g);
        be.fill(v, -2.75);
        return { data: v.data };
      }, { rtol: 0, atol: 0 });
    }
  });

  test("unary forward and backward, all ops", () => {
    for (const dtype of FLOATS) {
      for (const op of UNARY) {
        for (const [shape, layout] of [[[4865], "contiguous"], [[33, 7], "transposed"], [[1], "offset"], [[3, 40000], "contiguous"]] as [number[], Layout][]) {
          const tol = dtype === "float32" ? { rtol: 2e-6, atol: 1e-6 } : tolFor(dtype);
          check(`unary ${op} [${shape}] ${layout}`, dtype, 3, (be, g) => {
            const x = layoutView(dtype, shape, layout, g, domain(op));
            const out = emptyOut(dtype, shape);
            be.unary(op, x, out);
            return { out: out.data };
          }, tol);
          check(`unaryBackward ${op} [${shape}] ${layout}`, dtype, 4, (be, g) => {
            const x = layoutView(dtype, shape, layout, g, domain(op));
            const gy = layoutView(dtype, shape, "stepped", g);
            const gx = emptyOut(dtype, shape);
            be.unaryBackward(op, x, gy, gx);
            return { gx: gx.data };
          }, dtype === "float32" ? { rtol: 1e-5, atol: 1e-6 } : tol);
        }
      }
    }
  });

  test("binary ops with broadcasting and non-contiguous operands", () => {
    const cases: [number[], number[], number[]][] = [
      [[7, 1, 33], [1, 5, 1], [7, 5, 33]],
      [[33, 65], [1, 65], [33, 65]],
      [[33, 65], [33, 1], [33, 65]],
      [[4865], [4865], [4865]],
      [[1], [1], [1]],
      [[], [], []],
      [[3, 20000], [3, 20000], [3, 20000]],
    ];
    for (const dtype of FLOATS) {
      for (const op of BINARY) {
        // small integers make ties, so eq/le/ge/maximum see equal operands
        const fa = op === "pow" ? (x: number) => Math.abs(x) + 0.1 : (x: number) => Math.round(x * 2);
        const fb = op === "div" ? (x: number) => x + (x < 0 ? -0.5 : 0.5) : (x: number) => Math.round(x * 2);
        for (const [sa, sb, so] of cases) {
          check(`binary ${op} [${sa}] op [${sb}]`, dtype, 5, (be, g) => {
            const a = broadcast(dtype, sa, so, g, fa);
            const b = broadcast(dtype, sb, so, g, op === "pow" ? (x) => x * 2 : fb);
            const out = emptyOut(dtype, so);
            be.binary(op, a, b, out);
            return { out: out.data };
          }, dtype === "float32" ? { rtol: 2e-6, atol: 1e-6 } : undefined);
        }
        check(`binary ${op} transposed`, dtype, 6, (be, g) => {
          const a = layoutView(dtype, [33, 7], "transposed", g, fa);
          const b = layoutView(dtype, [33, 7], "stepped", g, fb);
          const out = layoutView(dtype, [33, 7], "offset", g);
          be.binary(op, a, b, out);
          return { out: out.data };
        }, dtype === "float32" ? { rtol: 2e-6, atol: 1e-6 } : undefined);
      }
      check("binary add in place (out aliases a)", dtype, 7, (be, g) => {
        const a = layoutView(dtype, [7, 33], "contiguous", g);
        const b = broadcast(dtype, [1, 33], [7, 33], g);
        be.binary("add", a, b, a);
        return { a: a.data };
      });
    }
  });

  test("where with float and int32 conditions, broadcast", () => {
    for (const dtype of FLOATS) {
      for (const cdt of ["int32", "float32", dtype] as DType[]) {
        check(`where cond ${cdt}`, dtype, 8, (be, g) => {
          const cond = broadcast(cdt, [7, 1, 33], [7, 5, 33], g, (x) => (x > 0 ? 1 : 0));
          const a = broadcast(dtype, [1, 5, 1], [7, 5, 33], g);
          const b = layoutView(dtype, [7, 5, 33], "stepped", g);
          const out = emptyOut(dtype, [7, 5, 33]);
          be.where(cond, a, b, out);
          return { out: out.data };
        }, { rtol: 0, atol: 0 });
      }
    }
  });

  test("reduce over the middle axis, all ops", () => {
    const ops: ReduceOp[] = ["sum", "mean", "max", "min", "argmax", "argmin"];
    // [1, 70001, 1]: one long row, split over the threads
    const shapes = [[3, 4865, 1], [5, 7, 33], [1, 33, 1], [2, 1, 7], [4, 130, 70], [1, 200, 700], [1, 70001, 1]];
    for (const dtype of FLOATS) {
      for (const op of ops) {
        for (const [outer, n, inner] of shapes) {
          check(`reduce ${op} [${outer}, ${n}, ${inner}]`, dtype, 9, (be, g) => {
            // rounded values create ties: argmax/argmin must return the first occurrence
            const x = randStorage(dtype, outer! * n! * inner!, g, (v) => Math.round(v * 8) / 4);
            const out = op.startsWith("arg") ? new Int32Array(outer! * inner!) : fromValues(dtype, new Array(outer! * inner!).fill(0));
            be.reduce(op, x, dtype, outer!, n!, inner!, out);
            return { out };
          }, dtype === "float32" ? { rtol: 1e-5, atol: 1e-5 } : undefined);
        }
      }
    }
  });

  test("argmax / argmin / max of one row: first of tied extremes in different lanes, NaN, all -Infinity", () => {
    const row = (n: number, set: Record<number, number>, fill = 0) => {
      const x = new Float32Array(n).fill(fill);
      for (const [i, v] of Object.entries(set)) x[Number(i)] = v;
      return x;
    };
    const cases: [string, Float32Array][] = [
      ["tie, the later index in a lower lane", row(100, { 20: 5, 35: 5 })],
      ["tie in one lane", row(100, { 3: 5, 67: 5 })],
      ["maximum in the tail", row(37, { 36: 1 })],
      ["NaN after the maximum", row(100, { 10: 9, 50: Number.NaN, 70: Number.NaN })],
      ["all -Infinity", row(45, {}, -Infinity)],
      ["shorter than a vector", row(5, { 1: -1, 4: -1 }, 2)],
      // long rows are split over the threads: the extreme in each half, ties and NaN across slices
      ["long row, tie across slices", row(150_001, { 70_000: 4, 140_000: 4 })],
      ["long row, the later slice larger", row(150_001, { 70_000: 4, 140_000: 5 })],
      ["long row, NaN in the later slice", row(150_001, { 70_000: 4, 140_000: Number.NaN })],
      ["long row, NaN in both", row(150_001, { 3: Number.NaN, 140_000: Number.NaN })],
      ["long row, all -Infinity", row(150_001, {}, -Infinity)],
    ];
    for (const [name, x] of cases) {
      for (const op of ["argmax", "argmin", "max"] as ReduceOp[]) {
        const outs = [native!, ref].map((be) => {
          const out = op === "max" ? new Float32Array(1) : new Int32Array(1);
          be.reduce(op, x, "float32", 1, x.length, 1, out);
          return out[0]!;
        });
        assert.ok(Object.is(outs[0], outs[1]), `${name} ${op}: native ${outs[0]}, reference ${outs[1]}`);
      }
    }
  });

  test("softmax and log-softmax forward and backward", () => {
    for (const dtype of FLOATS) {
      for (const log of [false, true]) {
        for (const [N, C] of [[3, 4865], [7, 1], [33, 7], [64, 1000]]) {
          check(`softmax log=${log} [${N}, ${C}]`, dtype, 10, (be, g) => {
            const x = randStorage(dtype, N! * C!, g, (v) => 4 * v);
            const y = fromValues(dtype, new Array(N! * C!).fill(0));
            be.softmax(x, y, dtype, N!, C!, log);
            const gy = randStorage(dtype, N! * C!, g);
            const gx = fromValues(dtype, new Array(N! * C!).fill(0));
            // backward from the reference's y, so both backends see the same saved output
            const ySaved = fromValues(dtype, new Array(N! * C!).fill(0));
            ref.softmax(x, ySaved, dtype, N!, C!, log);
            be.softmaxBackward(ySaved, gy, gx, dtype, N!, C!, log);
            return { y, gx };
          }, dtype === "float32" ? { rtol: 1e-5, atol: 1e-5 } : undefined);
        }
      }
    }
  });

  test("cross-entropy with ignore_index and label smoothing", () => {
    for (const dtype of FLOATS) {
      for (const smoothing of [0, 0.1]) {
        for (const [N, V] of [[9, 4865], [4, 1], [33, 7]]) {
          check(`crossEntropy eps=${smoothing} [${N}, ${V}]`, dtype, 11, (be, g) => {
            const logits = randStorage(dtype, N! * V!, g, (v) => 3 * v);
            const targets = Int32Array.from({ length: N! }, (_, i) => (i % 3 === 1 ? -100 : g.randint(V!)));
            const loss = new Float32Array(N!);
            const lse = new Float32Array(N!);
            be.crossEntropy(logits, dtype, targets, N!, V!, -100, smoothing, loss, lse);
            const gLoss = Float32Array.from({ length: N! }, () => g.random() + 0.5);
            const gLogits = fromValues(dtype, new Array(N! * V!).fill(7));
            be.crossEntropyBackward(logits, dtype, targets, lse, gLoss, N!, V!, -100, smoothing, gLogits);
            return { loss, lse, gLogits };
          }, (k) => (k === "gLogits" ? tolFor(dtype) : { rtol: 1e-5, atol: 1e-5 }));
        }
      }
    }
  });

  test("RMSNorm and LayerNorm forward and backward (gw/gb accumulate)", () => {
    for (const dtype of FLOATS) {
      for (const withW of [true, false]) {
        for (const [N, C] of [[33, 65], [2048, 64], [1, 7], [3, 4865]]) {
          // gw/gb sum N rows: float32 accumulation error grows with N
          const tol = dtype === "float32" ? { rtol: 2e-5, atol: N! > 1000 ? 1e-4 : 2e-5 } : tolFor(dtype, 2);
          check(`rmsnorm w=${withW} [${N}, ${C}]`, dtype, 12, (be, g) => {
            const x = randStorage(dtype, N! * C!, g);
            const w = withW ? randStorage(dtype, C!, g) : null;
            const y = fromValues(dtype, new Array(N! * C!).fill(0));
            const rstd = new Float32Array(N!);
            be.rmsnorm(x, w, y, rstd, dtype, N!, C!, 1e-6);
            const gy = randStorage(dtype, N! * C!, g);
            const gx = fromValues(dtype, new Array(N! * C!).fill(0));
            const gw = withW ? randStorage(dtype, C!, g) : null;
            be.rmsnormBackward(x, w, rstd, gy, gx, gw, dtype, N!, C!);
            return gw ? { y, rstd, gx, gw } : ({ y, rstd, gx } as Outputs);
          }, tol);
          check(`layernorm w=${withW} [${N}, ${C}]`, dtype, 13, (be, g) => {
            const x = randStorage(dtype, N! * C!, g, (v) => v + 1);
            const w = withW ? randStorage(dtype, C!, g) : null;
            const b = withW ? randStorage(dtype, C!, g) : null;
            const y = fromValues(dtype, new Array(N! * C!).fill(0));
            const mean = new Float32Array(N!);
            const rstd = new Float32Array(N!);
            be.layernorm(x, w, b, y, mean, rstd, dtype, N!, C!, 1e-5);
            const gy = randStorage(dtype, N! * C!, g);
            const gx = fromValues(dtype, new Array(N! * C!).fill(0));
            const gw = withW ? randStorage(dtype, C!, g) : null;
            const gb = withW ? randStorage(dtype, C!, g) : null;
            be.layernormBackward(x, w, mean, rstd, gy, gx, gw, gb, dtype, N!, C!);
            return gw && gb ? { y, mean, rstd, gx, gw, gb } : ({ y, mean, rstd, gx } as Outputs);
          }, tol);
        }
      }
    }
  });

  test("RoPE half / interleaved, partial rotary dims, inverse, in place", () => {
    for (const dtype of FLOATS) {
      for (const style of ["half", "interleaved"] as const) {
        for (const [D, rotaryDim] of [[64, 64], [33, 16], [8, 2]]) {
          for (const inverse of [false, true]) {
            for (const inPlace of [false, true]) {
              check(`rope ${style} D=${D} rd=${rotaryDim} inverse=${inverse} inPlace=${inPlace}`, dtype, 14, (be, g) => {
                const B = 2, T = 7, H = 3;
                const x = randStorage(dtype, B * T * H * D!, g);
                const positions = Int32Array.from({ length: B * T }, () => g.randint(4096));
                const out = inPlace ? x : fromValues(dtype, new Array(B * T * H * D!).fill(0));
                be.rope(x, out, dtype, positions, { B, T, H, D: D!, rotaryDim: rotaryDim!, theta: 1e6, style, inverse });
                return { out };
              }, dtype === "float32" ? { rtol: 1e-5, atol: 1e-5 } : undefined);
            }
          }
        }
      }
    }
  });

  test("embedding gather and scatter-add backward with repeated ids", () => {
    for (const dtype of FLOATS) {
      for (const [N, V, C] of [[33, 7, 65], [4865, 100, 16], [1, 1, 1]]) {
        check(`embedding [${N}, ${V}, ${C}]`, dtype, 15, (be, g) => {
          const weight = randStorage(dtype, V! * C!, g);
          const ids = Int32Array.from({ length: N! }, () => g.randint(V!));
          const out = fromValues(dtype, new Array(N! * C!).fill(0));
          be.embedding(weight, ids, out, dtype, N!, V!, C!);
          const gOut = randStorage(dtype, N! * C!, g);
          const gWeight = randStorage(dtype, V! * C!, g);
          be.embeddingBackward(gOut, ids, gWeight, dtype, N!, V!, C!);
          return { out, gWeight };
        }, dtype === "float32" ? { rtol: 1e-5, atol: 1e-5 } : tolFor(dtype, 3));
      }
    }
  });

  test("attention forward and backward: GQA, causal with T != S, key mask", () => {
    const configs = [
      { B: 2, Hq: 4, Hkv: 2, T: 7, S: 7, D: 33, causal: true, mask: false },
      { B: 1, Hq: 3, Hkv: 1, T: 5, S: 9, D: 7, causal: true, mask: true },
      { B: 2, Hq: 2, Hkv: 2, T: 9, S: 5, D: 64, causal: true, mask: false }, // first rows see no key
      { B: 2, Hq: 4, Hkv: 1, T: 6, S: 11, D: 16, causal: false, mask: true }, // batch 1 fully masked
      { B: 1, Hq: 2, Hkv: 1, T: 150, S: 150, D: 64, causal: true, mask: false }, // several key blocks
      { B: 1, Hq: 2, Hkv: 1, T: 70, S: 70, D: 128, causal: true, mask: true }, // head rows wider than 4 vectors
      { B: 1, Hq: 1, Hkv: 1, T: 1, S: 1, D: 1, causal: false, mask: false },
    ];
    for (const dtype of FLOATS) {
      for (const c of configs) {
        const { B, Hq, Hkv, T, S, D, causal } = c;
        check(`attention ${JSON.stringify(c)}`, dtype, 16, (be, g) => {
          const q = randStorage(dtype, B * Hq * T * D, g);
          const k = randStorage(dtype, B * Hkv * S * D, g);
          const v = randStorage(dtype, B * Hkv * S * D, g);
          const keyMask = c.mask ? Uint8Array.from({ length: B * S }, (_, i) => (i >= S ? 0 : g.random() < 0.7 ? 1 : 0)) : null;
          const args = { B, Hq, Hkv, T, S, D, scale: 1 / Math.sqrt(D), causal, keyMask };
          const out = fromValues(dtype, new Array(B * Hq * T * D).fill(0));
          const lse = new Float32Array(B * Hq * T);
          be.attention(q, k, v, out, lse, dtype, args);
          // backward from the reference's saved out/lse so both backends see the same inputs
          const outR = fromValues(dtype, new Array(B * Hq * T * D).fill(0));
          const lseR = new Float32Array(B * Hq * T);
          ref.attention(q, k, v, outR, lseR, dtype, args);
          const gOut = randStorage(dtype, B * Hq * T * D, g);
          const gq = fromValues(dtype, new Array(B * Hq * T * D).fill(5));
          const gk = fromValues(dtype, new Array(B * Hkv * S * D).fill(5));
          const gv = fromValues(dtype, new Array(B * Hkv * S * D).fill(5));
          be.attentionBackward(q, k, v, outR, lseR, gOut, gq, gk, gv, dtype, args);
          return { out, lse, gq, gk, gv };
        }, dtype === "float32" ? { rtol: 1e-4, atol: 1e-5 } : tolFor(dtype, 2));
      }
    }
  });

  test("AdamW step", () => {
    for (const n of [1, 33, 100000]) {
      check(`adamw n=${n}`, "float32", 17, (be, g) => {
        const p = randStorage("float32", n, g) as Float32Array;
        const grad = randStorage("float32", n, g) as Float32Array;
        const m = randStorage("float32", n, g, (x) => 0.1 * x) as Float32Array;
        const v = randStorage("float32", n, g, (x) => 0.01 * x * x) as Float32Array;
        for (let step = 1; step <= 3; step++) be.adamw(p, grad, m, v, n, { lr: 1e-2, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0.1, step });
        return { p, m, v };
      }, { rtol: 1e-5, atol: 1e-6 });
    }
  });
});

describe("native backend argument checks", { skip }, () => {
  test("an out-of-range embedding id is named", () => {
    const w = new Float32Array(4 * 3);
    const out = new Float32Array(2 * 3);
    assert.throws(() => native!.embedding(w, Int32Array.from([1, 4]), out, "float32", 2, 4, 3), /embedding: id 4 at position 1/);
    assert.throws(() => native!.embeddingBackward(out, Int32Array.from([-1, 0]), w, "float32", 2, 4, 3), /embeddingBackward: id -1/);
  });

  test("too-short arrays are rejected naming the op and the sizes", () => {
    assert.throws(() => native!.softmax(new Float32Array(10), new Float32Array(12), "float32", 3, 4, false), /softmax: x has 10 elements, needs 12/);
    assert.throws(
      () => native!.attention(new Float32Array(8), new Float32Array(8), new Float32Array(7), new Float32Array(8), new Float32Array(2), "float32", { B: 1, Hq: 1, Hkv: 1, T: 2, S: 2, D: 4, scale: 1, causal: true }),
      /attention: v has 7 elements, needs 8/,
    );
    const x = makeView(new Float32Array(10), "float32", [3, 4]);
    assert.throws(() => native!.unary("exp", x, makeView(new Float32Array(12), "float32", [3, 4])), /unary: x view .* array of 10/);
    assert.throws(() => native!.rmsnorm(new Float32Array(12), new Float32Array(3), new Float32Array(12), new Float32Array(3), "float32", 3, 4, 1e-6), /rmsnorm: w has 3 elements, needs 4/);
    assert.throws(
      () => native!.crossEntropy(new Float32Array(12), "float32", Int32Array.from([0, 9, 1]), 3, 4, -100, 0, new Float32Array(3), new Float32Array(3)),
      /crossEntropy: target 9 at row 1/,
    );
  });

  test("other dtypes are delegated to the reference backend", () => {
    const x = makeView(Float64Array.from([1, 2, 3]), "float64", [3]);
    const out = makeView(new Float64Array(3), "float64", [3]);
    native!.unary("square", x, out);
    assert.deepEqual(Array.from(out.data as Float64Array), [1, 4, 9]);
    const s = new BigInt64Array(1);
    native!.reduce("sum", BigInt64Array.from([1n, 2n, 3n]), "int64", 1, 3, 1, s);
    assert.equal(s[0], 6n);
  });
});
