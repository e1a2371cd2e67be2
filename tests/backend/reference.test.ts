/**
 * The reference backend against hand-computed values and independent formulas, plus float64
 * finite-difference checks of every backward kernel in the Backend interface.
 */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { type DType, type Storage, bf16ToF32, f32ToBf16 } from "../../src/core/dtype.ts";
import { GraftError, ShapeError, DTypeError } from "../../src/core/errors.ts";
import type { AttentionArgs, GemmArgs, RopeArgs, UnaryOp, View } from "../../src/backend/Backend.ts";
import { ReferenceBackend } from "../../src/backend/reference/ReferenceBackend.ts";
import { erf, erfc } from "../../src/backend/reference/math.ts";

const be = new ReferenceBackend();

// ---- helpers -----------------------------------------------------------------------------------

/** Deterministic uniform [-1, 1) numbers (mulberry32). */
function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 2147483648 - 1;
  };
}

function randArray(n: number, seed: number, scale = 1): Float64Array {
  const r = rng(seed);
  return Float64Array.from({ length: n }, () => r() * scale);
}

function contiguous(shape: number[]): number[] {
  const s = new Array<number>(shape.length);
  let acc = 1;
  for (let i = shape.length - 1; i >= 0; i--) {
    s[i] = acc;
    acc *= shape[i]!;
  }
  return s;
}

function dtypeOf(data: Storage): DType {
  if (data instanceof Float64Array) return "float64";
  if (data instanceof Float32Array) return "float32";
  if (data instanceof Uint16Array) return "bfloat16";
  if (data instanceof Int32Array) return "int32";
  return "int64";
}

function view(data: Storage, shape: number[], strides = contiguous(shape), offset = 0): View {
  return { data, dtype: dtypeOf(data), shape, strides, offset };
}

function close(actual: ArrayLike<number>, expected: ArrayLike<number>, tol = 1e-12, what = ""): void {
  assert.equal(actual.length, expected.length, `${what} length`);
  for (let i = 0; i < expected.length; i++) {
    const a = actual[i]!;
    const e = expected[i]!;
    if (Number.isNaN(e)) assert.ok(Number.isNaN(a), `${what} element ${i}: ${a} vs NaN`);
    else if (!(Math.abs(a - e) <= tol * Math.max(1, Math.abs(e)))) assert.fail(`${what} element ${i}: ${a} vs ${e}`);
  }
}

/**
 * Central finite differences of L = sum(R * forward()) with respect to each input array, compared
 * with the analytic gradients (computed by the caller with gy = R).
 */
function fdCheck(name: string, inputs: Float64Array[], forward: () => ArrayLike<number>, R: ArrayLike<number>, analytic: ArrayLike<number>[], h = 1e-6, tol = 1e-7): void {
  const loss = (): number => {
    const y = forward();
    let s = 0;
    for (let i = 0; i < y.length; i++) s += R[i]! * y[i]!;
    return s;
  };
  inputs.forEach((x, k) => {
    for (let i = 0; i < x.length; i++) {
      const orig = x[i]!;
      x[i] = orig + h;
      const up = loss();
      x[i] = orig - h;
      const down = loss();
      x[i] = orig;
      const numeric = (up - down) / (2 * h);
      const a = analytic[k]![i]!;
      if (!(Math.abs(a - numeric) <= tol + 1e-6 * Math.abs(numeric))) {
        assert.fail(`${name}: input ${k} element ${i}: analytic ${a} vs finite difference ${numeric}`);
      }
    }
  });
}

const ALL_UNARY: UnaryOp[] = ["neg", "exp", "log", "sqrt", "rsqrt", "tanh", "sigmoid", "silu", "gelu", "gelu_erf", "relu", "abs", "sin", "cos", "square", "reciprocal"];

// ---- copy / fill / elementwise -----------------------------------------------------------------

describe("reference: copy and fill over strided views", () => {
  test("transposed, broadcast, offset, 0-d and 7-d copies", () => {
    const src = Float64Array.from([1, 2, 3, 4, 5, 6]); // [2, 3]
    const dst = new Float64Array(6);
    be.copy(view(src, [3, 2], [1, 3]), view(dst, [3, 2]));
    assert.deepEqual([...dst], [1, 4, 2, 5, 3, 6]);
    // Broadcast a row (stride 0 on dim 0) starting at offset 3.
    be.copy(view(src, [2, 3], [0, 1], 3), view(dst, [2, 3]));
    assert.deepEqual([...dst], [4, 5, 6, 4, 5, 6]);
    // Negative stride (reversed), 0-d.
    be.copy(view(src, [6], [-1], 5), view(dst, [6]));
    assert.deepEqual([...dst], [6, 5, 4, 3, 2, 1]);
    const one = new Float64Array(1);
    be.copy(view(src, [], [], 4), view(one, []));
    assert.equal(one[0], 5);
    // 7-d with a permutation.
    const shape = [2, 1, 2, 1, 2, 1, 2];
    const big = Float64Array.from({ length: 16 }, (_, i) => i);
    const out = new Float64Array(16);
    const perm = contiguous(shape).reverse(); // strides of the reversed-axes view of a contiguous tensor
    be.copy(view(big, shape, perm), view(out, shape));
    const expected: number[] = [];
    for (let a = 0; a < 2; a++) for (let c = 0; c < 2; c++) for (let e = 0; e < 2; e++) for (let g = 0; g < 2; g++) expected.push(a + 2 * c + 4 * e + 8 * g);
    assert.deepEqual([...out], expected);
  });

  test("casts: bf16 round to nearest even, int truncation, exact int64", () => {
    const bf = new Uint16Array(3);
    be.copy(view(Float64Array.from([1.2345678, 1 + 2 ** -8, 1 + 3 * 2 ** -8]), [3]), view(bf, [3]));
    assert.deepEqual([...bf].map(bf16ToF32), [1.234375, 1, 1 + 4 * 2 ** -8]);
    const i32 = new Int32Array(4);
    be.copy(view(Float32Array.from([1.9, -1.9, 0.5, -0]), [4]), view(i32, [4]));
    assert.deepEqual([...i32], [1, -1, 0, 0]);
    const big = BigInt64Array.from([2n ** 60n + 1n, -7n]);
    const big2 = new BigInt64Array(2);
    be.copy(view(big, [2]), view(big2, [2]));
    assert.deepEqual([...big2], [2n ** 60n + 1n, -7n]);
    const f = new Float64Array(2);
    be.copy(view(big, [2]), view(f, [2]));
    assert.deepEqual([...f], [2 ** 60, -7]);
  });

  test("fill writes only the view", () => {
    const d = new Float32Array(6);
    be.fill(view(d, [3], [2], 0), 7);
    assert.deepEqual([...d], [7, 0, 7, 0, 7, 0]);
    const b = new Uint16Array(2);
    be.fill(view(b, [2]), 0.1);
    assert.equal(bf16ToF32(b[0]!), bf16ToF32(f32ToBf16(0.1)));
    const l = new BigInt64Array(2);
    be.fill(view(l, [2]), -3);
    assert.deepEqual([...l], [-3n, -3n]);
  });
});

