/**
 * The native backend's GEMV path (X W^T with at most 4 rows of X, the decode matmuls): every kernel
 * set against the reference GEMM on odd sizes, padded leading dimensions, offsets, alpha, bf16
 * operands and outputs, batches folded into rows; problems outside the fast path still run as GEMM.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import type { GemmArgs } from "../../src/backend/Backend.ts";
import { tryNativeGemv } from "../../src/backend/native/quant.ts";
import type { DType, Storage } from "../../src/core/dtype.ts";
import { Generator } from "../../src/core/rng.ts";
import { assertClose, randStorage } from "../helpers/backends.ts";
import { addon, kernelSets, native, needsKernels, ref } from "../helpers/quantKernels.ts";


function args(m: number, n: number, k: number, extra: Partial<GemmArgs> = {}): GemmArgs {
  return {
    batch: 1, m, n, k, transA: false, transB: true, lda: k, ldb: k, ldc: n,
    offsetA: 0, offsetB: 0, offsetC: 0, strideA: 0, strideB: 0, strideC: 0, alpha: 1, beta: 0,
    ...extra,
  };
}

function out(dtype: DType, n: number): Storage {
  return dtype === "float32" ? new Float32Array(n) : new Uint16Array(n);
}

/** Random A and B for a problem (seeded) and the length of storage its C needs. */
function operands(dtype: DType, a: GemmArgs, seed: number): { A: Storage; B: Storage; lenC: number } {
  const g = new Generator(seed);
  const lenA = a.offsetA + (a.batch - 1) * a.strideA + (a.m - 1) * a.lda + a.k;
  const lenB = a.offsetB + (a.batch - 1) * a.strideB + (a.n - 1) * a.ldb + a.k;
  const lenC = a.offsetC + (a.batch - 1) * a.strideC + (a.m - 1) * a.ldc + a.n;
  return { A: randStorage(dtype, lenA, g), B: randStorage(dtype, lenB, g), lenC };
}

function check(name: string, dtype: DType, cDtype: DType, a: GemmArgs, seed: number): void {
  const { A, B, lenC } = operands(dtype, a, seed);
  const got = out(cDtype, lenC);
  const want = out(cDtype, lenC);
  native.gemm(A, B, got, dtype, cDtype, a);
  ref.gemm(A, B, want, dtype, cDtype, a);
  const tol = cDtype === "bfloat16" ? { rtol: 8e-3, atol: 1e-3 } : { rtol: 1e-5, atol: 1e-5 * Math.sqrt(a.k) };
  assertClose(name, got, want, tol);
}

test("gemv: every kernel set matches the reference GEMM for 1-4 rows", needsKernels, () => {
  try {
    for (const set of kernelSets) {
      addon["quantUseKernels"]!(set);
      for (const [dtype, cDtype] of [["float32", "float32"], ["bfloat16", "float32"], ["bfloat16", "bfloat16"], ["float32", "bfloat16"]] as [DType, DType][]) {
        for (const m of [1, 2, 3, 4]) {
          for (const [n, k] of [[1, 1], [5, 15], [17, 33], [9, 100], [70, 896], [3, 4864]]) {
            check(`${set} ${dtype}->${cDtype} m=${m} n=${n} k=${k}`, dtype, cDtype, args(m, n, k), m * 100 + n + k);
          }
        }
        // Padded leading dimensions, offsets and alpha.
        check(`${set} ${dtype} padded`, dtype, cDtype, args(3, 21, 40, { lda: 45, ldb: 47, ldc: 30, offsetA: 3, offsetB: 5, offsetC: 2, alpha: -0.75 }), 9);
      }
    }
  } finally {
    addon["quantUseKernels"]!(null);
  }
});

