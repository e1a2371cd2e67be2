/**
 * Backend.gemm on the native add-on: float32 or bfloat16 operands (a and b the same dtype), float32
 * or bfloat16 output. The add-on bounds-checks every element it would touch and throws `gemm: ...`.
 */
import type { DType, Storage } from "../../core/dtype.ts";
import { DTypeError } from "../../core/errors.ts";
import type { GemmArgs } from "../Backend.ts";
import type { Addon } from "./addon.ts";

function dtypeCode(dtype: DType, what: string): number {
  if (dtype === "float32") return 0;
  if (dtype === "bfloat16") return 1;
  throw new DTypeError("gemm", `native gemm supports float32 and bfloat16 ${what}, got ${dtype}`);
}

export function nativeGemm(addon: Addon, a: Storage, b: Storage, c: Storage, dtype: DType, cDtype: DType, args: GemmArgs): void {
  addon.gemm(
    a,
    b,
    c,
    dtypeCode(dtype, "operands"),
    dtypeCode(cDtype, "outputs"),
    args.batch,
    args.m,
    args.n,
    args.k,
    args.transA,
    args.transB,
    args.lda,
    args.ldb,
    args.ldc,
    args.offsetA,
    args.offsetB,
    args.offsetC,
    args.strideA,
    args.strideB,
    args.strideC,
    args.alpha,
    args.beta,
  );
}
