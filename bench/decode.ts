/**
 * Decode speed of a Qwen2.5-0.5B-shaped model (random weights, no download): greedy generation of
 * 128 new tokens after a 128-token prompt, in float32, bfloat16, q8_0 and q4_0, each against the
 * memory-bandwidth bound measured in the same run — bandwidth (a streaming read of a 1 GiB buffer
 * with every pool thread) divided by the weight bytes one decode step streams (every Linear and the
 * output head; the embedding lookup reads one row). Prints tokens/s and the ratio to that bound, both
 * over the whole run and from the median step (the bound is a best-of probe; the median step is the
 * decode's rate with the steps that another process or the host stalled set aside).
 * Decode steps run fused (one Backend.decoderStack call for all layers); bfloat16 is timed unfused too
 * (every op separately, as before the fused step), the baseline measured in the same run.
 * Run alone: `node --import tsx bench/decode.ts [--variants bfloat16,q8_0]` (GRAFT_NATIVE_PATH picks a
 * dev add-on).
 */
import { parseArgs } from "node:util";
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
import "../src/backend/index.ts";
import { loadAddon } from "../src/backend/native/addon.ts";
import { getBackend, setDefaultBackend } from "../src/backend/registry.ts";
import { allocBytes, bytesPerElement } from "../src/core/dtype.ts";
import { GenerationRun } from "../src/generation/index.ts";
import { type CausalLM, createModel, modelEntry, qwen2Config } from "../src/models/index.ts";
import { Linear, type Module } from "../src/nn/index.ts";
import { QuantizedLinear, quantizeModel } from "../src/quant/index.ts";
import { QWEN25_05B } from "./shapes.ts";

export interface DecodeRow {
  variant: "float32" | "bfloat16" | "q8_0" | "q4_0";
  /** false: every op run separately (ForwardOptions.fused = false), the baseline of the fused decode step. */
  fused: boolean;
  prefillMs: number;
  /** New tokens over the decode's wall time (every step, interruptions included). */
  tokensPerSec: number;
  /** 1 / the median step time: the steady rate, without the steps another process or the host stalled. */
  medianTokensPerSec: number;
  /** Weight bytes one decode step streams. */
  bytesPerToken: number;
  /** Bandwidth measured around this variant's run, GB/s. */
  bandwidthGBs: number;
  boundTokensPerSec: number;
}

export interface DecodeBenchResult {
  /** Best bandwidth seen in the run, GB/s. */
  bandwidthGBs: number;
  threads: number;
  rows: DecodeRow[];
}

/** Bytes of weights a decode step reads: every Linear / QuantizedLinear, plus a tied head's embedding. */
export function decodeBytesPerToken(model: Module): number {
  let bytes = 0;
  let hasHead = false;
  for (const [path, m] of model.namedModules()) {
    if (m instanceof Linear) bytes += m.weight.numel * bytesPerElement(m.weight.dtype);
    else if (m instanceof QuantizedLinear) bytes += m.weightBytes;
    if (path === "lm_head" && (m instanceof Linear || m instanceof QuantizedLinear)) hasHead = true;
  }
  if (!hasHead) {
    const w = (model as unknown as { model: { embed_tokens: { weight: { numel: number; dtype: "float32" } } } }).model.embed_tokens.weight;
    bytes += w.numel * bytesPerElement(w.dtype);
  }
  return bytes;
}

let probeBuffer: Uint8Array | null = null;

/** Best-of-`reps` bandwidth of a streaming read over `bytes`, GB/s (native, every pool thread). */
export function measureBandwidth(bytes = 1 << 30, reps = 5): number {
  const addon = loadAddon();
  getBackend("native"); // sets the large-array allocator
  // Memory as large tensors get it (allocBytes: huge pages where the native backend provides them),
  // so the bound is the bandwidth the weights could be read at. One buffer serves every probe: a
  // fresh gigabyte per probe would be freed by a later GC, in the middle of a timed decode.
  if (probeBuffer === null || probeBuffer.length !== bytes) {
    probeBuffer = allocBytes(bytes);
    probeBuffer.fill(1);
  }
  const s = addon["streamRead"]!(probeBuffer, reps) as number;
  return bytes / s / 1e9;
}

/**
 * A full garbage collection, where V8 lets the process ask for one: what earlier variants left (a
 * model, its float32 copy) is then freed before a timed run instead of during it (freeing gigabytes
 * of weights takes the memory bus and stalls both cores for tens of milliseconds).
 */
function collectGarbage(): void {
  setFlagsFromString("--expose-gc");
  const gc = runInNewContext("gc") as (() => void) | undefined;
  if (typeof gc === "function") gc();
}

