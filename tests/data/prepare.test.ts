/** graft prepare: the GB18030 medical CSV → train.json / val.json, other formats, bad rows with line numbers. */
import { test } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { fileURLToPath } from "node:url";
import iconv from "iconv-lite";
import { prepareDataset, readDialogueRows, readSftRecords } from "../../src/data/prepare.ts";

const repo = fileURLToPath(new URL("../../", import.meta.url));
const MEDICAL_300 = path.join(repo, "data/medical-dialogue/internal-medicine-300.csv");
const MEDICAL_FULL = path.join(repo, "../shared/data/medical-dialogue/样例_内科5000-6000.csv");
const noShared = fs.existsSync(MEDICAL_FULL) ? false : "../shared/data is not present";
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "graft-prepare-"));
process.on("exit", () => fs.rmSync(tmp, { recursive: true, force: true }));
let n = 0;
const file = (name: string, content: string | Buffer) => {
  const p = path.join(tmp, `${n++}-${name}`);
  fs.writeFileSync(p, content);
  return p;
};

test("the embedded medical slice (GB18030, auto-detected) → 200 / 100 {question, answer}, seeded", () => {
  const out = path.join(tmp, "m300");
  const r = prepareDataset({ input: MEDICAL_300, outDir: out, train: 200, val: 100 });
  assert.equal(r.format, "medical");
  assert.equal(r.encoding, "gb18030");
  assert.equal(r.total, 300);
  assert.deepEqual(r.bad, []);
  const train = JSON.parse(fs.readFileSync(path.join(out, "train.json"), "utf8"));
  const val = JSON.parse(fs.readFileSync(path.join(out, "val.json"), "utf8"));
  assert.equal(train.length, 200);
  assert.equal(val.length, 100);
  assert.deepEqual(Object.keys(train[0]).sort(), ["answer", "question"]);
  // Every row exactly once across the two splits (the file itself repeats a few dialogues).
  const key = (r: { question: string; answer: string }) => r.question + "\u0000" + r.answer;
  const all = readDialogueRows(MEDICAL_300).rows as { question: string; answer: string }[];
  assert.deepEqual([...train, ...val].map(key).sort(), all.map(key).sort());
  const first = "我有高血压这两天女婿来的时候给我拿了些党参泡水喝，您好高血压可以吃党参吗？";
  assert.ok([...train, ...val].some((x: { question: string }) => x.question === first));
  // Same seed → same split; another seed → another order.
  const again = prepareDataset({ input: MEDICAL_300, outDir: path.join(tmp, "m300b"), train: 200, val: 100 });
  assert.equal(fs.readFileSync(again.trainPath, "utf8"), fs.readFileSync(r.trainPath, "utf8"));
  const other = prepareDataset({ input: MEDICAL_300, outDir: path.join(tmp, "m300c"), train: 200, val: 100, seed: 7 });
  assert.notEqual(fs.readFileSync(other.trainPath, "utf8"), fs.readFileSync(r.trainPath, "utf8"));
  assert.deepEqual(readSftRecords(r.valPath), val);
  assert.throws(() => prepareDataset({ input: MEDICAL_300, outDir: out, train: 5000, val: 2000 }), /300 usable rows \(0 bad\), fewer than --train 5000 \+ --val 2000 = 7000/);
});

test("the full medical CSV → the seed exercise's 5,000 / 2,000 split", { skip: noShared }, () => {
  const r = prepareDataset({ input: MEDICAL_FULL, outDir: path.join(tmp, "full") });
  assert.equal(r.train, 5000);
  assert.equal(r.val, 2000);
  assert.ok(r.total >= 7000, `${r.total} usable rows`);
  assert.equal(JSON.parse(fs.readFileSync(r.trainPath, "utf8")).length, 5000);
});

