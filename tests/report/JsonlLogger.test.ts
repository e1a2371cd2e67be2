/** JSONL metric log: line format, buffering, append vs truncate, non-finite values, errors. */
import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { JsonlLogger } from "../../src/report/index.ts";

const tmp = mkdtempSync(join(tmpdir(), "graft-jsonl-"));
process.on("exit", () => rmSync(tmp, { recursive: true, force: true }));

const lines = (p: string) =>
  readFileSync(p, "utf8")
    .split("\n")
    .filter((l) => l !== "")
    .map((l) => JSON.parse(l) as Record<string, unknown>);

test("one JSON object per line: step, split, metrics, time", () => {
  const path = join(tmp, "nested/dir/metrics.jsonl");
  const log = new JsonlLogger(path, { flushSecs: 3600 });
  log.log(1, "train", { loss: 2.5, lr: 3e-4 }, 1700000000.25);
  log.log(2, "train", { loss: NaN, grad_norm: Infinity });
  assert.ok(!existsSync(path) || readFileSync(path, "utf8") === "", "buffered until flush");
  log.flush();
  assert.equal(lines(path).length, 2);
  log.log(2, "eval", { loss: 1.9, ppl: Math.exp(1.9) });
  log.close();
  log.close();
  const recs = lines(path);
  assert.deepEqual(recs[0], { step: 1, split: "train", loss: 2.5, lr: 3e-4, time: 1700000000.25 });
  assert.deepEqual(Object.keys(recs[1]!), ["step", "split", "loss", "grad_norm", "time"]);
  assert.equal(recs[1]!.loss, "NaN");
  assert.equal(recs[1]!.grad_norm, "Infinity");
  assert.ok(Math.abs((recs[1]!.time as number) - Date.now() / 1000) < 60);
  assert.equal(recs[2]!.split, "eval");
  assert.ok(Math.abs((recs[2]!.ppl as number) - Math.exp(1.9)) < 1e-12);
});

test("appends to an existing log by default, truncates with append: false", () => {
  const path = join(tmp, "resume.jsonl");
  const a = new JsonlLogger(path);
  a.log(1, "train", { loss: 1 });
  a.close();
  const b = new JsonlLogger(path);
  b.log(2, "train", { loss: 0.5 });
  b.close();
  assert.deepEqual(lines(path).map((r) => r.step), [1, 2]);
  const c = new JsonlLogger(path, { append: false, flushSecs: 0 });
  c.log(3, "train", { loss: 0.25 });
  assert.deepEqual(lines(path).map((r) => r.step), [3], "flushSecs: 0 writes every line");
  c.close();
});

test("reserved names, non-numbers, bad steps and use after close throw", () => {
  const log = new JsonlLogger(join(tmp, "bad.jsonl"));
  assert.throws(() => log.log(1, "train", { step: 1 }), /metric name "step" is reserved/);
  assert.throws(() => log.log(1, "train", { loss: "1" as unknown as number }), /metric "loss" must be a number, got string/);
  assert.throws(() => log.log(0.5, "train", { loss: 1 }), /step must be an integer/);
  log.close();
  assert.throws(() => log.log(1, "train", { loss: 1 }), /is closed/);
});