describe("reference: unary", () => {
  test("erf and erfc match high-precision values", () => {
    close([erf(0.5), erf(1), erf(2), erf(-0.1), erf(3.5)], [0.5204998778130465, 0.8427007929497149, 0.9953222650189527, -0.1124629160182849, 0.9999992569016276], 1e-15);
    close([erfc(3) / 2.209049699858544e-5, erfc(5) / 1.5374597944280349e-12, erfc(-1) / 1.8427007929497148], [1, 1, 1], 1e-12);
  });

  test("values of every op", () => {
    const xs = [-2, -0.5, 0.25, 1, 3];
    const x = Float64Array.from(xs);
    const y = new Float64Array(xs.length);
    const sig = (v: number) => 1 / (1 + Math.exp(-v));
    const expected: Record<UnaryOp, (v: number) => number> = {
      neg: (v) => -v,
      exp: Math.exp,
      log: Math.log,
      sqrt: Math.sqrt,
      rsqrt: (v) => 1 / Math.sqrt(v),
      tanh: Math.tanh,
      sigmoid: sig,
      silu: (v) => v * sig(v),
      gelu: (v) => 0.5 * v * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (v + 0.044715 * v ** 3))),
      gelu_erf: (v) => 0.5 * v * (1 + erf(v / Math.SQRT2)),
      relu: (v) => Math.max(v, 0),
      abs: Math.abs,
      sin: Math.sin,
      cos: Math.cos,
      square: (v) => v * v,
      reciprocal: (v) => 1 / v,
    };
    for (const op of ALL_UNARY) {
      be.unary(op, view(x, [5]), view(y, [5]));
      close(y, xs.map(expected[op]), 1e-14, op);
    }
    // Known GELU values (tanh approximation and exact).
    be.unary("gelu", view(Float64Array.from([1]), [1]), view(y, [1]));
    close([y[0]!], [0.8411919906082768], 1e-14);
    be.unary("gelu_erf", view(Float64Array.from([1]), [1]), view(y, [1]));
    close([y[0]!], [0.8413447460685429], 1e-14);
  });

  test("float32 and bfloat16 outputs are rounded, strided inputs", () => {
    const x = Float32Array.from([0, 9, 1, 9, 2, 9]);
    const y32 = new Float32Array(3);
    be.unary("exp", view(x, [3], [2]), view(y32, [3]));
    close(y32, [1, Math.fround(Math.E), Math.fround(Math.exp(2))], 0);
    const ybf = new Uint16Array(3);
    be.unary("exp", view(x, [3], [2]), view(ybf, [3]));
    assert.deepEqual([...ybf], [1, Math.E, Math.exp(2)].map(f32ToBf16));
  });

  test("unaryBackward of every op matches finite differences (float64)", () => {
    const positive = new Set<UnaryOp>(["log", "sqrt", "rsqrt", "reciprocal"]);
    for (const op of ALL_UNARY) {
      const x = randArray(7, 3, 2);
      if (positive.has(op)) for (let i = 0; i < x.length; i++) x[i] = 0.3 + Math.abs(x[i]!);
      const R = randArray(7, 4);
      const gx = new Float64Array(7);
      be.unaryBackward(op, view(x, [7]), view(R, [7]), view(gx, [7]));
      const y = new Float64Array(7);
      fdCheck(op, [x], () => (be.unary(op, view(x, [7]), view(y, [7])), y), R, [gx]);
    }
    // relu and abs at 0: gradient 0.
    const gx = new Float64Array(1);
    be.unaryBackward("relu", view(new Float64Array(1), [1]), view(Float64Array.of(1), [1]), view(gx, [1]));
    assert.equal(gx[0], 0);
    be.unaryBackward("abs", view(new Float64Array(1), [1]), view(Float64Array.of(1), [1]), view(gx, [1]));
    assert.equal(gx[0], 0);
    be.unaryBackward("abs", view(Float64Array.of(-2), [1]), view(Float64Array.of(3), [1]), view(gx, [1]));
    assert.equal(gx[0], -3);
  });
});