function timeDecode(model: CausalLM, prompt: number[], newTokens: number, fused = true): { prefillMs: number; tokensPerSec: number; medianTokensPerSec: number } {
  const run = new GenerationRun(model, null, [prompt], { maxNewTokens: newTokens, eosTokenIds: [], fused });
  const t0 = performance.now();
  run.step(); // prefill + first token
  const t1 = performance.now();
  const steps: number[] = [];
  for (let last = t1; !run.done; ) {
    run.step();
    const now = performance.now();
    steps.push(now - last);
    last = now;
  }
  const t2 = performance.now();
  const sorted = [...steps].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  const median = sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
  return { prefillMs: t1 - t0, tokensPerSec: steps.length / ((t2 - t1) / 1e3), medianTokensPerSec: 1e3 / median };
}

export function runDecodeBench(
  opts: { promptTokens?: number; newTokens?: number; log?: (s: string) => void; /** Default: all. */ variants?: readonly DecodeRow["variant"][] } = {},
): DecodeBenchResult {
  setDefaultBackend("native");
  const log = opts.log ?? (() => {});
  const promptLen = opts.promptTokens ?? 128;
  const newTokens = opts.newTokens ?? 128;
  const prompt = Array.from({ length: promptLen }, (_, i) => (i * 7919 + 13) % QWEN25_05B.vocab_size);
  // The bandwidth is measured again beside each variant (best of the two probes around it), so a
  // machine whose load changes during the run still gets a bound from the same conditions.
  let bandwidthGBs = measureBandwidth();
  log(`memory bandwidth (1 GiB streaming read, ${loadAddon().info().threads} threads): ${bandwidthGBs.toFixed(1)} GB/s`);
  const rows: DecodeRow[] = [];
  const want = (v: DecodeRow["variant"]) => opts.variants === undefined || opts.variants.includes(v);
  const measure = (variant: DecodeRow["variant"], model: CausalLM, fused = true) => {
    if (!want(variant)) return;
    model.eval();
    timeDecode(model, prompt.slice(0, 8), 4, fused); // warm-up
    collectGarbage();
    const before = measureBandwidth(1 << 30, 3);
    const { prefillMs, tokensPerSec, medianTokensPerSec } = timeDecode(model, prompt, newTokens, fused);
    const bw = Math.max(before, measureBandwidth(1 << 30, 3));
    bandwidthGBs = Math.max(bandwidthGBs, bw);
    const bytesPerToken = decodeBytesPerToken(model);
    const row = { variant, fused, prefillMs, tokensPerSec, medianTokensPerSec, bytesPerToken, bandwidthGBs: bw, boundTokensPerSec: (bw * 1e9) / bytesPerToken };
    rows.push(row);
    log(fmtRow(row));
  };
  const t0 = performance.now();
  // Packed, as loadModel leaves a checkpoint's weights (Module.packParameters).
  const base = createModel(QWEN25_05B, { seed: 0 }).packParameters() as CausalLM;
  log(`built the 0.5B-shaped model (${(base.numParameters() / 1e6).toFixed(0)} M parameters) in ${((performance.now() - t0) / 1e3).toFixed(1)} s`);
  measure("float32", base);
  for (const type of ["q8_0", "q4_0"] as const) {
    if (!want(type)) continue;
    const q = modelEntry("qwen2").build(qwen2Config(QWEN25_05B), {}) as CausalLM;
    q.loadStateDict(base.stateDict());
    quantizeModel(q, type);
    measure(type, q);
  }
  base.to("bfloat16");
  measure("bfloat16", base);
  measure("bfloat16", base, false); // the same model, every op separately: the fused step's baseline
  return { bandwidthGBs, threads: loadAddon().info().threads, rows };
}

export function fmtRow(r: DecodeRow): string {
  const pct = (tps: number) => `${((100 * tps) / r.boundTokensPerSec).toFixed(0)}%`;
  return (
    `decode ${(r.variant + (r.fused ? "" : " unfused")).padEnd(16)}: ${r.tokensPerSec.toFixed(1).padStart(5)} tokens/s = ${pct(r.tokensPerSec)} ` +
    `(median token ${r.medianTokensPerSec.toFixed(1)}/s = ${pct(r.medianTokensPerSec)}) of the bandwidth bound ` +
    `${r.boundTokensPerSec.toFixed(1)} = ${r.bandwidthGBs.toFixed(1)} GB/s / ${(r.bytesPerToken / 1e6).toFixed(0)} MB per token; prefill 128: ${(r.prefillMs / 1e3).toFixed(2)} s`
  );
}

if (import.meta.url === `file://${process.argv[1]}`) {
  // --variants bfloat16,q8_0: only those (default: float32, q8_0, q4_0, bfloat16 and bfloat16 unfused).
  const { values } = parseArgs({ options: { variants: { type: "string" } } });
  const variants = values.variants?.split(",").map((v) => v.trim()) as DecodeRow["variant"][] | undefined;
  const known = ["float32", "bfloat16", "q8_0", "q4_0"];
  const bad = variants?.find((v) => !known.includes(v));
  if (bad !== undefined) throw new Error(`--variants: unknown variant "${bad}" (known: ${known.join(", ")})`);
  console.log("Qwen2.5-0.5B-shaped decode, prompt 128 → 128 new tokens, greedy");
  runDecodeBench({ log: (s) => console.log(s), variants });
}
