/** Shared helpers for the format tests: temp dirs, sample tensors of every dtype, byte comparison. */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import type { TensorMap } from "../../src/formats/index.ts";

export function tmpDir(label: string): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), `graft-${label}-`));
}

/** Raw bytes of a typed array, for bit-exact comparison (NaN payloads, -0). */
export function bytesOf(a: ArrayBufferView): Buffer {
  return Buffer.from(a.buffer, a.byteOffset, a.byteLength);
}

/** One tensor of every dtype, with awkward values (NaN payloads, -0, ±Inf, extremes). */
export function everyDtype(): TensorMap {
  const f32 = Float32Array.from([0, -0, 1.5, -3.25, Infinity, -Infinity, 3.4028234663852886e38, 1e-45]);
  new Uint32Array(f32.buffer)[7] = 0x7fc00123; // NaN with payload
  const f64 = Float64Array.from([Math.PI, -0, Number.MAX_VALUE, Number.MIN_VALUE, NaN, -1e300]);
  return {
    f64: { dtype: "float64", shape: [2, 3], data: f64 },
    f32: { dtype: "float32", shape: [2, 2, 2], data: f32 },
    bf16: { dtype: "bfloat16", shape: [5], data: Uint16Array.from([0x3f80, 0x8000, 0x7f80, 0x7fc1, 0x0001]) },
    f16: { dtype: "float16", shape: [2, 2], data: Uint16Array.from([0x3c00, 0x8000, 0x7bff, 0x0001]) },
    i64: { dtype: "int64", shape: [3], data: BigInt64Array.from([-(2n ** 63n), 2n ** 63n - 1n, 0n]) },
    i32: { dtype: "int32", shape: [1, 3], data: Int32Array.from([-(2 ** 31), 2 ** 31 - 1, 7]) },
    i16: { dtype: "int16", shape: [2], data: Int16Array.from([-32768, 32767]) },
    i8: { dtype: "int8", shape: [2], data: Int8Array.from([-128, 127]) },
    u8: { dtype: "uint8", shape: [3], data: Uint8Array.from([0, 128, 255]) },
    bool: { dtype: "bool", shape: [3], data: Uint8Array.from([1, 0, 1]) },
    scalar: { dtype: "float32", shape: [], data: Float32Array.from([42]) },
    empty: { dtype: "float32", shape: [0, 4], data: new Float32Array(0) },
  };
}

/**
 * Runs `attempt` on corrupted copies of `valid` (random byte flips, random truncations) for at most
 * `iterations` rounds or `ms` milliseconds; every outcome must be success or an error `isNamed` accepts.
 */
export function fuzz(valid: Uint8Array, attempt: (bytes: Uint8Array) => void, isNamed: (e: unknown) => boolean, opts: { iterations?: number; ms?: number; seed?: number; headerBytes?: number } = {}): { ok: number; named: number } {
  const iterations = opts.iterations ?? 300;
  const deadline = Date.now() + (opts.ms ?? 2000);
  let seed = opts.seed ?? 12345;
  const rand = () => {
    seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
    return seed / 4294967296;
  };
  const span = Math.min(valid.length, opts.headerBytes ?? valid.length);
  let ok = 0;
  let named = 0;
  for (let i = 0; i < iterations && Date.now() < deadline; i++) {
    let bytes = valid.slice();
    const mode = i % 4;
    if (mode === 3) bytes = bytes.slice(0, Math.floor(rand() * valid.length));
    else {
      const flips = 1 + Math.floor(rand() * (mode === 2 ? 16 : 3));
      for (let f = 0; f < flips; f++) {
        const at = Math.floor(rand() * span);
        bytes[at] = mode === 1 ? 0xff : Math.floor(rand() * 256);
      }
    }
    try {
      attempt(bytes);
      ok++;
    } catch (e) {
      if (!isNamed(e)) throw new Error(`fuzz round ${i}: unnamed ${(e as Error)?.constructor?.name}: ${(e as Error)?.message}`, { cause: e });
      named++;
    }
  }
  return { ok, named };
}