describe("reference: binary and where", () => {
  test("broadcasting with stride 0 and all ops", () => {
    const a = Float64Array.from([1, -2, 3, 4, 5, -6]); // [2, 3]
    const b = Float64Array.from([10, 20, 30]); // broadcast over rows
    const out = new Float64Array(6);
    be.binary("add", view(a, [2, 3]), view(b, [2, 3], [0, 1]), view(out, [2, 3]));
    assert.deepEqual([...out], [11, 18, 33, 14, 25, 24]);
    const x = Float64Array.from([1, 2, 3, NaN]);
    const y = Float64Array.from([2, 2, 1, 0]);
    const o = new Float64Array(4);
    const cases: [Parameters<typeof be.binary>[0], number[]][] = [
      ["sub", [-1, 0, 2, NaN]],
      ["mul", [2, 4, 3, NaN]],
      ["div", [0.5, 1, 3, NaN]],
      ["pow", [1, 4, 3, 1]], // NaN ** 0 = 1 as in torch
      ["maximum", [2, 2, 3, NaN]],
      ["minimum", [1, 2, 1, NaN]],
      ["eq", [0, 1, 0, 0]],
      ["ne", [1, 0, 1, 1]],
      ["lt", [1, 0, 0, 0]],
      ["le", [1, 1, 0, 0]],
      ["gt", [0, 0, 1, 0]],
      ["ge", [0, 1, 1, 0]],
    ];
    for (const [op, want] of cases) {
      be.binary(op, view(x, [4]), view(y, [4]), view(o, [4]));
      close(o, want, 0, op);
    }
  });

  test("in place (out aliases a), integer dtypes", () => {
    const a = Float32Array.from([1, 2, 3]);
    be.binary("mul", view(a, [3]), view(Float32Array.of(2), [3], [0]), view(a, [3]));
    assert.deepEqual([...a], [2, 4, 6]);
    const i = Int32Array.from([0x40000000, 7]);
    const io = new Int32Array(2);
    be.binary("mul", view(i, [2]), view(Int32Array.from([4, -3]), [2]), view(io, [2]));
    assert.deepEqual([...io], [0, -21]); // wraps like C
    const l = BigInt64Array.from([2n ** 60n, 5n]);
    const lo = new BigInt64Array(2);
    be.binary("add", view(l, [2]), view(BigInt64Array.from([1n, -9n]), [2]), view(lo, [2]));
    assert.deepEqual([...lo], [2n ** 60n + 1n, -4n]);
    be.binary("gt", view(l, [2]), view(BigInt64Array.from([1n, 9n]), [2]), view(lo, [2]));
    assert.deepEqual([...lo], [1n, 0n]);
  });

  test("where broadcasts cond, a and b", () => {
    const cond = Float32Array.from([1, 0, 2]);
    const a = Float64Array.from([1, 2, 3, 4, 5, 6]);
    const out = new Float64Array(6);
    be.where(view(cond, [2, 3], [0, 1]), view(a, [2, 3]), view(Float64Array.of(-1), [2, 3], [0, 0]), view(out, [2, 3]));
    assert.deepEqual([...out], [1, -1, 3, 4, -1, 6]);
  });

  test("shape and storage errors name the op", () => {
    assert.throws(() => be.binary("add", view(new Float64Array(2), [3]), view(new Float64Array(3), [3]), view(new Float64Array(3), [3])), (e: unknown) => e instanceof ShapeError && /binary\(add\): a of shape \[3\].*storage of 2/.test(e.message));
    assert.throws(() => be.copy(view(new Float64Array(3), [3]), view(new Float64Array(4), [4])), /copy: dst has shape \[4\], expected \[3\]/);
    assert.throws(() => be.unary("exp", view(new Float64Array(3), [3]), view(new Int32Array(3), [3])), DTypeError);
    assert.throws(() => be.fill({ data: new Float32Array(2), dtype: "float64", shape: [2], strides: [1], offset: 0 }, 1), /fill: dst is a Float32Array but dtype float64/);
  });
});

// ---- reductions --------------------------------------------------------------------------------

describe("reference: reduce", () => {
  // x [outer=2, n=3, inner=2]
  const x = Float64Array.from([1, 6, 3, 6, 2, 0, -1, 4, 5, 4, 5, -2]);
  const run = (op: Parameters<typeof be.reduce>[0], out: Storage = new Float64Array(4)) => {
    be.reduce(op, x, "float64", 2, 3, 2, out);
    return [...(out as Float64Array)];
  };
  test("sum, mean, max, min, argmax/argmin with first occurrence", () => {
    assert.deepEqual(run("sum"), [6, 12, 9, 6]);
    assert.deepEqual(run("mean"), [2, 4, 3, 2]);
    assert.deepEqual(run("max"), [3, 6, 5, 4]);
    assert.deepEqual(run("min"), [1, 0, -1, -2]);
    assert.deepEqual(run("argmax", new Int32Array(4)), [1, 0, 1, 0]);
    assert.deepEqual(run("argmin", new Int32Array(4)), [0, 2, 0, 2]);
  });
  test("NaN propagates through max and wins argmax; bf16 and ints", () => {
    const y = Float32Array.from([1, NaN, 3]);
    const o = new Float32Array(1);
    be.reduce("max", y, "float32", 1, 3, 1, o);
    assert.ok(Number.isNaN(o[0]!));
    const ai = new Int32Array(1);
    be.reduce("argmax", y, "float32", 1, 3, 1, ai);
    assert.equal(ai[0], 1);
    const bf = Uint16Array.from([1, 2, 3].map(f32ToBf16));
    const bo = new Uint16Array(1);
    be.reduce("mean", bf, "bfloat16", 1, 3, 1, bo);
    assert.equal(bf16ToF32(bo[0]!), 2);
    const big = BigInt64Array.from([2n ** 60n, 1n, 3n]);
    const so = new BigInt64Array(1);
    be.reduce("sum", big, "int64", 1, 3, 1, so);
    assert.equal(so[0], 2n ** 60n + 4n);
    const io = new Int32Array(1);
    be.reduce("max", Int32Array.from([-5, 7, 2]), "int32", 1, 3, 1, io);
    assert.equal(io[0], 7);
  });
  test("errors", () => {
    assert.throws(() => be.reduce("sum", new Float32Array(5), "float32", 2, 3, 1, new Float32Array(2)), /reduce\(sum\): x has 5 elements but \[outer=2, n=3, inner=1\] needs 6/);
    assert.throws(() => be.reduce("argmax", new Float32Array(6), "float32", 2, 3, 1, new Float32Array(2)), /Int32Array/);
  });
});

