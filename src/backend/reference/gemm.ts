/**
 * Batched GEMM: C = alpha * op(A) @ op(B) + beta * C, accumulated in float64. A and B are float32,
 * bfloat16 or (reference only, for gradchecks) float64; C is float32, bfloat16 or float64.
 */
import { type DType, type Storage, bf16ToF32, f32ToBf16 } from "../../core/dtype.ts";
import { ShapeError } from "../../core/errors.ts";
import type { GemmArgs } from "../Backend.ts";
import { type NumArray, checkFloat, checkSizes, checkStorage } from "./storage.ts";

/** Largest and smallest element index a batched strided matrix touches; throws when outside `len`. */
function checkMatrix(name: string, len: number, off: number, bStride: number, batch: number, rows: number, cols: number, ld: number): [number, number] {
  let lo = off;
  let hi = off;
  for (const span of [(batch - 1) * bStride, (rows - 1) * ld, cols - 1]) {
    if (span > 0) hi += span;
    else lo += span;
  }
  if (lo < 0 || hi >= len) {
    throw new ShapeError(
      "gemm",
      `${name} (${batch} x [${rows}, ${cols}], ld ${ld}, offset ${off}, batch stride ${bStride}) reaches elements ${lo}..${hi} of a storage of ${len}`,
    );
  }
  return [lo, hi + 1];
}

/** The elements lo..hi of a float storage as numbers (bf16 decoded) and the index shift to apply. */
function decodeRange(s: Storage, dtype: DType, lo: number, hi: number): [NumArray, number] {
  if (dtype !== "bfloat16") return [s as NumArray, 0];
  const out = new Float32Array(hi - lo);
  for (let i = lo; i < hi; i++) out[i - lo] = bf16ToF32(s[i] as number);
  return [out, lo];
}

export function gemm(a: Storage, b: Storage, c: Storage, dtype: DType, cDtype: DType, args: GemmArgs): void {
  const { batch, m, n, k, transA, transB, lda, ldb, ldc, alpha, beta } = args;
  checkSizes("gemm", { batch, m, n, k });
  checkSizes("gemm", { lda, ldb, ldc, offsetA: args.offsetA, offsetB: args.offsetB, offsetC: args.offsetC });
  checkFloat("gemm", dtype);
  checkFloat("gemm", cDtype);
  checkStorage("gemm", "a", a, dtype);
  checkStorage("gemm", "b", b, dtype);
  checkStorage("gemm", "c", c, cDtype);
  const round = args.roundToBf16 === true && cDtype !== "bfloat16";
  if (round && beta !== 0) throw new ShapeError("gemm", `roundToBf16 needs beta = 0, got ${beta}`);
  if (batch === 0 || m === 0 || n === 0) return;
  checkMatrix("c", c.length, args.offsetC, args.strideC, batch, m, n, ldc);
  // Element (i, p) of op(A) is at offA + i * aI + p * aP; element (p, j) of op(B) at offB + p * bP + j * bJ.
  const aI = transA ? 1 : lda;
  const aP = transA ? lda : 1;
  const bP = transB ? 1 : ldb;
  const bJ = transB ? ldb : 1;
  let A: NumArray = a as NumArray;
  let B: NumArray = b as NumArray;
  let shiftA = 0;
  let shiftB = 0;
  if (k > 0) {
    const [aLo, aHi] = checkMatrix("a", a.length, args.offsetA, args.strideA, batch, transA ? k : m, transA ? m : k, lda);
    const [bLo, bHi] = checkMatrix("b", b.length, args.offsetB, args.strideB, batch, transB ? n : k, transB ? k : n, ldb);
    [A, shiftA] = decodeRange(a, dtype, aLo, aHi);
    [B, shiftB] = decodeRange(b, dtype, bLo, bHi);
  }
  const acc = new Float64Array(n);
  const cBf16 = cDtype === "bfloat16";
  const cu = c as Uint16Array;
  const cf = c as Float64Array | Float32Array;
  for (let bi = 0; bi < batch; bi++) {
    const offA = args.offsetA + bi * args.strideA - shiftA;
    const offB = args.offsetB + bi * args.strideB - shiftB;
    const offC = args.offsetC + bi * args.strideC;
    for (let i = 0; i < m; i++) {
      acc.fill(0);
      const rowA = offA + i * aI;
      for (let p = 0; p < k; p++) {
        const av = A[rowA + p * aP]!;
        const rowB = offB + p * bP;
        for (let j = 0; j < n; j++) acc[j] += av * B[rowB + j * bJ]!;
      }
      const rowC = offC + i * ldc;
      for (let j = 0; j < n; j++) {
        let r = alpha * acc[j]!;
        if (beta !== 0) r += beta * (cBf16 ? bf16ToF32(cu[rowC + j]!) : cf[rowC + j]!);
        if (cBf16) cu[rowC + j] = f32ToBf16(r);
        else cf[rowC + j] = round ? bf16ToF32(f32ToBf16(r)) : r;
      }
    }
  }
}
