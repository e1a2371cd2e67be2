/**
 * ggml tensor types: block sizes of every type GGUF files carry, and the reference quantizers of the
 * two we write — Q8_0 (block of 32: f16 scale d + 32 int8, x = q * d) and Q4_0 (block of 32: f16 scale
 * d + 16 bytes; low nibbles hold elements 0..15, high nibbles 16..31, x = (q - 8) * d). Arithmetic
 * follows ggml's quantize_row_*_ref in float32, so blocks match llama.cpp's bit for bit.
 */
import { f16ToF32, f32ToF16 } from "./tensorData.ts";

export interface GgmlTypeInfo {
  id: number;
  name: string;
  /** Elements per block. */
  blockSize: number;
  /** Bytes per block. */
  typeSize: number;
}

const TYPES: [string, number, number, number][] = [
  ["F32", 0, 1, 4],
  ["F16", 1, 1, 2],
  ["Q4_0", 2, 32, 18],
  ["Q4_1", 3, 32, 20],
  ["Q5_0", 6, 32, 22],
  ["Q5_1", 7, 32, 24],
  ["Q8_0", 8, 32, 34],
  ["Q8_1", 9, 32, 36],
  ["Q2_K", 10, 256, 84],
  ["Q3_K", 11, 256, 110],
  ["Q4_K", 12, 256, 144],
  ["Q5_K", 13, 256, 176],
  ["Q6_K", 14, 256, 210],
  ["Q8_K", 15, 256, 292],
  ["IQ2_XXS", 16, 256, 66],
  ["IQ2_XS", 17, 256, 74],
  ["IQ3_XXS", 18, 256, 98],
  ["IQ1_S", 19, 256, 50],
  ["IQ4_NL", 20, 32, 18],
  ["IQ3_S", 21, 256, 110],
  ["IQ2_S", 22, 256, 82],
  ["IQ4_XS", 23, 256, 136],
  ["I8", 24, 1, 1],
  ["I16", 25, 1, 2],
  ["I32", 26, 1, 4],
  ["I64", 27, 1, 8],
  ["F64", 28, 1, 8],
  ["IQ1_M", 29, 256, 56],
  ["BF16", 30, 1, 2],
  ["TQ1_0", 34, 256, 54],
  ["TQ2_0", 35, 256, 66],
  ["MXFP4", 39, 32, 17],
];

export const GGML_TYPES: ReadonlyMap<number, GgmlTypeInfo> = new Map(TYPES.map(([name, id, blockSize, typeSize]) => [id, { id, name, blockSize, typeSize }]));
export const GGML_TYPE_BY_NAME: ReadonlyMap<string, GgmlTypeInfo> = new Map([...GGML_TYPES.values()].map((t) => [t.name, t]));

/** The ggml type names graft writes, and reads into our dtypes. */
export type GgmlTypeName = "F32" | "F16" | "BF16" | "F64" | "I8" | "I16" | "I32" | "I64" | "Q8_0" | "Q4_0";

export const QK8_0 = 32;
export const QK4_0 = 32;

/** Bytes taken by n elements of a type (n must be a multiple of the block size). */
export function ggmlByteLength(type: GgmlTypeInfo, n: number): number {
  return (n / type.blockSize) * type.typeSize;
}

/** Quantizes float32 values to Q8_0 blocks (n must be a multiple of 32). */
export function quantizeQ8_0(x: ArrayLike<number>): Uint8Array {
  const nb = x.length / QK8_0;
  if (!Number.isInteger(nb)) throw new RangeError(`quantizeQ8_0: ${x.length} elements is not a multiple of ${QK8_0}`);
  const out = new Uint8Array(nb * 34);
  const view = new DataView(out.buffer);
  for (let b = 0; b < nb; b++) {
    const base = b * QK8_0;
    let amax = 0;
    for (let j = 0; j < QK8_0; j++) amax = Math.max(amax, Math.abs(x[base + j]!));
    const d = Math.fround(amax / 127);
    const id = d ? Math.fround(1 / d) : 0;
    view.setUint16(b * 34, f32ToF16(d), true);
    for (let j = 0; j < QK8_0; j++) {
      const v = Math.fround(x[base + j]! * id);
      view.setInt8(b * 34 + 2 + j, Math.sign(v) * Math.floor(Math.abs(v) + 0.5)); // roundf: half away from zero
    }
  }
  return out;
}

/** Q8_0 blocks → float32 values. */
export function dequantizeQ8_0(blocks: Uint8Array, n: number): Float32Array {
  const out = new Float32Array(n);
  const view = new DataView(blocks.buffer, blocks.byteOffset, blocks.byteLength);
  for (let b = 0; b < n / QK8_0; b++) {
    const d = f16ToF32(view.getUint16(b * 34, true));
    for (let j = 0; j < QK8_0; j++) out[b * QK8_0 + j] = view.getInt8(b * 34 + 2 + j) * d;
  }
  return out;
}

/** Quantizes float32 values to Q4_0 blocks (n must be a multiple of 32). */
export function quantizeQ4_0(x: ArrayLike<number>): Uint8Array {
  const nb = x.length / QK4_0;
  if (!Number.isInteger(nb)) throw new RangeError(`quantizeQ4_0: ${x.length} elements is not a multiple of ${QK4_0}`);
  const out = new Uint8Array(nb * 18);
  const view = new DataView(out.buffer);
  const half = QK4_0 / 2;
  for (let b = 0; b < nb; b++) {
    const base = b * QK4_0;
    let amax = 0;
    let max = 0;
    for (let j = 0; j < QK4_0; j++) {
      const v = x[base + j]!;
      if (amax < Math.abs(v)) {
        amax = Math.abs(v);
        max = v;
      }
    }
    const d = Math.fround(max / -8);
    const id = d ? Math.fround(1 / d) : 0;
    view.setUint16(b * 18, f32ToF16(d), true);
    for (let j = 0; j < half; j++) {
      const x0 = Math.fround(x[base + j]! * id);
      const x1 = Math.fround(x[base + half + j]! * id);
      const q0 = Math.min(15, Math.trunc(Math.fround(x0 + 8.5)));
      const q1 = Math.min(15, Math.trunc(Math.fround(x1 + 8.5)));
      out[b * 18 + 2 + j] = q0 | (q1 << 4);
    }
  }
  return out;
}

/** Q4_0 blocks → float32 values. */
export function dequantizeQ4_0(blocks: Uint8Array, n: number): Float32Array {
  const out = new Float32Array(n);
  const view = new DataView(blocks.buffer, blocks.byteOffset, blocks.byteLength);
  const half = QK4_0 / 2;
  for (let b = 0; b < n / QK4_0; b++) {
    const d = f16ToF32(view.getUint16(b * 18, true));
    for (let j = 0; j < half; j++) {
      const q = blocks[b * 18 + 2 + j]!;
      out[b * QK4_0 + j] = ((q & 0x0f) - 8) * d;
      out[b * QK4_0 + half + j] = ((q >> 4) - 8) * d;
    }
  }
  return out;
}
