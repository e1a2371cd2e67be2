/**
 * NF4 (4-bit NormalFloat) as bitsandbytes stores it: weights in blocks of 64, each block scaled by
 * its absmax and rounded to the nearest of the 16 NF4 code values (two codes per byte, the first
 * in the high nibble). Double quantization: the float32 absmax values lose their mean (`offset`)
 * and are quantized to 8 bits with bitsandbytes' signed dynamic map, in blocks of 256 with a
 * float32 absmax each. This pure-TS implementation is the oracle for any native kernel.
 */
import { GraftError } from "../core/errors.ts";

export class QuantError extends GraftError {
  override name = "QuantError";
}

/** bitsandbytes' NF4 code values (functional.py `get_4bit_type("nf4")`). */
export const NF4_CODEBOOK: readonly number[] = [
  -1, -0.6961928009986877, -0.5250730514526367, -0.39491748809814453, -0.28444138169288635, -0.18477343022823334,
  -0.09105003625154495, 0, 0.07958029955625534, 0.16093020141124725, 0.24611230194568634, 0.33791524171829224,
  0.44070982933044434, 0.5626170039176941, 0.7229568362236023, 1,
];

export const NF4_BLOCK_SIZE = 64;
export const NF4_NESTED_BLOCK_SIZE = 256;

/** bitsandbytes `create_dynamic_map(signed=True, max_exponent_bits=7, total_bits=8)`: 256 sorted values in [-1, 1]. */
export function dynamicMap(): Float32Array {
  const data: number[] = [];
  const maxExp = 7;
  const nonSign = 7;
  for (let i = 0; i < maxExp; i++) {
    const items = 2 ** (i + nonSign - maxExp) + 1;
    const scale = 10 ** (-(maxExp - 1) + i);
    for (let j = 0; j + 1 < items; j++) {
      // torch.linspace(0.1, 1, items) in float32, then midpoints.
      const a = Math.fround(0.1 + ((1 - 0.1) * j) / (items - 1));
      const b = Math.fround(0.1 + ((1 - 0.1) * (j + 1)) / (items - 1));
      const mean = (a + b) / 2;
      data.push(scale * mean, -scale * mean);
    }
  }
  data.push(0, 1);
  data.sort((x, y) => x - y);
  return Float32Array.from(data);
}

const DYNAMIC = dynamicMap();

/** Index of the nearest value of a sorted code table (ties go to the lower index). */
function nearest(code: ArrayLike<number>, x: number): number {
  let lo = 0;
  let hi = code.length - 1;
  while (hi - lo > 1) {
    const mid = (lo + hi) >> 1;
    if (code[mid]! <= x) lo = mid;
    else hi = mid;
  }
  return Math.abs(x - code[lo]!) <= Math.abs(code[hi]! - x) ? lo : hi;
}

/** A float32 array quantized blockwise to 8 bits with the dynamic map (bitsandbytes `quantize_blockwise`). */
export interface Blockwise8 {
  codes: Uint8Array;
  absmax: Float32Array;
  blockSize: number;
}

export function quantizeBlockwise8(x: ArrayLike<number>, blockSize = NF4_NESTED_BLOCK_SIZE): Blockwise8 {
  const n = x.length;
  const nb = Math.ceil(n / blockSize);
  const codes = new Uint8Array(n);
  const absmax = new Float32Array(nb);
  for (let b = 0; b < nb; b++) {
    const end = Math.min(n, (b + 1) * blockSize);
    let m = 0;
    for (let i = b * blockSize; i < end; i++) m = Math.max(m, Math.abs(x[i]!));
    absmax[b] = m;
    const inv = m > 0 ? 1 / m : 0;
    for (let i = b * blockSize; i < end; i++) codes[i] = nearest(DYNAMIC, x[i]! * inv);
  }
  return { codes, absmax, blockSize };
}

