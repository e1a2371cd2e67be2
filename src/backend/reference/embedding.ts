/** Embedding gather (out[i] = weight[ids[i]]) and its scatter-add backward over [V, C] tables. */
import type { DType, Storage } from "../../core/dtype.ts";
import { GraftError } from "../../core/errors.ts";
import { addInto, checkFloatStorage, checkLength, checkSizes, readable } from "./storage.ts";

function checkIds(op: string, ids: Int32Array, N: number, V: number): void {
  checkLength(op, "ids", ids, N, `[N=${N}]`);
  for (let i = 0; i < N; i++) {
    const id = ids[i]!;
    if (!(id >= 0 && id < V)) throw new GraftError(`${op}: id ${id} at position ${i} is out of range for a vocabulary of V=${V}`);
  }
}

export function embedding(weight: Storage, ids: Int32Array, out: Storage, dtype: DType, N: number, V: number, C: number): void {
  const op = "embedding";
  checkSizes(op, { N, V, C });
  checkFloatStorage(op, "weight", weight, dtype, V * C, `[V=${V}, C=${C}]`);
  checkFloatStorage(op, "out", out, dtype, N * C, `[N=${N}, C=${C}]`);
  checkIds(op, ids, N, V);
  for (let i = 0; i < N; i++) {
    const row = ids[i]! * C;
    // Same typed array type on both sides: copies the raw values (bf16 bits included).
    (out as Float32Array).set((weight as Float32Array).subarray(row, row + C), i * C);
  }
}

/** gWeight[ids[i], :] += gOut[i, :]; each touched row gets its summed gradient added once. */
export function embeddingBackward(gOut: Storage, ids: Int32Array, gWeight: Storage, dtype: DType, N: number, V: number, C: number): void {
  const op = "embeddingBackward";
  checkSizes(op, { N, V, C });
  checkFloatStorage(op, "gOut", gOut, dtype, N * C, `[N=${N}, C=${C}]`);
  checkFloatStorage(op, "gWeight", gWeight, dtype, V * C, `[V=${V}, C=${C}]`);
  checkIds(op, ids, N, V);
  const g = readable(gOut, dtype, N * C);
  const rows = new Map<number, Float64Array>();
  for (let i = 0; i < N; i++) {
    const id = ids[i]!;
    let acc = rows.get(id);
    if (!acc) {
      acc = new Float64Array(C);
      rows.set(id, acc);
    }
    const o = i * C;
    for (let j = 0; j < C; j++) acc[j] += g[o + j]!;
  }
  for (const [id, acc] of rows) addInto(gWeight, dtype, acc, id * C);
}
