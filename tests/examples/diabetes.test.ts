/** The diabetes FNN example end to end: loss falls, held-out accuracy >= 70%, real PNG and tfevents. */
import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import "../../src/backend/index.ts";
import { runDiabetes } from "../../src/examples/diabetes.ts";

const shared = join(import.meta.dirname, "..", "..", "..", "shared", "data", "pima-diabetes", "pima-indians-diabetes.csv");
const embedded = join(import.meta.dirname, "..", "..", "data", "pima-diabetes", "pima-indians-diabetes.csv");

test("diabetes example trains to >= 70% held-out accuracy and writes its reports", async () => {
  const out = mkdtempSync(join(tmpdir(), "graft-diabetes-"));
  try {
    const r = await runDiabetes({ data: existsSync(shared) ? shared : embedded, outDir: out, epochs: 100, progress: "off" });
    assert.equal(r.trainRows + r.valRows, 768);
    const first = r.epochLosses[0]!;
    const last = r.epochLosses.at(-1)!;
    assert.ok(last < first - 0.1, `loss should fall clearly: first ${first}, last ${last}`);
    assert.ok(r.valAccuracy >= 0.7, `held-out accuracy ${r.valAccuracy}`);
    const png = readFileSync(r.pngPath);
    assert.deepEqual([...png.subarray(0, 8)], [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
    assert.ok(png.length > 5000, `PNG of ${png.length} bytes`);
    assert.ok(readdirSync(join(out, "tb")).some((f) => f.startsWith("events.out.tfevents.")));
    const lines = readFileSync(r.metricsPath, "utf8").trim().split("\n");
    assert.equal(lines.length, 200, "a train and a val line per epoch");
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
});