// ---- gemm --------------------------------------------------------------------------------------

function gemmArgs(over: Partial<GemmArgs> & { m: number; n: number; k: number }): GemmArgs {
  return {
    batch: 1,
    transA: false,
    transB: false,
    lda: over.transA ? over.m : over.k,
    ldb: over.transB ? over.k : over.n,
    ldc: over.n,
    offsetA: 0,
    offsetB: 0,
    offsetC: 0,
    strideA: over.m * over.k,
    strideB: over.k * over.n,
    strideC: over.m * over.n,
    alpha: 1,
    beta: 0,
    ...over,
  };
}

/** Naive C[i, j] = sum_p A[i, p] B[p, j] on dense row-major [m, k] and [k, n]. */
function naiveMatmul(A: ArrayLike<number>, B: ArrayLike<number>, m: number, n: number, k: number): number[] {
  const C: number[] = [];
  for (let i = 0; i < m; i++) for (let j = 0; j < n; j++) {
    let s = 0;
    for (let p = 0; p < k; p++) s += A[i * k + p]! * B[p * n + j]!;
    C.push(s);
  }
  return C;
}

function transpose(A: ArrayLike<number>, r: number, c: number): Float64Array {
  const T = new Float64Array(r * c);
  for (let i = 0; i < r; i++) for (let j = 0; j < c; j++) T[j * r + i] = A[i * c + j]!;
  return T;
}

describe("reference: gemm", () => {
  test("2x3 @ 3x2 by hand", () => {
    const a = Float32Array.from([1, 2, 3, 4, 5, 6]);
    const b = Float32Array.from([7, 8, 9, 10, 11, 12]);
    const c = new Float32Array(4);
    be.gemm(a, b, c, "float32", "float32", gemmArgs({ m: 2, n: 2, k: 3 }));
    assert.deepEqual([...c], [58, 64, 139, 154]);
  });

  test("transposes, lds, offsets, batch stride 0, alpha and beta", () => {
    const m = 3, n = 4, k = 5, batch = 2;
    const A = [randArray(m * k, 1), randArray(m * k, 2)];
    const B = randArray(k * n, 3); // shared by both batches (stride 0)
    const want = A.map((a) => naiveMatmul(a, B, m, n, k));
    for (const transA of [false, true]) {
      for (const transB of [false, true]) {
        // Store A (or A^T) with row stride ld = cols + 2, batch matrices 40 apart, starting at offset 3.
        const aRows = transA ? k : m, aCols = transA ? m : k, lda = aCols + 2;
        const aBuf = new Float64Array(3 + 40 * batch);
        A.forEach((a, bi) => {
          const src = transA ? transpose(a, m, k) : a;
          for (let r = 0; r < aRows; r++) for (let cc = 0; cc < aCols; cc++) aBuf[3 + bi * 40 + r * lda + cc] = src[r * aCols + cc]!;
        });
        const bRows = transB ? n : k, bCols = transB ? k : n, ldb = bCols + 1;
        const bSrc = transB ? transpose(B, k, n) : B;
        const bBuf = new Float64Array(1 + bRows * ldb);
        for (let r = 0; r < bRows; r++) for (let cc = 0; cc < bCols; cc++) bBuf[1 + r * ldb + cc] = bSrc[r * bCols + cc]!;
        const c = new Float64Array(2 + batch * 20).fill(1);
        be.gemm(aBuf, bBuf, c, "float64", "float64", gemmArgs({ batch, m, n, k, transA, transB, lda, ldb, ldc: n, offsetA: 3, offsetB: 1, offsetC: 2, strideA: 40, strideB: 0, strideC: 20, alpha: 2, beta: 0.5 }));
        for (let bi = 0; bi < batch; bi++) {
          const got = [...c.subarray(2 + bi * 20, 2 + bi * 20 + m * n)];
          close(got, want[bi]!.map((v) => 2 * v + 0.5), 1e-13, `transA=${transA} transB=${transB} batch ${bi}`);
        }
      }
    }
  });

  test("beta = 0 ignores NaN in C; bf16 operands and output", () => {
    const c = Float32Array.from([NaN, NaN]);
    be.gemm(Float32Array.from([1, 2]), Float32Array.from([3, 4, 5, 6]), c, "float32", "float32", gemmArgs({ m: 1, n: 2, k: 2 }));
    assert.deepEqual([...c], [13, 16]);
    const abf = Uint16Array.from([1.5, 2].map(f32ToBf16));
    const bbf = Uint16Array.from([3, 4, 5, 6].map(f32ToBf16));
    const cbf = new Uint16Array(2);
    be.gemm(abf, bbf, cbf, "bfloat16", "bfloat16", gemmArgs({ m: 1, n: 2, k: 2 }));
    assert.deepEqual([...cbf].map(bf16ToF32), [14.5, 18]);
    const c32 = new Float32Array(2);
    be.gemm(abf, bbf, c32, "bfloat16", "float32", gemmArgs({ m: 1, n: 2, k: 2 }));
    assert.deepEqual([...c32], [14.5, 18]);
  });

  test("too-small storage and bad dtypes throw naming gemm", () => {
    assert.throws(() => be.gemm(new Float32Array(5), new Float32Array(6), new Float32Array(4), "float32", "float32", gemmArgs({ m: 2, n: 2, k: 3 })), /gemm: a .* reaches elements 0\.\.5 of a storage of 5/);
    assert.throws(() => be.gemm(new Int32Array(6), new Int32Array(6), new Float32Array(4), "int32", "float32", gemmArgs({ m: 2, n: 2, k: 3 })), DTypeError);
  });
});

