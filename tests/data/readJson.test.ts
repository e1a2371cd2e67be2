/** JSON / JSON Lines readers: shapes, encodings, blank lines, errors naming file:line. */
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import iconv from "iconv-lite";
import { DataError, readJson, readJsonl, streamJsonl } from "../../src/data/readers/index.ts";

const tmp = mkdtempSync(join(tmpdir(), "graft-json-"));
process.on("exit", () => rmSync(tmp, { recursive: true, force: true }));
let nTmp = 0;
function tmpFile(content: string | Uint8Array, name = `t${nTmp++}.json`): string {
  const p = join(tmp, name);
  writeFileSync(p, content);
  return p;
}

async function rejectsData(fn: () => Promise<unknown>, message: RegExp): Promise<void> {
  await assert.rejects(fn, (e: unknown) => {
    assert.ok(e instanceof DataError, `expected a DataError, got ${String(e)}`);
    assert.match(e.message, message);
    return true;
  });
}

async function collect<T>(it: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const x of it) out.push(x);
  return out;
}

const records = [
  { instruction: "高血压能吃党参吗？", output: "可以。" },
  { instruction: "hi", output: "hello", n: 2 },
];

test("readJson: a top-level array or {data: [...]}, any encoding", async () => {
  assert.deepEqual(await readJson(tmpFile(JSON.stringify(records, null, 2))), records);
  assert.deepEqual(await readJson(tmpFile(JSON.stringify({ version: 1, data: records }))), records);
  assert.deepEqual(await readJson(tmpFile(iconv.encode(JSON.stringify(records), "gb18030"))), records, "auto → GB18030");
  assert.deepEqual(await readJson(tmpFile("\uFEFF" + JSON.stringify(records))), records, "BOM stripped");
  const typed = await readJson<{ instruction: string }>(tmpFile(JSON.stringify(records)), { encoding: "utf-8" });
  assert.equal(typed[0]!.instruction, "高血压能吃党参吗？");
});

test("readJson: wrong shapes and syntax errors name the file", async () => {
  const obj = tmpFile('{"rows": [], "n": 1}', "obj.json");
  await rejectsData(() => readJson(obj), /obj\.json: expected a JSON array of records or an object with a "data" array, got an object with keys \[rows, n\]$/);
  await rejectsData(() => readJson(tmpFile("42", "num.json")), /num\.json: .* got number$/);
  await rejectsData(() => readJson(tmpFile('[\n  {"a": 1},\n  {"a": }\n]', "bad.json")), /bad\.json(:3)?: invalid JSON: /);
});

test("readJsonl: one value per line; blank lines, CRLF and a final newline are fine", async () => {
  const text = records.map((r) => JSON.stringify(r)).join("\r\n") + "\r\n\n  \n";
  const p = tmpFile(text, "ok.jsonl");
  assert.deepEqual(await readJsonl(p), records);
  assert.deepEqual(await collect(streamJsonl(p)), records);
  const gb = tmpFile(iconv.encode(records.map((r) => JSON.stringify(r)).join("\n"), "gb18030"), "gb.jsonl");
  assert.deepEqual(await readJsonl(gb), records, "auto → GB18030, no final newline");
  assert.deepEqual(await collect(streamJsonl(gb, { encoding: "gb18030" })), records);
  assert.deepEqual(await readJsonl(tmpFile("")), []);
});

test("readJsonl / streamJsonl: a bad line throws file:line", async () => {
  const p = tmpFile('{"a": 1}\n\n{"a": 2,}\n{"a": 3}\n', "train.jsonl");
  await rejectsData(() => readJsonl(p), /train\.jsonl:3: invalid JSON: /);
  await rejectsData(() => collect(streamJsonl(p)), /train\.jsonl:3: invalid JSON: /);
  const many = Array.from({ length: 5000 }, (_, i) => JSON.stringify({ i, text: "x".repeat(20) }));
  many[4321] = "{oops";
  const big = tmpFile(many.join("\n"), "big.jsonl");
  await rejectsData(() => collect(streamJsonl(big)), /big\.jsonl:4322: invalid JSON: /);
  await rejectsData(() => readJsonl(tmpFile(Buffer.from([0x7b, 0xff, 0x7d]), "bytes.jsonl"), { encoding: "utf-8" }), /bytes\.jsonl:1: invalid UTF-8 at byte 1/);
});
