/**
 * Child of hugePages.test.ts: builds the native backend (which sets the large-array allocator unless
 * GRAFT_HUGE_PAGES=0), then prints as JSON how much AnonHugePages grew while a 16 MB tensor was
 * allocated and touched, whether it came zeroed, the same for a zeroed 16 MB array placed in a block
 * whose 4 KiB pages were all touched before (as heap memory malloc reuses), and the peak RSS over 40
 * dropped 64 MB arrays allocated back to back with no turn of the event loop (the collector alone
 * must free them).
 */
import { readFileSync } from "node:fs";
import "../../src/backend/index.ts";
import { loadAddon } from "../../src/backend/native/addon.ts";
import { getBackend } from "../../src/backend/registry.ts";
import { allocStorage } from "../../src/core/dtype.ts";

getBackend("native");
const hugeKB = () => Number(/AnonHugePages:\s+(\d+)/.exec(readFileSync("/proc/self/smaps_rollup", "utf8"))?.[1] ?? 0);
const rssMB = () => Number(/VmRSS:\s+(\d+)/.exec(readFileSync("/proc/self/status", "utf8"))![1]) / 1024;

const before = hugeKB();
const s = allocStorage("float32", 4 << 20) as Float32Array;
const zeroed = s.every((x) => x === 0);
s.fill(1);
const grewKB = hugeKB() - before;

// A block touched before placing (4 KiB pages throughout), then a zeroed array in it.
const bytes = 16 << 20;
const raw = Buffer.allocUnsafeSlow(bytes + (2 << 20) - 16);
raw.fill(5);
const place = loadAddon()["hugePageArray"];
let reusedZeroed: boolean | null = null;
let reusedGrewKB = 0;
if (process.env["GRAFT_HUGE_PAGES"] !== "0" && place) {
  const before2 = hugeKB();
  const off = place(raw, bytes, true) as number;
  const arr = raw.subarray(off, off + bytes);
  reusedZeroed = arr.every((x) => x === 0);
  arr.fill(3);
  reusedGrewKB = hugeKB() - before2;
}

let peakMB = 0;
let sum = 0;
for (let i = 0; i < 40; i++) {
  const a = allocStorage("bfloat16", 32 << 20) as Uint16Array;
  a[a.length - 1] = i;
  sum += a[a.length - 1]!;
  peakMB = Math.max(peakMB, rssMB());
}
console.log(JSON.stringify({ zeroed, grewKB, reusedZeroed, reusedGrewKB, peakMB, sum, first: s[0], last: s[s.length - 1] }));