// ---- softmax / cross-entropy -------------------------------------------------------------------

describe("reference: softmax and cross-entropy", () => {
  test("softmax and log-softmax of [1, 2, 3], stable for large inputs", () => {
    const y = new Float64Array(3);
    be.softmax(Float64Array.from([1, 2, 3]), y, "float64", 1, 3, false);
    close(y, [0.09003057317038046, 0.24472847105479764, 0.6652409557748219], 1e-15);
    be.softmax(Float64Array.from([1, 2, 3]), y, "float64", 1, 3, true);
    close(y, [-2.4076059644443806, -1.4076059644443806, -0.4076059644443806], 1e-15);
    be.softmax(Float64Array.from([1000, 1001, 1002]), y, "float64", 1, 3, false);
    close(y, [0.09003057317038046, 0.24472847105479764, 0.6652409557748219], 1e-15);
  });

  test("softmaxBackward matches finite differences (softmax and log-softmax)", () => {
    for (const log of [false, true]) {
      const N = 3, C = 5;
      const x = randArray(N * C, 7, 2);
      const R = randArray(N * C, 8);
      const y = new Float64Array(N * C);
      be.softmax(x, y, "float64", N, C, log);
      const gx = new Float64Array(N * C);
      be.softmaxBackward(y, R, gx, "float64", N, C, log);
      fdCheck(`softmax log=${log}`, [x], () => (be.softmax(x, y, "float64", N, C, log), y), R, [gx]);
    }
  });

  test("cross-entropy = -log softmax at the target, smoothing and ignore_index", () => {
    const N = 3, V = 4;
    const x = randArray(N * V, 11, 3);
    const t = Int32Array.from([2, -100, 0]);
    const loss = new Float64Array(N);
    const lse = new Float64Array(N);
    be.crossEntropy(x, "float64", t, N, V, -100, 0, loss, lse);
    const ls = new Float64Array(N * V);
    be.softmax(x, ls, "float64", N, V, true);
    close(loss, [-ls[2]!, 0, -ls[8]!], 1e-14);
    for (let r = 0; r < N; r++) close([lse[r]!], [x[r * V]! - ls[r * V]!], 1e-14);
    const eps = 0.1;
    be.crossEntropy(x, "float64", t, N, V, -100, eps, loss, lse);
    const smoothed = (r: number, tgt: number) => {
      let mean = 0;
      for (let j = 0; j < V; j++) mean -= ls[r * V + j]! / V;
      return (1 - eps) * -ls[r * V + tgt]! + eps * mean;
    };
    close(loss, [smoothed(0, 2), 0, smoothed(2, 0)], 1e-14);
    // float32 loss/lse as the interface declares.
    const l32 = new Float32Array(N), s32 = new Float32Array(N);
    be.crossEntropy(Float32Array.from(x), "float32", t, N, V, -100, 0, l32, s32);
    close(l32, [-ls[2]!, 0, -ls[8]!], 1e-6);
    assert.throws(() => be.crossEntropy(x, "float64", Int32Array.from([2, 4, 0]), N, V, -100, 0, loss, lse), /crossEntropy: target 4 at row 1 is out of range for V=4/);
  });

  test("crossEntropyBackward matches finite differences (incl. smoothing, ignore_index)", () => {
    const N = 4, V = 5;
    const t = Int32Array.from([1, 3, -1, 0]);
    for (const eps of [0, 0.2]) {
      const x = randArray(N * V, 21, 2);
      const R = randArray(N, 22);
      const loss = new Float64Array(N), lse = new Float64Array(N);
      be.crossEntropy(x, "float64", t, N, V, -1, eps, loss, lse);
      const gx = new Float64Array(N * V).fill(NaN);
      be.crossEntropyBackward(x, "float64", t, lse, R, N, V, -1, eps, gx);
      assert.ok(gx.subarray(2 * V, 3 * V).every((v) => v === 0), "ignored row has zero gradient");
      fdCheck(`crossEntropy eps=${eps}`, [x], () => (be.crossEntropy(x, "float64", t, N, V, -1, eps, loss, lse), loss), R, [gx]);
    }
  });
});

// ---- norms -------------------------------------------------------------------------------------

