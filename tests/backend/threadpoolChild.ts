/** Child of threadpool.test.ts: resizes the native pool and runs a parallel kernel right after, many times. */
import "../../src/backend/index.ts";
import { loadAddon } from "../../src/backend/native/addon.ts";
import { setDefaultBackend } from "../../src/backend/registry.ts";
import * as T from "../../src/tensor/index.ts";

setDefaultBackend("native");
const addon = loadAddon();
const a = T.randn([256, 256]);
const expected = T.matmul(a, a).toArray();
for (let i = 0; i < Number(process.argv[2]); i++) {
  addon.setThreads(1);
  addon.setThreads(2);
  const got = T.matmul(a, a).toArray(); // 2 threads: runs on the pool the moment it is created
  if (got.some((v, j) => v !== expected[j])) throw new Error(`iteration ${i}: result changed`);
}
console.log("done");
