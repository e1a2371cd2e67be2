/**
 * The add-on's malloc tuning (native/addon.cpp): on glibc, once the add-on is loaded a freed large
 * buffer is reused by the next allocation instead of being unmapped and faulted in again page by page
 * (a 64 MB buffer is ~16k faults); GRAFT_MALLOC_REUSE=0 keeps glibc's defaults. Each case runs in a
 * child process, since the setting is per process.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import { test } from "node:test";
import { loadAddon } from "../../src/backend/native/addon.ts";

let skip: string | false = false;
try {
  const info = loadAddon().info();
  const glibc = (process.report.getReport() as { header?: { glibcVersionRuntime?: string } }).header?.glibcVersionRuntime;
  if (info.mallocReuse === undefined) skip = "the add-on was built before the malloc tuning (rebuild with npm run build:native)";
  else if (!glibc) skip = "not glibc: the add-on leaves malloc alone";
} catch (e) {
  skip = `native add-on not available: ${(e as Error).message}`;
}

function child(env: Record<string, string>): { reuse: boolean; faults: number[] } {
  const file = fileURLToPath(new URL("./mallocReuseChild.ts", import.meta.url));
  const r = spawnSync(process.execPath, ["--expose-gc", "--import", "tsx", file], { encoding: "utf8", timeout: 60_000, env: { ...process.env, ...env } });
  assert.equal(r.status, 0, r.stderr);
  return JSON.parse(r.stdout.trim().split("\n").at(-1)!) as { reuse: boolean; faults: number[] };
}

test("freed 64 MB buffers are reused (no page faults after warm-up); GRAFT_MALLOC_REUSE=0 faults every time", { skip }, () => {
  const on = child({ GRAFT_MALLOC_REUSE: "1" });
  assert.equal(on.reuse, true);
  assert.ok(Math.min(...on.faults.slice(2)) < 1000, `reuse on: faults per round ${on.faults.join(", ")}`);
  const off = child({ GRAFT_MALLOC_REUSE: "0" });
  assert.equal(off.reuse, false);
  assert.ok(Math.min(...off.faults) > 8000, `reuse off: faults per round ${off.faults.join(", ")}`);
});