export function dequantizeBlockwise8(q: Blockwise8, out = new Float32Array(q.codes.length)): Float32Array {
  for (let i = 0; i < q.codes.length; i++) out[i] = DYNAMIC[q.codes[i]!]! * q.absmax[Math.floor(i / q.blockSize)]!;
  return out;
}

/** An NF4 tensor with double-quantized absmax (bitsandbytes `QuantState` with `nested=True`). */
export interface NF4Tensor {
  shape: number[];
  /** Two codes per byte, element 2i in the high nibble. */
  packed: Uint8Array;
  blockSize: number;
  /** The absmax of every block of 64, 8-bit quantized (absmax - offset). */
  absmax: Blockwise8;
  offset: number;
}

/** Quantizes a float array (row-major, `shape`) to NF4 with double quantization. */
export function quantizeNF4(x: ArrayLike<number>, shape: number[], blockSize = NF4_BLOCK_SIZE): NF4Tensor {
  const n = x.length;
  if (shape.reduce((a, b) => a * b, 1) !== n) throw new QuantError(`quantizeNF4: ${n} values do not fill shape [${shape.join(", ")}]`);
  if (blockSize <= 0 || blockSize % 2 !== 0) throw new QuantError(`quantizeNF4: block size must be a positive even number, got ${blockSize}`);
  const nb = Math.ceil(n / blockSize);
  const absmax = new Float32Array(nb);
  const packed = new Uint8Array(Math.ceil(n / 2));
  for (let b = 0; b < nb; b++) {
    const end = Math.min(n, (b + 1) * blockSize);
    let m = 0;
    for (let i = b * blockSize; i < end; i++) m = Math.max(m, Math.abs(x[i]!));
    absmax[b] = m;
    const inv = m > 0 ? 1 / m : 0;
    for (let i = b * blockSize; i < end; i++) {
      const q = nearest(NF4_CODEBOOK, x[i]! * inv);
      packed[i >> 1] |= i % 2 === 0 ? q << 4 : q;
    }
  }
  let offset = 0;
  for (let b = 0; b < nb; b++) offset += absmax[b]!;
  offset = Math.fround(offset / Math.max(1, nb));
  const centered = absmax.map((a) => a - offset);
  return { shape: [...shape], packed, blockSize, absmax: quantizeBlockwise8(centered), offset };
}

/** The float32 values of an NF4 tensor (the oracle for native dequant kernels). */
export function dequantizeNF4(q: NF4Tensor, out?: Float32Array): Float32Array {
  const n = q.shape.reduce((a, b) => a * b, 1);
  const res = out ?? new Float32Array(n);
  const absmax = dequantizeBlockwise8(q.absmax);
  const bs = q.blockSize;
  for (let b = 0; b < absmax.length; b++) {
    const a = Math.fround(absmax[b]! + q.offset); // float32 arithmetic, as bitsandbytes
    const end = Math.min(n, (b + 1) * bs);
    // Blocks hold an even number of codes, so each starts on a byte: two values per byte.
    for (let i = b * bs; i < end; i += 2) {
      const byte = q.packed[i >> 1]!;
      res[i] = NF4_CODEBOOK[byte >> 4]! * a;
      if (i + 1 < end) res[i + 1] = NF4_CODEBOOK[byte & 0x0f]! * a;
    }
  }
  return res;
}

/** Bytes an NF4 tensor holds: packed codes + 8-bit absmax + the nested float32 absmax + offset. */
export function nf4Bytes(q: NF4Tensor): number {
  return q.packed.byteLength + q.absmax.codes.byteLength + q.absmax.absmax.byteLength + 4;
}

/** Bytes of NF4 with double quantization for `n` weights, without quantizing anything. */
export function nf4BytesFor(n: number, blockSize = NF4_BLOCK_SIZE, nested = NF4_NESTED_BLOCK_SIZE): number {
  const nb = Math.ceil(n / blockSize);
  return Math.ceil(n / 2) + nb + Math.ceil(nb / nested) * 4 + 4;
}
