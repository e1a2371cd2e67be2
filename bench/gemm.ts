/**
 * Native GEMM throughput against the machine's measured FMA peak.
 *
 * For C[M, N] = A[M, K] B[K, N] on the acceptance shapes, prints float32 and bfloat16 GFLOP/s (best
 * of several timed runs after warmup), the ratio to the FMA peak measured in the same run, the
 * bf16 / fp32 ratio, and the transB = true variant (X W^T with W stored [out, in], nn.Linear's
 * forward). Where the system has OpenBLAS (and /usr/bin/python3 with numpy), its float32 throughput on
 * the same shapes and thread count (bench/openblas_gemm.py, after graft's runs) is printed beside graft's.
 * Run: `node --import tsx bench/gemm.ts` (GRAFT_NATIVE_PATH picks a dev add-on).
 */
import { spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import { loadAddon, type Addon } from "../src/backend/native/addon.ts";
import { nativeGemm } from "../src/backend/native/gemm.ts";
import type { GemmArgs } from "../src/backend/Backend.ts";
import type { DType } from "../src/core/dtype.ts";

export interface GemmBenchRow {
  shape: [number, number, number];
  transB: boolean;
  fp32: number;
  bf16: number;
  /** OpenBLAS sgemm on the same shape, GFLOP/s (absent when the system has none). */
  openblas?: number;
}

export interface GemmBenchResult {
  isa: string;
  /** GEMM dispatch level: the CPU ISA, or "amx" where bf16 runs on AMX tiles. */
  level: string;
  threads: number;
  kernelF32: string;
  kernelBf16: string;
  /**
   * Measured fp32 FMA peak and the peak of the bf16 kernel's instruction (AMX tdpbf16ps at level amx,
   * else vdpbf16ps), GFLOP/s, best of the measurements taken between shapes.
   */
  peak: number;
  peakBf16: number;
  rows: GemmBenchRow[];
  /** The OpenBLAS library measured, or why none was. */
  openblas: string;
}

export const GEMM_BENCH_SHAPES: [number, number, number][] = [
  [512, 896, 4864],
  [512, 4864, 896],
  [2048, 2048, 2048],
];

function randomStorage(dtype: DType, n: number, seed: number): Float32Array | Uint16Array {
  // xorshift32 values in [-1, 1); bf16 keeps the top 16 bits of the float32 pattern.
  let s = seed >>> 0 || 1;
  const f = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    f[i] = (s >>> 0) / 2 ** 31 - 1;
  }
  if (dtype === "float32") return f;
  const u = new Uint32Array(f.buffer);
  const h = new Uint16Array(n);
  for (let i = 0; i < n; i++) h[i] = u[i]! >>> 16;
  return h;
}

interface Config {
  shape: [number, number, number];
  transB: boolean;
  dtype: DType;
  run: () => void;
  flops: number;
  best: number; // seconds
}

function makeConfig(addon: Addon, dtype: DType, shape: [number, number, number], transB: boolean): Config {
  const [m, k, n] = shape;
  const a = randomStorage(dtype, m * k, 1);
  const b = randomStorage(dtype, k * n, 2);
  const c = new Float32Array(m * n);
  const args: GemmArgs = {
    batch: 1, m, n, k, transA: false, transB,
    lda: k, ldb: transB ? k : n, ldc: n,
    offsetA: 0, offsetB: 0, offsetC: 0, strideA: 0, strideB: 0, strideC: 0,
    alpha: 1, beta: 0,
  };
  return { shape, transB, dtype, run: () => nativeGemm(addon, a, b, c, dtype, "float32", args), flops: 2 * m * n * k, best: Infinity };
}

/**
 * Runs every configuration `rounds` times, round-robin (two timed calls each per round, after one
 * warmup call), and keeps each one's fastest call; the FMA peak is measured once per round. Spreading
 * every configuration over the whole run keeps a burst of other load on the machine from spoiling
 * one configuration's numbers: each gets its best moment.
 */
