/**
 * SwiGLU (the Llama / Qwen2 MLP gate): out = silu(gate) * up over n dense elements, and its
 * backward gGate = gOut * up * silu'(gate), gUp = gOut * silu(gate), in float64 (rounded once to
 * the storage dtype). silu(x) = x * sigmoid(x), silu'(x) = s * (1 + x * (1 - s)).
 */
import type { DType, Storage } from "../../core/dtype.ts";
import { sigmoid } from "./math.ts";
import { checkFloatStorage, checkSizes, commit, readable, writable } from "./storage.ts";

function check(op: string, dtype: DType, n: number, bufs: Record<string, Storage>): void {
  checkSizes(op, { n });
  for (const [name, s] of Object.entries(bufs)) checkFloatStorage(op, name, s, dtype, n, `[n=${n}]`);
}

export function swiglu(gate: Storage, up: Storage, out: Storage, dtype: DType, n: number): void {
  check("swiglu", dtype, n, { gate, up, out });
  const g = readable(gate, dtype, n);
  const u = readable(up, dtype, n);
  const o = writable(out, dtype, n);
  for (let i = 0; i < n; i++) o[i] = g[i]! * sigmoid(g[i]!) * u[i]!;
  commit(o, out, dtype, n);
}

export function swigluBackward(gate: Storage, up: Storage, gOut: Storage, gGate: Storage, gUp: Storage, dtype: DType, n: number): void {
  check("swigluBackward", dtype, n, { gate, up, gOut, gGate, gUp });
  const g = readable(gate, dtype, n);
  const u = readable(up, dtype, n);
  const go = readable(gOut, dtype, n);
  const gg = writable(gGate, dtype, n);
  const gu = writable(gUp, dtype, n);
  for (let i = 0; i < n; i++) {
    const x = g[i]!;
    const s = sigmoid(x);
    gg[i] = go[i]! * u[i]! * s * (1 + x * (1 - s));
    gu[i] = go[i]! * x * s;
  }
  commit(gg, gGate, dtype, n);
  commit(gu, gUp, dtype, n);
}