test("gemv: a batch sharing W with evenly spaced rows folds into one GEMV; other shapes use GEMM", needsKernels, () => {
  const folded = args(1, 33, 64, { batch: 3, strideA: 64, strideC: 33 });
  check("batch of 3 single rows", "float32", "float32", folded, 1);
  const probe = (a: GemmArgs) => tryNativeGemv(addon, new Float32Array(4096 * 8), new Float32Array(4096 * 8), new Float32Array(4096 * 8), "float32", "float32", a);
  assert.equal(probe(folded), true);
  assert.equal(probe(args(5, 8, 16)), false, "5 rows: GEMM");
  assert.equal(probe(args(2, 8, 16, { transB: false, ldb: 8 })), false, "W stored [k, n]: GEMM");
  assert.equal(probe(args(2, 8, 16, { beta: 1 })), false, "beta != 0: GEMM");
  assert.equal(probe(args(1, 8, 16, { batch: 2, strideA: 16, strideB: 128, strideC: 8 })), false, "per-matrix W: GEMM");
  // Those still compute correctly through the backend.
  check("5 rows", "float32", "float32", args(5, 8, 16), 2);
  check("beta = 1", "float32", "float32", args(2, 8, 16, { beta: 1 }), 3);
});

test("gemv: out-of-bounds sizes throw instead of reading past the arrays", needsKernels, () => {
  assert.throws(
    () => native.gemm(new Float32Array(10), new Float32Array(64), new Float32Array(4), "float32", "float32", args(1, 4, 16)),
    /gemv: x has 10 elements, needs 16/,
  );
  assert.throws(
    () => native.gemm(new Float32Array(16), new Float32Array(60), new Float32Array(4), "float32", "float32", args(1, 4, 16)),
    /gemv: w has 60 elements, needs 64/,
  );
});

test("gemm roundToBf16: a float32 C holds exactly the bfloat16 C widened (GEMV and GEMM paths, both backends)", needsKernels, () => {
  const widen = (c: Uint16Array) => new Float32Array(Uint32Array.from(c, (u) => u << 16).buffer);
  const same = (name: string, dtype: DType, a: GemmArgs, seed: number, be: typeof native | typeof ref) => {
    const { A, B, lenC } = operands(dtype, a, seed);
    const bf = new Uint16Array(lenC);
    be.gemm(A, B, bf, dtype, "bfloat16", a);
    const f = new Float32Array(lenC).fill(Number.NaN); // untouched elements stay NaN in both
    be.gemm(A, B, f, dtype, "float32", { ...a, roundToBf16: true });
    const want = widen(bf);
    for (let i = 0; i < lenC; i++) {
      const w = want[i]!;
      const written = i >= a.offsetC && (i - a.offsetC) % a.ldc < a.n;
      if (written) assert.ok(Object.is(f[i], w), `${name}: element ${i} is ${f[i]}, the widened bfloat16 C holds ${w}`);
      else assert.ok(Number.isNaN(f[i]), `${name}: element ${i} outside C was written`);
    }
  };
  try {
    for (const set of kernelSets) {
      addon["quantUseKernels"]!(set);
      for (const dtype of ["bfloat16", "float32"] as DType[]) {
        for (const m of [1, 3]) same(`${set} ${dtype} gemv m=${m}`, dtype, args(m, 1037, 96, { ldc: 1040, offsetC: 1 }), m, native);
      }
    }
  } finally {
    addon["quantUseKernels"]!(null);
  }
  same("gemm m=7", "bfloat16", args(7, 130, 64), 4, native);
  same("gemm not transposed", "bfloat16", args(2, 40, 24, { transB: false, ldb: 40 }), 5, native);
  same("reference", "bfloat16", args(3, 21, 40, { ldc: 25, offsetC: 2 }), 6, ref);
  for (const be of [native, ref]) {
    assert.throws(() => be.gemm(new Uint16Array(64), new Uint16Array(64), new Float32Array(64), "bfloat16", "float32", args(5, 8, 8, { beta: 1, roundToBf16: true })), /roundToBf16 needs beta = 0/);
  }
});
