/**
 * Reference quantized matmul (Backend.qmatmul): the rule the native kernels follow, spelled out in
 * float32 arithmetic (Math.fround) — activations quantized per row and block of 32 to int8, exact
 * integer block dots, each scaled by dx * dw and summed in order.
 */
import type { DType, Storage } from "../../core/dtype.ts";
import { DTypeError, ShapeError } from "../../core/errors.ts";
import type { QMatmulArgs } from "../Backend.ts";
import { checkFloatStorage, checkLength, checkSizes, readable, writable, commit } from "./storage.ts";

const QK = 32;
const f32 = Math.fround;

/** IEEE float16 bits → number. */
export function f16ToNumber(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >> 10) & 0x1f;
  const man = h & 0x3ff;
  if (exp === 0x1f) return man ? NaN : sign * Infinity;
  if (exp === 0) return sign * man * 2 ** -24;
  return sign * (1 + man / 1024) * 2 ** (exp - 15);
}

/** Round half to even (what C's nearbyint does under the default rounding mode). */
function roundHalfEven(v: number): number {
  const r = Math.round(v); // half up
  return r - v === 0.5 && (r & 1) !== 0 ? r - 1 : r;
}

/** One activation row → int8 values, float32 scales and block sums. */
export function quantizeActivationRow(x: ArrayLike<number>, base: number, K: number, q: Int8Array, d: Float32Array, s: Int32Array): void {
  for (let b = 0; b < K / QK; b++) {
    let amax = 0;
    for (let j = 0; j < QK; j++) amax = Math.max(amax, Math.abs(x[base + b * QK + j]!));
    const db = f32(amax / 127);
    const id = db !== 0 ? f32(1 / db) : 0;
    let sum = 0;
    for (let j = 0; j < QK; j++) {
      const v = roundHalfEven(f32(x[base + b * QK + j]! * id));
      q[b * QK + j] = v;
      sum += v;
    }
    d[b] = db;
    s[b] = sum;
  }
}

export function qmatmul(x: Storage, xDtype: DType, qs: Uint8Array, scales: Uint16Array, out: Storage, args: QMatmulArgs): void {
  const op = "qmatmul";
  const { m: M, n: N, k: K, type } = args;
  checkSizes(op, { M, N, K });
  if (type !== "q8_0" && type !== "q4_0") throw new DTypeError(op, `unknown quantization type "${String(type)}" (q8_0 or q4_0)`);
  if (K % QK !== 0) throw new ShapeError(op, `K = ${K} is not a multiple of the block size ${QK}`);
  const dims = `[M=${M}, N=${N}, K=${K}]`;
  checkFloatStorage(op, "x", x, xDtype, M * K, dims);
  checkFloatStorage(op, "out", out, xDtype, M * N, dims);
  if (!(qs instanceof Uint8Array)) throw new DTypeError(op, `qs must be a Uint8Array, got ${(qs as object).constructor.name}`);
  if (!(scales instanceof Uint16Array)) throw new DTypeError(op, `scales must be a Uint16Array of float16, got ${(scales as object).constructor.name}`);
  checkLength(op, "qs", qs, type === "q8_0" ? N * K : (N * K) / 2, dims);
  checkLength(op, "scales", scales, N * (K / QK), dims);
  const nb = K / QK;
  const xv = readable(x, xDtype, M * K);
  const o = writable(out, xDtype, M * N);
  const dw = Float32Array.from(scales.subarray(0, N * nb), f16ToNumber);
  const wi8 = new Int8Array(qs.buffer, qs.byteOffset, qs.length);
  const q = new Int8Array(K);
  const dx = new Float32Array(nb);
  const sx = new Int32Array(nb);
  for (let m = 0; m < M; m++) {
    quantizeActivationRow(xv, m * K, K, q, dx, sx);
    for (let n = 0; n < N; n++) {
      let acc = 0;
      for (let b = 0; b < nb; b++) {
        let s = 0;
        if (type === "q8_0") {
          const w0 = n * K + b * QK;
          for (let j = 0; j < QK; j++) s += wi8[w0 + j]! * q[b * QK + j]!;
        } else {
          const w0 = n * (K / 2) + b * 16;
          for (let j = 0; j < 16; j++) {
            const v = qs[w0 + j]!;
            s += (v & 0x0f) * q[b * QK + j]! + (v >> 4) * q[b * QK + 16 + j]!;
          }
          s -= 8 * sx[b]!;
        }
        acc = f32(acc + f32(s * f32(dw[n * nb + b]! * dx[b]!)));
      }
      o[m * N + n] = acc;
    }
  }
  commit(o, out, xDtype, M * N);
}
