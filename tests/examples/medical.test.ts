/** `graft example medical` in miniature: prepare → pretrain → SFT → the base vs fine-tuned table. */
import { test } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { fileURLToPath } from "node:url";
import "../../src/backend/index.ts";
import { runMedical } from "../../src/examples/medical.ts";

const repo = fileURLToPath(new URL("../../", import.meta.url));
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "graft-medical-"));
process.on("exit", () => fs.rmSync(tmp, { recursive: true, force: true }));

test("the medical exercise runs end to end on the embedded slice and prints the metric table", async () => {
  const lines: string[] = [];
  const r = await runMedical({
    data: path.join(repo, "data/medical-dialogue/internal-medicine-300.csv"),
    outDir: tmp, train: 40, val: 10, pretrainSteps: 30, sftSteps: 12, blockSize: 128, batchSize: 4,
    maxLength: 768, generate: 2, maxNewTokens: 8, progress: "off", log: (l) => lines.push(l),
  });
  assert.equal(lines.length, 4);
  assert.match(lines[0]!, /^1\/4 prepare: 300 usable rows \(gb18030\), 0 bad → 40 train \/ 10 val/);
  assert.match(lines[1]!, /^2\/4 pretrain: [\d,]+ parameters, 30 steps/);
  assert.match(lines[2]!, /^3\/4 fine-tune \(full\): 12 steps/);
  const table = lines[3]!.split("\n").filter((l) => l.startsWith("| "));
  assert.equal(table.length, 3);
  assert.match(table[1]!, /^\| base \(pretrained only\) /);
  assert.match(table[2]!, /^\| fine-tuned \(full\) /);
  assert.equal(r.rows.length, 2);
  for (const row of r.rows) {
    assert.ok(Number.isFinite(row.valLoss) && row.perplexity > 1);
    assert.equal(row.predictions.length, 2);
    assert.ok(row.bleu4! >= 0 && row.rougeL! >= 0 && row.rougeL! <= 1);
  }
  // The chat-formatted answers are what SFT teaches: its loss on them is lower than the base's.
  assert.ok(r.rows[1]!.valLoss < r.rows[0]!.valLoss, `${r.rows[0]!.valLoss} → ${r.rows[1]!.valLoss}`);
  for (const f of ["data/train.json", "data/val.json", "base/model.safetensors", "sft/model.safetensors", "sft/loss.png", "metrics.json", "predictions.jsonl"]) assert.ok(fs.existsSync(path.join(tmp, f)), f);
});
