/**
 * Child of mallocReuse.test.ts (run with --expose-gc): allocates, touches and drops a 64 MB buffer
 * eight times, printing the add-on's mallocReuse flag and each round's minor page faults as JSON.
 */
import { loadAddon } from "../../src/backend/native/addon.ts";

const reuse = loadAddon().info().mallocReuse;
const gc = (globalThis as { gc?: () => void }).gc;
if (!gc) throw new Error("run with --expose-gc");
const faults: number[] = [];
for (let i = 0; i < 8; i++) {
  const f0 = process.resourceUsage().minorPageFault;
  Buffer.allocUnsafeSlow(64 << 20).fill(1);
  faults.push(process.resourceUsage().minorPageFault - f0);
  gc();
}
console.log(JSON.stringify({ reuse, faults }));
