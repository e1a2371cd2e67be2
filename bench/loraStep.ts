/**
 * LoRA / QLoRA SFT step on Qwen2.5-0.5B shapes (random weights): tokens/s and peak RSS for graft, and
 * PyTorch's tokens/s on the same model (bench/torch_lora_step.py) when `/usr/bin/python3 -c "import torch"`
 * works. Every configuration runs in a child process of its own, so its peak RSS is its own.
 *
 *   node --import tsx bench/loraStep.ts [--batches 1,4] [--seq 256] [--steps 3] [--methods lora,qlora] [--no-torch]
 */
import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import "../src/backend/index.ts";
import type { DType } from "../src/core/dtype.ts";
import { Generator } from "../src/core/rng.ts";
import { type CausalLM, causalLMLoss, createModel } from "../src/models/index.ts";
import { AdamW } from "../src/optim/index.ts";
import { applyPeft } from "../src/peft/index.ts";
import * as T from "../src/tensor/index.ts";
import { QWEN25_05B } from "./shapes.ts";

interface StepConfig {
  method: "lora" | "qlora";
  dtype: DType;
  batch: number;
  seq: number;
  steps: number;
  warmup: number;
}

interface StepResult extends StepConfig {
  msPerStep: number;
  tokensPerS: number;
  peakRssMB: number;
  loss: number;
}

const LORA = { r: 8, lora_alpha: 16, lora_dropout: 0, target_modules: ["q_proj", "v_proj"] };

/**
 * This process's peak RSS, MB: the high-water mark of its own address space (/proc/self/status VmHWM).
 * getrusage's maxRSS is no good in a child: Linux carries it over from the forking parent across exec,
 * so a parent that holds gigabytes (e.g. the decode bench before it in `npm run bench`) shows through.
 */
function peakRssMB(): number {
  try {
    const m = /^VmHWM:\s+(\d+) kB$/m.exec(readFileSync("/proc/self/status", "utf8"));
    if (m) return Number(m[1]) / 1024;
  } catch {
    // not Linux: fall back to getrusage
  }
  return process.resourceUsage().maxRSS / 1024;
}

/** QLoRA's target: the peak RSS of a bfloat16 Qwen2.5-0.5B QLoRA step (issue #8), in MB. */
const QLORA_RSS_TARGET_MB = 1536;

/**
 * One configuration, in this process: build, wrap, then time full optimizer steps (median). QLoRA
 * builds its base as a user's `from_pretrained(load_in_4bit=True)` would: each Linear quantized to
 * NF4 right after its init (createModel quantize: "nf4"), never the full-precision model at once.
 */
function runStep(c: StepConfig): StepResult {
  const base = createModel(QWEN25_05B, { seed: 0, dtype: c.dtype, ...(c.method === "qlora" ? { quantize: "nf4" as const } : {}) }) as CausalLM;
  const model = applyPeft(base, c.method, LORA);
  const opt = new AdamW(model.trainableParameters(), { lr: 1e-4 });
  const ids = T.randint(0, QWEN25_05B.vocab_size, [c.batch, c.seq], { generator: new Generator(1), dtype: "int32" });
  const times: number[] = [];
  let loss = NaN;
  for (let i = 0; i < c.warmup + c.steps; i++) {
    const t0 = performance.now();
    const l = causalLMLoss(model.forward(ids, { upcastLogits: false }), ids);
    l.backward();
    opt.step();
    opt.zeroGrad();
    loss = l.item();
    if (i >= c.warmup) times.push(performance.now() - t0);
  }
  times.sort((a, b) => a - b);
  const ms = times[times.length >> 1]!;
  return { ...c, msPerStep: ms, tokensPerS: (c.batch * c.seq) / (ms / 1000), peakRssMB: peakRssMB(), loss };
}

function child(c: StepConfig): StepResult | string {
  const r = spawnSync(process.execPath, ["--import", "tsx", fileURLToPath(import.meta.url), "--child", JSON.stringify(c)], { encoding: "utf8", maxBuffer: 1 << 24 });
  const line = r.stdout.trim().split("\n").at(-1) ?? "";
  if (r.status !== 0 || !line.startsWith("{")) return `failed (exit ${r.status}): ${(r.stderr || r.stdout).trim().split("\n").slice(-3).join(" | ")}`;
  return JSON.parse(line) as StepResult;
}

interface TorchResult {
  dtype: string;
  batch: number;
  tokens_per_s: number;
  ms_per_step: number;
}