describe("reference: rmsnorm and layernorm", () => {
  test("known vectors", () => {
    const x = Float64Array.from([1, 2, 3, 4]);
    const y = new Float64Array(4);
    const rstd = new Float64Array(1), mean = new Float64Array(1);
    be.rmsnorm(x, Float64Array.from([1, 1, 2, 0.5]), y, rstd, "float64", 1, 4, 0);
    const r = 1 / Math.sqrt(7.5);
    close(y, [r, 2 * r, 6 * r, 2 * r], 1e-15);
    close(rstd, [r], 1e-15);
    be.layernorm(x, null, null, y, mean, rstd, "float64", 1, 4, 0);
    const s = 1 / Math.sqrt(1.25);
    close(y, [-1.5 * s, -0.5 * s, 0.5 * s, 1.5 * s], 1e-15);
    close(mean, [2.5], 0);
    be.layernorm(x, Float64Array.from([2, 2, 2, 2]), Float64Array.from([1, 0, 0, 0]), y, mean, rstd, "float64", 1, 4, 1e-5);
    const s2 = 1 / Math.sqrt(1.25 + 1e-5);
    close(y, [1 - 3 * s2, -s2, s2, 3 * s2], 1e-15);
    // float32 statistics as declared by the interface.
    const y32 = new Float32Array(4);
    be.rmsnorm(Float32Array.from(x), null, y32, new Float32Array(1), "float32", 1, 4, 0);
    close(y32, [r, 2 * r, 3 * r, 4 * r], 1e-7);
  });

  test("rmsnormBackward: gx and accumulated gw match finite differences", () => {
    const N = 3, C = 6;
    for (const withW of [true, false]) {
      const x = randArray(N * C, 31, 2);
      const w = randArray(C, 32, 1);
      const R = randArray(N * C, 33);
      const y = new Float64Array(N * C), rstd = new Float64Array(N);
      be.rmsnorm(x, withW ? w : null, y, rstd, "float64", N, C, 1e-5);
      const gx = new Float64Array(N * C).fill(NaN);
      const gw = new Float64Array(C).fill(0.5); // accumulates onto 0.5
      be.rmsnormBackward(x, withW ? w : null, rstd, R, gx, withW ? gw : null, "float64", N, C);
      const fwd = () => (be.rmsnorm(x, withW ? w : null, y, rstd, "float64", N, C, 1e-5), y);
      if (withW) fdCheck("rmsnorm", [x, w], fwd, R, [gx, gw.map((v) => v - 0.5)]);
      else fdCheck("rmsnorm (no weight)", [x], fwd, R, [gx]);
    }
  });

  test("layernormBackward: gx, gw, gb match finite differences", () => {
    const N = 3, C = 5;
    const x = randArray(N * C, 41, 2);
    const w = randArray(C, 42);
    const b = randArray(C, 43);
    const R = randArray(N * C, 44);
    const y = new Float64Array(N * C), mean = new Float64Array(N), rstd = new Float64Array(N);
    be.layernorm(x, w, b, y, mean, rstd, "float64", N, C, 1e-5);
    const gx = new Float64Array(N * C), gw = new Float64Array(C).fill(1), gb = new Float64Array(C).fill(-1);
    be.layernormBackward(x, w, mean, rstd, R, gx, gw, gb, "float64", N, C);
    fdCheck("layernorm", [x, w, b], () => (be.layernorm(x, w, b, y, mean, rstd, "float64", N, C, 1e-5), y), R, [gx, gw.map((v) => v - 1), gb.map((v) => v + 1)]);
  });

  test("errors name the op and sizes", () => {
    assert.throws(() => be.rmsnorm(new Float32Array(5), null, new Float32Array(6), new Float32Array(2), "float32", 2, 3, 1e-6), /rmsnorm: x has 5 elements but \[N=2, C=3\] needs 6/);
    assert.throws(() => be.layernorm(new Float32Array(6), new Float32Array(2), null, new Float32Array(6), new Float32Array(2), new Float32Array(2), "float32", 2, 3, 1e-6), /layernorm: w has 2 elements but \[C=3\] needs 3/);
  });
});

// ---- rope --------------------------------------------------------------------------------------

describe("reference: rope", () => {
  const args = (o: Partial<RopeArgs> & { B: number; T: number; H: number; D: number }): RopeArgs => ({ rotaryDim: o.D, theta: 10000, style: "half", inverse: false, ...o });

  test("rotates [1, 0] by the position angle; 90 degrees; pass-through dims", () => {
    const out = new Float64Array(2);
    be.rope(Float64Array.from([1, 0]), out, "float64", Int32Array.of(1), args({ B: 1, T: 1, H: 1, D: 2 }));
    close(out, [Math.cos(1), Math.sin(1)], 1e-15);
    // Pair 1 of D=4 has frequency theta^(-1/2) = pi/2 when theta = 4/pi^2: position 1 rotates by 90 degrees.
    const x = Float64Array.from([0, 1, 0, 0, 7, 8]); // "half": pairs (0, 2) and (1, 3); dims 4, 5 pass through
    const y = new Float64Array(6);
    be.rope(x, y, "float64", Int32Array.of(1), args({ B: 1, T: 1, H: 1, D: 6, rotaryDim: 4, theta: 4 / Math.PI ** 2 }));
    close(y, [0, 0, 0, 1, 7, 8], 1e-15);
    // Interleaved pairs (0, 1), (2, 3): pair 1 rotates [1, 0] by 90 degrees.
    const xi = Float64Array.from([0, 0, 1, 0]);
    const yi = new Float64Array(4);
    be.rope(xi, yi, "float64", Int32Array.of(1), args({ B: 1, T: 1, H: 1, D: 4, style: "interleaved", theta: 4 / Math.PI ** 2 }));
    close(yi, [0, 0, 0, 1], 1e-15);
  });

  test("matches HF rotate_half formula at several positions, heads and batches; in place", () => {
    const B = 2, T = 3, H = 2, D = 8, rd = 6, theta = 100;
    const x = randArray(B * T * H * D, 51);
    const pos = Int32Array.from([0, 1, 5, 2, 3, 9]);
    const y = new Float64Array(x.length);
    be.rope(x, y, "float64", pos, args({ B, T, H, D, rotaryDim: rd, theta }));
    const want = new Float64Array(x.length);
    for (let bt = 0; bt < B * T; bt++) for (let h = 0; h < H; h++) {
      const o = (bt * H + h) * D;
      for (let i = 0; i < D; i++) {
        if (i >= rd) {
          want[o + i] = x[o + i]!;
          continue;
        }
        const j = i % (rd / 2);
        const angle = pos[bt]! * theta ** ((-2 * j) / rd);
        const rot = i < rd / 2 ? -x[o + i + rd / 2]! : x[o + i - rd / 2]!;
        want[o + i] = x[o + i]! * Math.cos(angle) + rot * Math.sin(angle);
      }
    }
    close(y, want, 1e-14);
    const inPlace = Float64Array.from(x);
    be.rope(inPlace, inPlace, "float64", pos, args({ B, T, H, D, rotaryDim: rd, theta }));
    close(inPlace, want, 0);
  });

  test("inverse undoes the rotation and is its transpose (the backward)", () => {
    for (const style of ["half", "interleaved"] as const) {
      const B = 1, T = 4, H = 3, D = 6;
      const a = args({ B, T, H, D, rotaryDim: 4, style });
      const x = randArray(B * T * H * D, 61);
      const g = randArray(x.length, 62);
      const pos = Int32Array.from([3, 0, 7, 100]);
      const y = new Float64Array(x.length), back = new Float64Array(x.length), gx = new Float64Array(x.length);
      be.rope(x, y, "float64", pos, a);
      be.rope(y, back, "float64", pos, { ...a, inverse: true });
      close(back, x, 1e-14);
      be.rope(g, gx, "float64", pos, { ...a, inverse: true });
      fdCheck(`rope ${style}`, [x], () => (be.rope(x, y, "float64", pos, a), y), g, [gx]);
    }
  });
});

