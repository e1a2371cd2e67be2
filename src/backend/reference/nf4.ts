/** Reference NF4 kernels (Backend.nf4Matmul / nf4Dequantize): decode each element, float32 sums. */
import type { DType, Storage } from "../../core/dtype.ts";
import { DTypeError, ShapeError } from "../../core/errors.ts";
import type { Nf4Args } from "../Backend.ts";
import { checkFloatStorage, checkLength, checkSizes, commit, readable, writable } from "./storage.ts";

/** bitsandbytes' NF4 code values as float32 (the same numbers as src/quant/nf4.ts NF4_CODEBOOK). */
const CODEBOOK = Float32Array.from([
  -1, -0.6961928009986877, -0.5250730514526367, -0.39491748809814453, -0.28444138169288635, -0.18477343022823334,
  -0.09105003625154495, 0, 0.07958029955625534, 0.16093020141124725, 0.24611230194568634, 0.33791524171829224,
  0.44070982933044434, 0.5626170039176941, 0.7229568362236023, 1,
]);

function checkNf4(op: string, packed: Uint8Array, absmax: Float32Array, blockSize: number, n: number): void {
  if (!(packed instanceof Uint8Array)) throw new DTypeError(op, `packed must be a Uint8Array, got ${(packed as object).constructor.name}`);
  if (!(absmax instanceof Float32Array)) throw new DTypeError(op, `absmax must be a Float32Array, got ${(absmax as object).constructor.name}`);
  if (!Number.isInteger(blockSize) || blockSize < 2 || blockSize % 2 !== 0) throw new ShapeError(op, `blockSize must be an even number >= 2, got ${blockSize}`);
  checkLength(op, "packed", packed, Math.ceil(n / 2), `${n} elements`);
  checkLength(op, "absmax", absmax, Math.ceil(n / blockSize), `${n} elements in blocks of ${blockSize}`);
}

function decode(packed: Uint8Array, absmax: Float32Array, blockSize: number, start: number, count: number, out: Float32Array): void {
  for (let j = 0; j < count; j++) {
    const i = start + j;
    const byte = packed[i >> 1]!;
    out[j] = Math.fround(CODEBOOK[i & 1 ? byte & 0x0f : byte >> 4]! * absmax[Math.floor(i / blockSize)]!);
  }
}

export function nf4Dequantize(packed: Uint8Array, absmax: Float32Array, blockSize: number, n: number, out: Storage, outDtype: DType): void {
  const op = "nf4Dequantize";
  checkSizes(op, { n });
  checkNf4(op, packed, absmax, blockSize, n);
  checkFloatStorage(op, "out", out, outDtype, n, `[${n}]`);
  const vals = new Float32Array(n);
  decode(packed, absmax, blockSize, 0, n, vals);
  const o = writable(out, outDtype, n);
  for (let i = 0; i < n; i++) o[i] = vals[i]!;
  commit(o, out, outDtype, n);
}

export function nf4Matmul(x: Storage, xDtype: DType, packed: Uint8Array, absmax: Float32Array, out: Storage, args: Nf4Args): void {
  const op = "nf4Matmul";
  const { m: M, n: N, k: K, blockSize } = args;
  checkSizes(op, { M, N, K });
  checkNf4(op, packed, absmax, blockSize, N * K);
  const dims = `[M=${M}, N=${N}, K=${K}]`;
  checkFloatStorage(op, "x", x, xDtype, M * K, dims);
  checkFloatStorage(op, "out", out, xDtype, M * N, dims);
  const xv = readable(x, xDtype, M * K);
  const o = writable(out, xDtype, M * N);
  const row = new Float32Array(K);
  for (let n = 0; n < N; n++) {
    decode(packed, absmax, blockSize, n * K, K, row);
    for (let m = 0; m < M; m++) {
      let s = 0;
      for (let k = 0; k < K; k++) s = Math.fround(s + Math.fround(xv[m * K + k]! * row[k]!));
      o[m * N + n] = s;
    }
  }
  commit(o, out, xDtype, M * N);
}
