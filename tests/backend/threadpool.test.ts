/**
 * The native thread pool: a kernel issued the moment the pool (re)starts must run on every worker.
 * A worker that read the job counter itself, after run() had bumped it, missed that job and the
 * caller waited forever, so the check runs in a child process with a deadline. Guided kernels (a
 * GEMV), whose late workers skip the job, alternate with a GEMM that needs every worker.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import { test } from "node:test";
import { loadAddon } from "../../src/backend/native/addon.ts";

let skip: string | false = false;
try {
  loadAddon();
} catch (e) {
  skip = `native add-on not available: ${(e as Error).message}`;
}

test("thread pool: 2,000 resizes each followed at once by 2-thread GEMVs and a GEMM neither hang nor change the results", { skip }, () => {
  const child = fileURLToPath(new URL("./threadpoolChild.ts", import.meta.url));
  const r = spawnSync(process.execPath, ["--import", "tsx", child, "2000"], { encoding: "utf8", timeout: 60_000 });
  assert.equal(r.signal, null, `the child hung and was killed (${r.signal})`);
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /done/);
});