// ---- embedding ---------------------------------------------------------------------------------

describe("reference: embedding", () => {
  test("gather and scatter-add (repeated ids accumulate)", () => {
    const w = Float32Array.from([0, 1, 10, 11, 20, 21]); // [V=3, C=2]
    const out = new Float32Array(6);
    be.embedding(w, Int32Array.from([2, 0, 2]), out, "float32", 3, 3, 2);
    assert.deepEqual([...out], [20, 21, 0, 1, 20, 21]);
    const gw = new Float32Array(6).fill(1);
    be.embeddingBackward(Float32Array.from([1, 2, 3, 4, 5, 6]), Int32Array.from([2, 0, 2]), gw, "float32", 3, 3, 2);
    assert.deepEqual([...gw], [4, 5, 1, 1, 7, 9]);
    const wbf = Uint16Array.from([1, 2, 3, 4].map(f32ToBf16));
    const obf = new Uint16Array(2);
    be.embedding(wbf, Int32Array.of(1), obf, "bfloat16", 1, 2, 2);
    assert.deepEqual([...obf].map(bf16ToF32), [3, 4]);
  });

  test("embeddingBackward matches finite differences", () => {
    const V = 4, C = 3, N = 5;
    const w = randArray(V * C, 71);
    const ids = Int32Array.from([3, 1, 3, 0, 3]);
    const R = randArray(N * C, 72);
    const gw = new Float64Array(V * C);
    be.embeddingBackward(R, ids, gw, "float64", N, V, C);
    const out = new Float64Array(N * C);
    fdCheck("embedding", [w], () => (be.embedding(w, ids, out, "float64", N, V, C), out), R, [gw]);
  });

  test("out-of-range ids throw naming the id and V", () => {
    assert.throws(() => be.embedding(new Float32Array(6), Int32Array.from([0, 3]), new Float32Array(4), "float32", 2, 3, 2), (e: unknown) => e instanceof GraftError && /embedding: id 3 at position 1 .*V=3/.test(e.message));
    assert.throws(() => be.embeddingBackward(new Float32Array(2), Int32Array.of(-1), new Float32Array(6), "float32", 1, 3, 2), /embeddingBackward: id -1 .*V=3/);
  });
});

// ---- attention ---------------------------------------------------------------------------------

/** Independent attention: full score matrix per (b, h) with explicit -Infinity masking. */
function naiveAttention(q: Float64Array, k: Float64Array, v: Float64Array, a: AttentionArgs): Float64Array {
  const { B, Hq, Hkv, T, S, D, scale } = a;
  const out = new Float64Array(B * Hq * T * D);
  for (let b = 0; b < B; b++) for (let h = 0; h < Hq; h++) {
    const hk = Math.floor((h * Hkv) / Hq);
    for (let t = 0; t < T; t++) {
      const scores: number[] = [];
      for (let s = 0; s < S; s++) {
        const masked = (a.causal && s > t + S - T) || (a.keyMask && a.keyMask[b * S + s] === 0);
        let dot = 0;
        for (let d = 0; d < D; d++) dot += q[((b * Hq + h) * T + t) * D + d]! * k[((b * Hkv + hk) * S + s) * D + d]!;
        scores.push(masked ? -Infinity : dot * scale);
      }
      const max = Math.max(...scores);
      if (max === -Infinity) continue;
      const e = scores.map((s) => Math.exp(s - max));
      const z = e.reduce((p, c) => p + c, 0);
      for (let d = 0; d < D; d++) {
        let acc = 0;
        for (let s = 0; s < S; s++) acc += (e[s]! / z) * v[((b * Hkv + hk) * S + s) * D + d]!;
        out[((b * Hq + h) * T + t) * D + d] = acc;
      }
    }
  }
  return out;
}

