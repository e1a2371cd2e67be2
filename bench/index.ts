/**
 * `npm run bench`: the benchmark suite. Every number is printed beside a baseline measured in the
 * same run (the machine's FMA peak, or the reference backend), never compared with a fixed time.
 */
import "../src/backend/index.ts";
import { setDefaultBackend } from "../src/backend/registry.ts";
import { runDecodeBench } from "./decode.ts";
import { runGemmBench } from "./gemm.ts";
import { runLinearBench } from "./linear.ts";
import { runLoraStepBench } from "./loraStep.ts";

const gemm = await runGemmBench();
console.log("");
setDefaultBackend("native");
for (const dtype of ["float32", "bfloat16"] as const) {
  const r = runLinearBench({ dtype });
  console.log(
    `Linear(896→4864) fwd+bwd on [512, 896] ${dtype.padEnd(8)}: ${r.msPerStep.toFixed(1)} ms/step, ` +
      `${r.gflops.toFixed(1)} GFLOP/s = ${((100 * r.gflops) / gemm.peak).toFixed(1)}% of the fp32 FMA peak`,
  );
}
console.log("");
console.log("Qwen2.5-0.5B-shaped decode, prompt 128 → 128 new tokens, greedy (vs the bandwidth bound measured now)");
runDecodeBench({ log: (s) => console.log(s) });
console.log("");
runLoraStepBench({ batches: [1], seq: 256, steps: 3, torch: true });
