/**
 * Where a LoRA-style SFT step's time goes: builds a Qwen2.5-0.5B-shaped model (random weights) once,
 * freezes every parameter except the q_proj/v_proj weights (backward flows through all layers, as
 * with LoRA on q/v), then times forward + causalLMLoss + backward steps with every Backend method
 * wrapped in a timer (GEMMs split by shape class). Prints per-op totals (median step) and tokens/s.
 *
 *   node --import tsx bench/profileStep.ts [--dtype bfloat16|float32] [--seq 256] [--steps 3] [--layers 24] [--zeroed] [--upcast-logits]
 *
 * --upcast-logits: the forward returns float32 logits (the default of CausalLM.forward) instead of the
 * compute dtype's (upcastLogits: false, what training uses), to A/B the [B, T, V] float32 copy.
 */
import { parseArgs } from "node:util";
import "../src/backend/index.ts";
import type { Backend } from "../src/backend/Backend.ts";
import { getBackend } from "../src/backend/registry.ts";
import type { DType } from "../src/core/dtype.ts";
import { Generator } from "../src/core/rng.ts";
import { type CausalLM, causalLMLoss, createModel } from "../src/models/index.ts";
import * as T from "../src/tensor/index.ts";
import { QWEN25_05B } from "./shapes.ts";

const { values } = parseArgs({
  options: {
    dtype: { type: "string" },
    seq: { type: "string" },
    steps: { type: "string" },
    layers: { type: "string" },
    zeroed: { type: "boolean" },
    "upcast-logits": { type: "boolean" },
  },
});
const dtype = (values.dtype ?? "bfloat16") as DType;
const seq = Number(values.seq ?? 256);
const steps = Number(values.steps ?? 3);
const config = { ...QWEN25_05B, num_hidden_layers: Number(values.layers ?? QWEN25_05B.num_hidden_layers) };

const be = getBackend() as unknown as Record<string, unknown>;
const totals = new Map<string, number>();
const counts = new Map<string, number>();
function label(name: string, args: unknown[]): string {
  if (name === "gemm") {
    const g = args[5] as { m: number; n: number; k: number; batch: number; transA: boolean; transB: boolean };
    return `gemm ${args[3]}->${args[4]} ${g.batch}x[${g.m}x${g.n}x${g.k}]${g.transA ? "T" : "N"}${g.transB ? "T" : "N"}`;
  }
  if (name === "copy") {
    const [s, d] = args as [{ dtype: string; shape: readonly number[] }, { dtype: string }];
    return `copy ${s.dtype}->${d.dtype} [${s.shape.join(",")}]`;
  }
  if (name === "unary" || name === "binary" || name === "unaryBackward" || name === "reduce") return `${name} ${args[0] as string}`;
  return name;
}
for (const name of Object.getOwnPropertyNames(Object.getPrototypeOf(be))) {
  const f = be[name];
  if (name === "constructor" || typeof f !== "function") continue;
  be[name] = (...args: unknown[]) => {
    const t0 = performance.now();
    const r = (f as (...a: unknown[]) => unknown).apply(be, args);
    const k = label(name, args);
    totals.set(k, (totals.get(k) ?? 0) + performance.now() - t0);
    counts.set(k, (counts.get(k) ?? 0) + 1);
    return r;
  };
}
void (be as unknown as Backend);
// Allocation (zero-filled typed arrays) is timed too: it is most of what runs outside the backend.
// --zeroed: odd steps allocate kernel outputs zero-filled (Tensor.uninit → Tensor.empty), an A/B in one process.
const empty = T.Tensor.empty.bind(T.Tensor);
const uninit = T.Tensor.uninit.bind(T.Tensor);
let zeroAll = false;
const timedAlloc = (name: string, f: (shape: readonly number[], dt?: DType) => T.Tensor) => (shape: readonly number[], dt?: DType) => {
  const t0 = performance.now();
  const r = f(shape, dt);
  totals.set(name, (totals.get(name) ?? 0) + performance.now() - t0);
  counts.set(name, (counts.get(name) ?? 0) + 1);
  return r;
};
T.Tensor.empty = timedAlloc("(alloc) Tensor.empty", empty);
T.Tensor.uninit = timedAlloc("(alloc) Tensor.uninit", (shape, dt) => (zeroAll ? empty(shape, dt) : uninit(shape, dt)));

let t0 = performance.now();
const model = createModel(config, { seed: 0, dtype }) as CausalLM;
console.log(`built ${config.num_hidden_layers}-layer ${dtype} model in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
for (const [name, p] of model.namedParameters()) p.requiresGrad = /\.(q_proj|v_proj)\.weight$/.test(name);
const ids = T.randint(0, config.vocab_size, [1, seq], { generator: new Generator(1), dtype: "int32" });

const stepTimes: number[] = [];
const perStep: Map<string, number>[] = [];
const zeroedTimes: number[] = [];
for (let i = 0; i <= (values.zeroed ? 2 * steps : steps); i++) {
  zeroAll = values.zeroed === true && i % 2 === 1;
  totals.clear();
  counts.clear();
  const pf0 = process.resourceUsage().minorPageFault;
  t0 = performance.now();
  const loss = causalLMLoss(model.forward(ids, { upcastLogits: values["upcast-logits"] === true }), ids);
  const tf = performance.now();
  loss.backward();
  const v = loss.item();
  for (const p of model.parameters()) p.grad = null;
  const ms = performance.now() - t0;
  console.log(`step ${i}${i === 0 ? " (warmup)" : zeroAll ? " (zeroed outputs)" : ""}: ${ms.toFixed(0)} ms (forward ${(tf - t0).toFixed(0)}), loss ${v.toFixed(4)}, ${process.resourceUsage().minorPageFault - pf0} page faults`);
  if (zeroAll) zeroedTimes.push(ms);
  else if (i > 0) {
    stepTimes.push(ms);
    perStep.push(new Map(totals));
  }
}
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1]!;
const ms = median(stepTimes);
const keys = [...new Set(perStep.flatMap((m) => [...m.keys()]))];
const rows = keys.map((k) => [k, median(perStep.map((m) => m.get(k) ?? 0)), counts.get(k) ?? 0] as const).sort((a, b) => b[1] - a[1]);
if (zeroedTimes.length) console.log(`\nzeroed-output steps: median ${median(zeroedTimes).toFixed(0)} ms vs ${ms.toFixed(0)} ms with Tensor.uninit`);
const inBackend = rows.reduce((s, r) => s + (r[0].startsWith("(alloc)") ? 0 : r[1]), 0);
console.log(`\nmedian step ${ms.toFixed(0)} ms = ${(seq / (ms / 1000)).toFixed(0)} tokens/s; backend ${inBackend.toFixed(0)} ms, outside backend (JS, allocation, GC) ${(ms - inBackend).toFixed(0)} ms; peak RSS ${(process.resourceUsage().maxRSS / 1024).toFixed(0)} MB`);
for (const [k, t, c] of rows) if (t >= 0.5) console.log(`  ${t.toFixed(1).padStart(8)} ms ${((100 * t) / ms).toFixed(1).padStart(5)}%  ${String(c).padStart(4)}x  ${k}`);