describe("reference: attention", () => {
  const mk = (o: Partial<AttentionArgs> & { B: number; Hq: number; Hkv: number; T: number; S: number; D: number }): AttentionArgs => ({ scale: 1 / Math.sqrt(o.D), causal: false, keyMask: null, ...o });

  test("T = S = 1 returns v; the first causal query sees only the first key", () => {
    const a1 = mk({ B: 1, Hq: 1, Hkv: 1, T: 1, S: 1, D: 3 });
    const out = new Float64Array(3), lse = new Float64Array(1);
    be.attention(Float64Array.from([1, 2, 3]), Float64Array.from([4, 5, 6]), Float64Array.from([7, 8, 9]), out, lse, "float64", a1);
    assert.deepEqual([...out], [7, 8, 9]);
    close(lse, [32 / Math.sqrt(3)], 1e-15);
    const a = mk({ B: 1, Hq: 1, Hkv: 1, T: 2, S: 2, D: 2, causal: true });
    const v = Float64Array.from([1, 2, 3, 4]);
    const o2 = new Float64Array(4);
    be.attention(randArray(4, 1), randArray(4, 2), v, o2, new Float64Array(2), "float64", a);
    assert.deepEqual([...o2.subarray(0, 2)], [1, 2]);
  });

  test("matches a naive implementation: GQA, causal with S > T, key mask, fully masked rows", () => {
    const keyMask = Uint8Array.from([1, 1, 0, 1, 1, 0, 0, 0, 0, 0]); // batch 1 fully masked
    for (const [causal, mask] of [[false, null], [true, null], [true, keyMask], [false, keyMask]] as const) {
      const a = mk({ B: 2, Hq: 4, Hkv: 2, T: 3, S: 5, D: 4, causal, keyMask: mask });
      const q = randArray(2 * 4 * 3 * 4, 81, 2), k = randArray(2 * 2 * 5 * 4, 82, 2), v = randArray(2 * 2 * 5 * 4, 83);
      const out = new Float64Array(q.length), lse = new Float64Array(2 * 4 * 3);
      be.attention(q, k, v, out, lse, "float64", a);
      close(out, naiveAttention(q, k, v, a), 1e-14, `causal=${causal} mask=${!!mask}`);
      if (mask) assert.ok(lse.subarray(12).every((l) => l === -Infinity), "fully masked rows save lse = -Infinity");
    }
  });

  test("float32 and bfloat16 agree with float64 to their precision", () => {
    const a = mk({ B: 1, Hq: 2, Hkv: 1, T: 3, S: 3, D: 8, causal: true });
    const q = randArray(48, 91), k = randArray(24, 92), v = randArray(24, 93);
    const want = naiveAttention(q, k, v, a);
    const o32 = new Float32Array(48);
    be.attention(Float32Array.from(q), Float32Array.from(k), Float32Array.from(v), o32, new Float32Array(6), "float32", a);
    close(o32, want, 1e-6);
    const bf = (x: Float64Array) => Uint16Array.from(x, f32ToBf16);
    const obf = new Uint16Array(48);
    be.attention(bf(q), bf(k), bf(v), obf, new Float32Array(6), "bfloat16", a);
    close([...obf].map(bf16ToF32), want, 3e-2);
  });

  test("attentionBackward matches finite differences (GQA, causal, key mask, masked rows)", () => {
    const keyMask = Uint8Array.from([1, 0, 1, 1, 0, 0, 0, 0]);
    for (const [causal, mask] of [[false, null], [true, keyMask]] as const) {
      const a = mk({ B: 2, Hq: 4, Hkv: 2, T: 2, S: 4, D: 3, causal, keyMask: mask });
      const nq = 2 * 4 * 2 * 3, nk = 2 * 2 * 4 * 3;
      const q = randArray(nq, 101), k = randArray(nk, 102), v = randArray(nk, 103);
      const R = randArray(nq, 104);
      const out = new Float64Array(nq), lse = new Float64Array(16);
      be.attention(q, k, v, out, lse, "float64", a);
      const gq = new Float64Array(nq).fill(NaN), gk = new Float64Array(nk).fill(NaN), gv = new Float64Array(nk).fill(NaN);
      be.attentionBackward(q, k, v, out, lse, R, gq, gk, gv, "float64", a);
      if (mask) assert.ok(gq.subarray(nq / 2).every((g) => g === 0), "fully masked batch gets no gradient");
      fdCheck(`attention causal=${causal} mask=${!!mask}`, [q, k, v], () => (be.attention(q, k, v, out, lse, "float64", a), out), R, [gq, gk, gv]);
    }
  });

  test("errors", () => {
    assert.throws(() => be.attention(new Float32Array(8), new Float32Array(8), new Float32Array(8), new Float32Array(8), new Float32Array(2), "float32", mk({ B: 1, Hq: 3, Hkv: 2, T: 1, S: 1, D: 2 })), /attention: Hq=3 is not a multiple of Hkv=2/);
    assert.throws(() => be.attention(new Float32Array(7), new Float32Array(8), new Float32Array(8), new Float32Array(8), new Float32Array(2), "float32", mk({ B: 1, Hq: 2, Hkv: 2, T: 2, S: 2, D: 2 })), /attention: q has 7 elements but \[B=1, Hq=2, T=2, D=2\] needs 8/);
  });
});

// ---- adamw -------------------------------------------------------------------------------------

describe("reference: adamw", () => {
  test("two steps equal the torch formula", () => {
    const args = { lr: 0.01, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0.1, step: 1 };
    const p = Float32Array.from([1, -2, 0.5]), g = Float32Array.from([0.1, -0.3, 2]);
    const m = new Float32Array(3), v = new Float32Array(3);
    const P = [...p], M = [0, 0, 0], Vv = [0, 0, 0];
    for (const step of [1, 2]) {
      be.adamw(p, g, m, v, 3, { ...args, step });
      for (let i = 0; i < 3; i++) {
        P[i] = P[i]! * (1 - args.lr * args.weightDecay);
        M[i] = args.beta1 * M[i]! + (1 - args.beta1) * g[i]!;
        Vv[i] = args.beta2 * Vv[i]! + (1 - args.beta2) * g[i]! ** 2;
        const mhat = M[i]! / (1 - args.beta1 ** step);
        const vhat = Vv[i]! / (1 - args.beta2 ** step);
        P[i] = P[i]! - (args.lr * mhat) / (Math.sqrt(vhat) + args.eps);
      }
      close(p, P, 1e-6, `step ${step}`);
      close(m, M, 1e-6);
      close(v, Vv, 1e-6);
    }
  });
});

// ---- speed -------------------------------------------------------------------------------------

test("reference: a 64x4865 softmax and a batched 33x33x33 gemm take milliseconds", () => {
  const x = Float32Array.from(randArray(64 * 4865, 5, 4));
  const y = new Float32Array(x.length);
  let t = performance.now();
  be.softmax(x, y, "float32", 64, 4865, false);
  assert.ok(performance.now() - t < 500, `softmax took ${performance.now() - t} ms`);
  const a = Float32Array.from(randArray(33 * 33 * 33, 6));
  const c = new Float32Array(a.length);
  t = performance.now();
  be.gemm(a, a, c, "float32", "float32", gemmArgs({ batch: 33, m: 33, n: 33, k: 33 }));
  assert.ok(performance.now() - t < 500, `gemm took ${performance.now() - t} ms`);
});
