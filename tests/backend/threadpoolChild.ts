/**
 * Child of threadpool.test.ts: resizes the native pool and runs parallel kernels right after, many
 * times: a GEMM (every worker runs its part) between two GEMVs (guided: workers join while the caller
 * still works, a late one skips the job), so a worker that skipped one job must still run the next.
 */
import "../../src/backend/index.ts";
import { loadAddon } from "../../src/backend/native/addon.ts";
import { setDefaultBackend } from "../../src/backend/registry.ts";
import * as T from "../../src/tensor/index.ts";

setDefaultBackend("native");
const addon = loadAddon();
const a = T.randn([256, 256]);
const expected = T.matmul(a, a).toArray();
const x = T.randn([1, 512]);
const w = T.randn([1024, 512]);
const expectedV = T.matmul(x, w.T).toArray();
const same = (got: number[], want: number[]) => got.length === want.length && got.every((v, j) => v === want[j]);
for (let i = 0; i < Number(process.argv[2]); i++) {
  addon.setThreads(1);
  addon.setThreads(2);
  // 2 threads: each runs on the pool the moment it is created.
  if (!same(T.matmul(x, w.T).toArray(), expectedV)) throw new Error(`iteration ${i}: GEMV result changed`);
  if (!same(T.matmul(a, a).toArray(), expected)) throw new Error(`iteration ${i}: GEMM result changed`);
  if (!same(T.matmul(x, w.T).toArray(), expectedV)) throw new Error(`iteration ${i}: second GEMV result changed`);
}
console.log("done");
