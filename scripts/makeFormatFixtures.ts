/**
 * Regenerates the small committed fixtures under tests/fixtures/formats/:
 *   tiny_state_dict.bin  torch.save-layout zip (float32 param + strided views, bf16, f16, int64)
 *   malicious.bin        torch.save-layout zip whose data.pkl calls posix.system (must be refused)
 * Run: node --import tsx scripts/makeFormatFixtures.ts
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { systemPickle, tinyStateDict, torchZip } from "../tests/formats/torchFixture.ts";

const dir = path.join(import.meta.dirname, "..", "tests", "fixtures", "formats");
fs.mkdirSync(dir, { recursive: true });
fs.writeFileSync(path.join(dir, "tiny_state_dict.bin"), tinyStateDict().bytes);
fs.writeFileSync(path.join(dir, "malicious.bin"), torchZip(systemPickle("touch /tmp/graft-pickle-pwned"), {}));
console.log(`wrote fixtures to ${dir}`);