test("bad CSV rows are skipped and reported with their line numbers (quoted line breaks counted)", () => {
  const csv = [
    "department,title,ask,answer",
    "内科,头疼,最近头疼怎么办？,多休息。", // line 2
    '内科,咳嗽,"咳嗽\n两周了",多喝水', // lines 3-4
    "内科,缺字段,只有三列", // line 5
    "内科,空回答,胃疼吃什么？,", // line 6
    "内科,只有标题,,注意饮食", // line 7: ask empty → the title is the question
    ",,,", // line 8
  ].join("\r\n");
  const p = file("bad.csv", iconv.encode(csv, "gb18030"));
  const { rows, bad, encoding } = readDialogueRows(p);
  assert.equal(encoding, "gb18030");
  assert.deepEqual(rows, [
    { question: "最近头疼怎么办？", answer: "多休息。" },
    { question: "咳嗽\n两周了", answer: "多喝水" },
    { question: "只有标题", answer: "注意饮食" },
  ]);
  assert.deepEqual(bad, [
    { line: 5, reason: "expected 4 fields, got 3" },
    { line: 6, record: undefined, reason: "empty answer" },
    { line: 8, record: undefined, reason: "empty question (ask and title)" },
  ]);
  // An explicit wrong encoding is an error naming the file, not mojibake.
  assert.throws(() => readDialogueRows(p, { encoding: "utf-8" }), /bad\.csv/);
});

test("alpaca, sharegpt and messages (JSON and JSONL) become {question, answer} or {messages}", () => {
  const alpaca = file("a.json", JSON.stringify([
    { instruction: "翻译", input: "hello", output: "你好" },
    { instruction: "问候", input: "", output: "您好" },
    { instruction: "空", input: "", output: "" },
  ]));
  const a = readDialogueRows(alpaca);
  assert.equal(a.format, "alpaca");
  assert.deepEqual(a.rows, [{ question: "翻译\nhello", answer: "你好" }, { question: "问候", answer: "您好" }]);
  assert.deepEqual(a.bad, [{ line: undefined, record: 2, reason: "empty output" }]);

  const share = file("s.jsonl", [
    JSON.stringify({ conversations: [{ from: "human", value: "头疼" }, { from: "gpt", value: "休息" }] }),
    "{not json",
    JSON.stringify({ conversations: [{ from: "system", value: "你是医生" }, { from: "human", value: "一" }, { from: "gpt", value: "二" }, { from: "human", value: "三" }, { from: "gpt", value: "四" }] }),
    JSON.stringify({ conversations: [{ from: "robot", value: "?" }] }),
  ].join("\n"));
  const s = readDialogueRows(share);
  assert.equal(s.format, "sharegpt");
  assert.deepEqual(s.rows[0], { question: "头疼", answer: "休息" });
  assert.deepEqual(s.rows[1], { messages: [{ role: "system", content: "你是医生" }, { role: "user", content: "一" }, { role: "assistant", content: "二" }, { role: "user", content: "三" }, { role: "assistant", content: "四" }] });
  assert.deepEqual(s.bad.map((b) => b.line), [2, 4]);
  assert.match(s.bad[0]!.reason, /invalid JSON/);
  assert.match(s.bad[1]!.reason, /unknown "from" "robot"/);

  const msgs = file("m.jsonl", JSON.stringify({ messages: [{ role: "system", content: "sys" }, { role: "user", content: "q" }, { role: "assistant", content: "a" }] }) + "\n");
  assert.deepEqual(readDialogueRows(msgs).rows, [{ question: "q", answer: "a", system: "sys" }]);
  assert.throws(() => readDialogueRows(file("x.json", JSON.stringify([{ foo: 1 }]))), /cannot tell the format from the keys \[foo\]/);
  assert.throws(() => readDialogueRows(file("x.txt", "hi")), /unsupported extension ".txt"/);
  assert.throws(() => readSftRecords(file("bad.jsonl", '{"question":"q","answer":""}\n')), /bad\.jsonl:1: empty answer/);
});
