/**
 * A weight matrix [N, K] quantized to ggml's Q8_0 or Q4_0 blocks of 32 along K, held as the two
 * arrays Backend.qmatmul reads: `qs` (the blocks' quants) and `scales` (their float16 d). Quantizing
 * uses formats/ggmlQuant's reference quantizers, so every block is bit-identical to llama.cpp's and
 * converts to and from GGUF tensor data without loss (toGgmlBlocks / fromGgmlBlocks).
 */
import type { QuantType } from "../backend/Backend.ts";
import { allocBytes } from "../core/dtype.ts";
import { fmtShape } from "../core/errors.ts";
import { QK8_0, dequantizeQ4_0, dequantizeQ8_0, quantizeQ4_0, quantizeQ8_0 } from "../formats/ggmlQuant.ts";
import { Tensor, noGrad } from "../tensor/index.ts";
import { QuantError } from "./QuantError.ts";

export type { QuantType } from "../backend/Backend.ts";
export const QUANT_TYPES: readonly QuantType[] = ["q8_0", "q4_0"];
export const QUANT_BLOCK = QK8_0;

export interface QuantizedWeight {
  type: QuantType;
  /** Rows (out_features). */
  n: number;
  /** Columns (in_features), a multiple of 32. */
  k: number;
  /** q8_0: int8 [n, k] as bytes; q4_0: [n, k / 2] nibble pairs (see Backend.QuantType). */
  qs: Uint8Array;
  /** float16 bits [n, k / 32]. */
  scales: Uint16Array;
}

/** Bytes of one ggml block (32 values) of a type. */
const BLOCK_BYTES: Record<QuantType, number> = { q8_0: 34, q4_0: 18 };

export function isQuantType(s: string): s is QuantType {
  return (QUANT_TYPES as readonly string[]).includes(s);
}

/** Bytes a quantized weight occupies (quants + scales): what one matvec streams. */
export function quantizedBytes(w: QuantizedWeight): number {
  return w.qs.byteLength + w.scales.byteLength;
}

/** Rows quantized per call of the ggml quantizer (bounds its temporary block array). */
const ROWS_PER_CHUNK = 1024;

/** Quantizes a 2-D float tensor [N, K] (K a multiple of 32) to `type`. `what` names it in errors. */
export function quantizeWeight(w: Tensor, type: QuantType, what = "weight"): QuantizedWeight {
  if (!isQuantType(type)) throw new QuantError(`quantize ${what}: unknown type "${String(type)}" (expected ${QUANT_TYPES.join(" or ")})`);
  if (w.ndim !== 2) throw new QuantError(`quantize ${what}: expected a 2-D weight [out, in], got ${fmtShape(w.shape)}`);
  const [n, k] = w.shape as [number, number];
  if (k % QUANT_BLOCK !== 0) throw new QuantError(`quantize ${what}: in_features ${k} is not a multiple of the block size ${QUANT_BLOCK}`);
  if (w.dtype !== "float32" && w.dtype !== "bfloat16" && w.dtype !== "float64") {
    throw new QuantError(`quantize ${what}: expected a floating point weight, got ${w.dtype}`);
  }
  const data = noGrad(() => (w.dtype === "float32" ? w : w.to("float32")).data()) as Float32Array;
  const nb = k / QUANT_BLOCK;
  const per = QUANT_BLOCK / (type === "q8_0" ? 1 : 2); // quant bytes per block
  const qs = allocBytes(n * nb * per);
  const scales = new Uint16Array(n * nb);
  const bb = BLOCK_BYTES[type];
  for (let r0 = 0; r0 < n; r0 += ROWS_PER_CHUNK) {
    const r1 = Math.min(n, r0 + ROWS_PER_CHUNK);
    const src = data.subarray(r0 * k, r1 * k);
    const blocks = type === "q8_0" ? quantizeQ8_0(src) : quantizeQ4_0(src);
    splitBlocks(blocks, bb, per, r0 * nb, (r1 - r0) * nb, qs, scales);
  }
  return { type, n, k, qs, scales };
}

function splitBlocks(blocks: Uint8Array, bb: number, per: number, b0: number, count: number, qs: Uint8Array, scales: Uint16Array): void {
  for (let b = 0; b < count; b++) {
    const o = b * bb;
    scales[b0 + b] = blocks[o]! | (blocks[o + 1]! << 8);
    qs.set(blocks.subarray(o + 2, o + bb), (b0 + b) * per);
  }
}

/** The weight as ggml block bytes (row-major blocks, as a GGUF tensor of this type stores them). */
export function toGgmlBlocks(w: QuantizedWeight): Uint8Array {
  const bb = BLOCK_BYTES[w.type];
  const per = bb - 2;
  const nblocks = w.scales.length;
  const out = new Uint8Array(nblocks * bb);
  for (let b = 0; b < nblocks; b++) {
    out[b * bb] = w.scales[b]! & 0xff;
    out[b * bb + 1] = w.scales[b]! >> 8;
    out.set(w.qs.subarray(b * per, (b + 1) * per), b * bb + 2);
  }
  return out;
}

/** A weight [n, k] from ggml block bytes of `type` (e.g. a GGUF tensor's data; dims reversed there). */
export function fromGgmlBlocks(blocks: Uint8Array, type: QuantType, n: number, k: number, what = "weight"): QuantizedWeight {
  if (!isQuantType(type)) throw new QuantError(`${what}: unknown type "${String(type)}"`);
  if (k % QUANT_BLOCK !== 0) throw new QuantError(`${what}: k = ${k} is not a multiple of ${QUANT_BLOCK}`);
  const bb = BLOCK_BYTES[type];
  const nb = (n * k) / QUANT_BLOCK;
  if (blocks.length !== nb * bb) throw new QuantError(`${what}: ${blocks.length} bytes of ${type} blocks, expected ${nb * bb} for [${n}, ${k}]`);
  const per = bb - 2;
  const qs = allocBytes(nb * per);
  const scales = new Uint16Array(nb);
  splitBlocks(blocks, bb, per, 0, nb, qs, scales);
  return { type, n, k, qs, scales };
}

/** The float32 values [n, k] the quantized weight stands for. */
export function dequantizeWeight(w: QuantizedWeight): Tensor {
  const blocks = toGgmlBlocks(w);
  const data = w.type === "q8_0" ? dequantizeQ8_0(blocks, w.n * w.k) : dequantizeQ4_0(blocks, w.n * w.k);
  return new Tensor(data, "float32", [w.n, w.k]);
}