function torchBaseline(dtypes: string[], batches: number[], seq: number): TorchResult[] | string {
  const probe = spawnSync("/usr/bin/python3", ["-c", "import torch"], { encoding: "utf8" });
  if (probe.status !== 0) return "PyTorch baseline skipped: `/usr/bin/python3 -c \"import torch\"` fails (Debian: apt install python3-torch)";
  const script = fileURLToPath(new URL("./torch_lora_step.py", import.meta.url));
  const out: TorchResult[] = [];
  for (const dtype of dtypes) {
    // Debian's torch runs fp32 GEMM on a generic BLAS (see the note printed below): one step at the first batch size.
    const slow = dtype === "float32";
    const arg = { config: QWEN25_05B, dtypes: [dtype], batches: slow ? batches.slice(0, 1) : batches, seq, steps: slow ? 1 : 3, warmup: slow ? 0 : 1, threads: 2 };
    const r = spawnSync("/usr/bin/python3", [script, "--json", JSON.stringify(arg)], { encoding: "utf8", maxBuffer: 1 << 24 });
    if (r.status !== 0) return `PyTorch baseline failed: ${r.stderr.trim().split("\n").slice(-2).join(" | ")}`;
    for (const line of r.stdout.trim().split("\n")) out.push(JSON.parse(line) as TorchResult);
  }
  return out;
}

function torchBlasNote(): string {
  const r = spawnSync("/usr/bin/python3", ["-c", "import re, torch; print(torch.__version__, *re.findall(r'BLAS_INFO=\\w+', torch.__config__.show()))"], { encoding: "utf8" });
  return r.status === 0 ? r.stdout.trim() : "";
}

export function runLoraStepBench(opts: { batches: number[]; seq: number; steps: number; torch: boolean; methods?: ("lora" | "qlora")[] }): void {
  console.log(`LoRA SFT step, Qwen2.5-0.5B shapes (24 layers, hidden 896, vocab 151936), r=8 on q_proj/v_proj, seq ${opts.seq}`);
  const rows: StepResult[] = [];
  for (const method of opts.methods ?? (["lora", "qlora"] as const)) {
    for (const dtype of ["float32", "bfloat16"] as const) {
      for (const batch of method === "qlora" ? [opts.batches[0]!] : opts.batches) {
        const r = child({ method, dtype, batch, seq: opts.seq, steps: opts.steps, warmup: 1 });
        if (typeof r === "string") console.log(`  graft ${method} ${dtype} batch ${batch}: ${r}`);
        else {
          rows.push(r);
          const target =
            method !== "qlora" ? "" : dtype === "bfloat16" ? ` (target <= ${QLORA_RSS_TARGET_MB} MB: ${r.peakRssMB <= QLORA_RSS_TARGET_MB ? "met" : "NOT met"})` : " (the target is for bfloat16)";
          console.log(`  graft ${method.padEnd(5)} ${dtype.padEnd(8)} batch ${batch}: ${r.tokensPerS.toFixed(0).padStart(6)} tokens/s, ${r.msPerStep.toFixed(0)} ms/step, peak RSS ${r.peakRssMB.toFixed(0)} MB${target}`);
        }
      }
    }
  }
  if (!opts.torch) return;
  const torch = torchBaseline(["float32", "bfloat16"], opts.batches, opts.seq);
  if (typeof torch === "string") {
    console.log(`  ${torch}`);
    return;
  }
  console.log(`  PyTorch ${torchBlasNote()}`);
  for (const t of torch) {
    const g = rows.find((r) => r.method === "lora" && r.dtype === t.dtype && r.batch === t.batch);
    const ratio = g ? `graft/PyTorch ${(g.tokensPerS / t.tokens_per_s).toFixed(2)}x` : "graft: no result";
    console.log(`  PyTorch lora  ${t.dtype.padEnd(8)} batch ${t.batch}: ${t.tokens_per_s.toFixed(0).padStart(6)} tokens/s, ${t.ms_per_step.toFixed(0)} ms/step  →  ${ratio}`);
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const { values } = parseArgs({
    options: { child: { type: "string" }, batches: { type: "string" }, seq: { type: "string" }, steps: { type: "string" }, methods: { type: "string" }, "no-torch": { type: "boolean" } },
  });
  if (values.child) console.log(JSON.stringify(runStep(JSON.parse(values.child) as StepConfig)));
  else {
    runLoraStepBench({
      batches: (values.batches ?? "1,4").split(",").map(Number),
      seq: Number(values.seq ?? 256),
      steps: Number(values.steps ?? 3),
      torch: !values["no-torch"],
      methods: values.methods?.split(",").map((m) => {
        if (m !== "lora" && m !== "qlora") throw new Error(`--methods: "${m}" is not lora or qlora`);
        return m;
      }),
    });
  }
}
