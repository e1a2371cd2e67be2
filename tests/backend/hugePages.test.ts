/**
 * Large tensors in huge-page memory (native/addon.cpp hugePageArray, set by NativeBackend as the
 * large-array allocator of core/dtype.ts): the array lands on a 2 MiB boundary inside the malloc'd
 * block, zeroed when asked and left as it was otherwise; allocStorage hands out zeroed, disjoint
 * arrays; and where the kernel runs transparent huge pages on madvise, a touched 16 MB tensor is
 * backed by them, as is a zeroed one placed in memory that already had 4 KiB pages (GRAFT_HUGE_PAGES=0:
 * not). Process-wide settings run in a child process.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { test } from "node:test";
import { loadAddon } from "../../src/backend/native/addon.ts";
import "../../src/backend/index.ts";
import { getBackend } from "../../src/backend/registry.ts";
import { LARGE_ARRAY_BYTES, allocBytes, allocStorage } from "../../src/core/dtype.ts";

let skip: string | false = false;
try {
  if (!loadAddon()["hugePageArray"]) skip = "the add-on was built before hugePageArray (rebuild with npm run build:native)";
  getBackend("native");
} catch (e) {
  skip = `native add-on not available: ${(e as Error).message}`;
}
const thpFile = "/sys/kernel/mm/transparent_hugepage/enabled";
const thpMode = existsSync(thpFile) ? (/\[(\w+)\]/.exec(readFileSync(thpFile, "utf8"))?.[1] ?? "never") : "never";

const HUGE = 2 << 20;

test("hugePageArray places the array at a 2 MiB boundary inside raw, zeroed only when asked", { skip }, () => {
  const place = loadAddon()["hugePageArray"]!;
  const bytes = 3 * HUGE + 12345;
  const raw = Buffer.allocUnsafeSlow(bytes + HUGE - 16);
  raw.fill(7);
  const off = place(raw, bytes, false) as number;
  assert.ok(off >= 0 && off < HUGE && off + bytes <= raw.length, `offset ${off}`);
  // Not zeroed: the array's bytes are as they were (only the slack around it is given back).
  assert.ok(raw.subarray(off, off + bytes).every((b) => b === 7));
  raw.fill(9, off, off + bytes);
  assert.equal(place(raw, bytes, true), off, "the same block gives the same boundary");
  assert.ok(raw.subarray(off, off + bytes).every((b) => b === 0), "zero = true zeroes the array");
  assert.equal(place(Buffer.allocUnsafeSlow(bytes), bytes, true), -1, "a block without room for the boundary");
  assert.throws(() => place(new Float32Array(4), 4, true), /hugePageArray: raw must be a Uint8Array/);
});

test("allocStorage / allocBytes: large arrays come zeroed, of the right type and length, and do not overlap", { skip }, () => {
  const n = LARGE_ARRAY_BYTES; // elements: 4 / 2 MiB-page multiples of bytes for float32 / bfloat16
  const a = allocStorage("float32", n + 3);
  const b = allocStorage("bfloat16", n);
  const c = allocBytes(LARGE_ARRAY_BYTES + 1);
  assert.ok(a instanceof Float32Array && a.length === n + 3);
  assert.ok(b instanceof Uint16Array && b.length === n);
  assert.ok(c instanceof Uint8Array && c.length === LARGE_ARRAY_BYTES + 1);
  for (const x of [a, b, c]) assert.ok((x as Float32Array).every((v) => v === 0));
  a.fill(1.5);
  b.fill(0x3f80);
  c.fill(255);
  assert.ok(a.every((v) => v === 1.5) && b.every((v) => v === 0x3f80) && c.every((v) => v === 255));
});

function child(env: Record<string, string>): {
  zeroed: boolean;
  grewKB: number;
  reusedZeroed: boolean | null;
  reusedGrewKB: number;
  peakMB: number;
  sum: number;
  first: number;
  last: number;
} {
  const file = fileURLToPath(new URL("./hugePagesChild.ts", import.meta.url));
  const r = spawnSync(process.execPath, ["--import", "tsx", file], { encoding: "utf8", timeout: 120_000, env: { ...process.env, ...env } });
  assert.equal(r.status, 0, r.stderr);
  return JSON.parse(r.stdout.trim().split("\n").at(-1)!) as ReturnType<typeof child>;
}

test("a touched 16 MB tensor is backed by huge pages, also a zeroed one in reused memory (GRAFT_HUGE_PAGES=0: not); dropped ones are collected", { skip }, () => {
  const on = child({});
  assert.equal(on.zeroed, true);
  assert.equal(on.first, 1);
  assert.equal(on.last, 1);
  assert.equal(on.sum, (39 * 40) / 2);
  // 40 x 64 MB allocated in one synchronous loop: the collector frees them (they are ordinary ArrayBuffers).
  assert.ok(on.peakMB < 1500, `peak RSS ${on.peakMB.toFixed(0)} MB`);
  if (thpMode === "madvise" || thpMode === "always") assert.ok(on.grewKB >= 14 << 10, `AnonHugePages grew ${on.grewKB} kB (THP mode ${thpMode})`);
  // A zeroed array in memory whose 4 KiB pages were touched before: zero, and on huge pages too.
  assert.equal(on.reusedZeroed, true);
  if (thpMode === "madvise") assert.ok(on.reusedGrewKB >= 14 << 10, `reused block: AnonHugePages grew ${on.reusedGrewKB} kB`);
  const off = child({ GRAFT_HUGE_PAGES: "0" });
  assert.equal(off.zeroed, true);
  if (thpMode === "madvise") assert.ok(off.grewKB < 4 << 10, `GRAFT_HUGE_PAGES=0: AnonHugePages grew ${off.grewKB} kB`);
});
