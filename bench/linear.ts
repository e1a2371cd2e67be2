/** Linear(896 → 4864) forward + backward on [512, 896]: time per step and achieved GFLOP/s. */
import "../src/backend/index.ts";
import { getBackend } from "../src/backend/registry.ts";
import { Generator } from "../src/core/rng.ts";
import * as T from "../src/tensor/index.ts";
import { Linear } from "../src/nn/index.ts";

export interface LinearBenchResult {
  dtype: string;
  msPerStep: number;
  gflops: number;
}

export function runLinearBench(opts: { reps?: number; dtype?: "float32" | "bfloat16" } = {}): LinearBenchResult {
  const dtype = opts.dtype ?? "float32";
  const M = 512, K = 896, N = 4864;
  const lin = new Linear(K, N, { generator: new Generator(1), dtype });
  const x = T.randn([M, K], { generator: new Generator(2), dtype }).setRequiresGrad(true);
  const g = T.randn([M, N], { generator: new Generator(3), dtype });
  const step = () => {
    lin.zeroGrad();
    x.grad = null;
    lin.forward(x).backward(g);
  };
  for (let i = 0; i < 2; i++) step();
  const reps = opts.reps ?? 8;
  let best = Infinity;
  for (let i = 0; i < reps; i++) {
    const t0 = process.hrtime.bigint();
    step();
    best = Math.min(best, Number(process.hrtime.bigint() - t0) / 1e6);
  }
  // Forward X W^T, backward dX = dY W and dW = dY^T X: three GEMMs of 2*M*K*N flops.
  const flops = 3 * 2 * M * K * N;
  return { dtype, msPerStep: best, gflops: flops / (best / 1e3) / 1e9 };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  console.log(`backend ${getBackend().name}`);
  for (const dtype of ["float32", "bfloat16"] as const) {
    const r = runLinearBench({ dtype });
    console.log(`Linear(896→4864) fwd+bwd [512, 896] ${dtype}: ${r.msPerStep.toFixed(1)} ms/step, ${r.gflops.toFixed(1)} GFLOP/s`);
  }
}
