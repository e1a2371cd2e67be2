/**
 * Where a decode token's time goes: builds a Qwen2.5-0.5B-shaped model (random weights), prefills a
 * prompt, then times greedy decode steps with every Backend method wrapped in a timer (GEMV/qmatmul
 * split by shape). Prints per-op totals per token and the time outside the backend (JS, allocation).
 *
 * --ab: no timers; alternates blocks of 8 fused and 8 unfused steps (ForwardOptions.fused) and prints
 * the median step of each, an A/B in one process.
 *
 *   node --import tsx bench/profileDecode.ts [--dtype bfloat16|float32|q8_0|q4_0] [--prompt 128] [--steps 32] [--layers 24] [--unfused] [--ab]
 */
import { parseArgs } from "node:util";
import "../src/backend/index.ts";
import { getBackend, setDefaultBackend } from "../src/backend/registry.ts";
import type { DType } from "../src/core/dtype.ts";
import { GenerationRun } from "../src/generation/index.ts";
import { type CausalLM, createModel } from "../src/models/index.ts";
import { quantizeModel } from "../src/quant/index.ts";
import { QWEN25_05B } from "./shapes.ts";

const { values } = parseArgs({
  options: {
    dtype: { type: "string" },
    prompt: { type: "string" },
    steps: { type: "string" },
    layers: { type: "string" },
    unfused: { type: "boolean" },
    ab: { type: "boolean" },
  },
});
const variant = values.dtype ?? "bfloat16";
const promptLen = Number(values.prompt ?? 128);
const steps = Number(values.steps ?? 32);
const config = { ...QWEN25_05B, num_hidden_layers: Number(values.layers ?? QWEN25_05B.num_hidden_layers) };

setDefaultBackend("native");
const be = getBackend() as unknown as Record<string, unknown>;
const totals = new Map<string, number>();
const counts = new Map<string, number>();
let on = false;
function label(name: string, args: unknown[]): string {
  if (name === "gemm") {
    const g = args[5] as { m: number; n: number; k: number; batch: number };
    return `gemm ${args[3]} ${g.batch}x[${g.m}x${g.n}x${g.k}]`;
  }
  if (name === "qmatmul") {
    const g = args[5] as { m: number; n: number; k: number; type: string };
    return `qmatmul ${g.type} [${g.m}x${g.n}x${g.k}]`;
  }
  if (name === "unary" || name === "binary" || name === "reduce") return `${name} ${args[0] as string}`;
  return name;
}
for (const name of Object.getOwnPropertyNames(Object.getPrototypeOf(be))) {
  const f = be[name];
  if (name === "constructor" || typeof f !== "function") continue;
  be[name] = (...args: unknown[]) => {
    if (!on) return (f as (...a: unknown[]) => unknown).apply(be, args);
    const t0 = performance.now();
    const r = (f as (...a: unknown[]) => unknown).apply(be, args);
    const k = label(name, args);
    totals.set(k, (totals.get(k) ?? 0) + performance.now() - t0);
    counts.set(k, (counts.get(k) ?? 0) + 1);
    return r;
  };
}

const t0 = performance.now();
const dtype: DType = variant === "float32" || variant.startsWith("q") ? "float32" : (variant as DType);
const model = createModel(config, { seed: 0, dtype }) as CausalLM;
if (variant === "q8_0" || variant === "q4_0") quantizeModel(model, variant);
model.eval();
console.log(`built ${config.num_hidden_layers}-layer ${variant} model in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
const prompt = Array.from({ length: promptLen }, (_, i) => (i * 7919 + 13) % config.vocab_size);
if (values.ab) {
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1]!;
  const times: Record<"fused" | "unfused", number[]> = { fused: [], unfused: [] };
  const runs = {
    fused: new GenerationRun(model, null, [prompt], { maxNewTokens: steps + 2, eosTokenIds: [] }),
    unfused: new GenerationRun(model, null, [prompt], { maxNewTokens: steps + 2, eosTokenIds: [], fused: false }),
  };
  for (const r of Object.values(runs)) {
    r.step();
    r.step();
  }
  for (let block = 0; block < Math.ceil(steps / 8); block++) {
    for (const k of ["fused", "unfused"] as const) {
      for (let i = 0; i < 8 && !runs[k].done; i++) {
        const t0 = performance.now();
        runs[k].step();
        times[k].push(performance.now() - t0);
      }
    }
  }
  const f = median(times.fused);
  const u = median(times.unfused);
  console.log(`median decode step: fused ${f.toFixed(2)} ms (${(1000 / f).toFixed(1)} tokens/s), unfused ${u.toFixed(2)} ms (${(1000 / u).toFixed(1)} tokens/s): ${(u / f).toFixed(2)}x`);
  process.exit(0);
}
const run = new GenerationRun(model, null, [prompt], { maxNewTokens: steps + 2, eosTokenIds: [], fused: !values.unfused });
run.step();
run.step(); // warm-up decode step
on = true;
const s0 = performance.now();
for (let i = 0; i < steps; i++) run.step();
const ms = (performance.now() - s0) / steps;
on = false;
const rows = [...totals.entries()].map(([k, t]) => [k, t / steps, (counts.get(k) ?? 0) / steps] as const).sort((a, b) => b[1] - a[1]);
const inBackend = rows.reduce((s, r) => s + r[1], 0);
console.log(`decode step ${ms.toFixed(2)} ms = ${(1000 / ms).toFixed(1)} tokens/s; backend ${inBackend.toFixed(2)} ms, outside backend ${(ms - inBackend).toFixed(2)} ms`);
for (const [k, t, c] of rows) if (t >= 0.05) console.log(`  ${t.toFixed(2).padStart(7)} ms ${((100 * t) / ms).toFixed(1).padStart(5)}%  ${c.toFixed(0).padStart(4)}x  ${k}`);