export async function runGemmBench(opts: { rounds?: number; peakSeconds?: number; log?: (line: string) => void } = {}): Promise<GemmBenchResult> {
  const addon = loadAddon();
  const log = opts.log ?? ((line: string) => console.log(line));
  const info = addon.info();
  const rounds = opts.rounds ?? 6;
  const peakSeconds = opts.peakSeconds ?? 0.25;
  const kernelF32 = (addon.gemmKernel(0) as { name: string }).name;
  const kernelBf16 = (addon.gemmKernel(1) as { name: string }).name;
  const level = addon.gemmIsa() as string;
  log(`native gemm: isa ${info.isa}, level ${level}, ${info.threads} threads, kernels ${kernelF32} / ${kernelBf16}`);

  const configs: Config[] = [];
  for (const transB of [false, true])
    for (const shape of GEMM_BENCH_SHAPES)
      for (const dtype of ["float32", "bfloat16"] as const) configs.push(makeConfig(addon, dtype, shape, transB));
  for (const cfg of configs) cfg.run();

  let peak = 0;
  let peakBf16 = 0;
  for (let r = 0; r < rounds; r++) {
    peak = Math.max(peak, addon.peakFlops(peakSeconds) as number);
    peakBf16 = Math.max(peakBf16, addon.peakFlopsBf16(peakSeconds) as number);
    for (const cfg of configs) {
      for (let i = 0; i < 2; i++) {
        const t0 = process.hrtime.bigint();
        cfg.run();
        cfg.best = Math.min(cfg.best, Number(process.hrtime.bigint() - t0) / 1e9);
      }
    }
  }

  const gflops = (cfg: Config) => cfg.flops / cfg.best / 1e9;
  const rows: GemmBenchRow[] = [];
  for (let i = 0; i < configs.length; i += 2) {
    const f = configs[i]!, h = configs[i + 1]!;
    rows.push({ shape: f.shape, transB: f.transB, fp32: gflops(f), bf16: gflops(h) });
  }

  const blas = openblasBaseline(rows, info.threads);
  const bf16Instr = level === "amx" ? "AMX tdpbf16ps" : "vdpbf16ps";
  log(`fp32 FMA peak ${peak.toFixed(1)} GFLOP/s` + (peakBf16 > 0 ? `, bf16 ${bf16Instr} peak ${peakBf16.toFixed(1)} GFLOP/s` : ""));
  log(blas.startsWith("/") ? `OpenBLAS fp32 baseline: ${blas}, ${info.threads} threads` : blas);
  const blasHead = rows.some((r) => r.openblas) ? "   OpenBLAS  graft/OpenBLAS" : "";
  log("M x K x N              op      fp32 GFLOP/s  (of peak)   bf16 GFLOP/s  (of peak)  bf16/fp32" + blasHead);
  for (const r of rows) {
    const [m, k, n] = r.shape;
    const name = `${m} x ${k} x ${n}`.padEnd(22);
    const op = (r.transB ? "A B^T" : "A B").padEnd(7);
    const bf16Peak = peakBf16 > 0 ? `${((100 * r.bf16) / peakBf16).toFixed(1).padStart(5)}%` : "   n/a";
    log(
      `${name} ${op} ${r.fp32.toFixed(1).padStart(12)}  (${((100 * r.fp32) / peak).toFixed(1).padStart(5)}%)` +
        `  ${r.bf16.toFixed(1).padStart(12)}  (${bf16Peak})  ${(r.bf16 / r.fp32).toFixed(2).padStart(8)}x` +
        (r.openblas ? `  ${r.openblas.toFixed(1).padStart(9)}  ${(r.fp32 / r.openblas).toFixed(2).padStart(13)}x` : ""),
    );
  }
  return { isa: info.isa, level, threads: info.threads, kernelF32, kernelBf16, peak, peakBf16, rows, openblas: blas };
}

/**
 * Fills rows[i].openblas from bench/openblas_gemm.py; returns the library's path, or a line saying why
 * there is no baseline.
 */
function openblasBaseline(rows: GemmBenchRow[], threads: number): string {
  const shapes = rows.map((r) => [...r.shape, r.transB]);
  const script = fileURLToPath(new URL("./openblas_gemm.py", import.meta.url));
  const r = spawnSync("/usr/bin/python3", [script, "--threads", String(threads), "--json", JSON.stringify(shapes)], { encoding: "utf8" });
  if (r.error || r.status !== 0) {
    const why = r.error ? r.error.message : r.stderr.trim().split("\n").pop();
    return `OpenBLAS baseline skipped: ${why}`;
  }
  const out = JSON.parse(r.stdout) as { library: string; rows: { gflops: number }[] };
  out.rows.forEach((o, i) => (rows[i]!.openblas = o.gflops));
  return out.library;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  await runGemmBench();
}
