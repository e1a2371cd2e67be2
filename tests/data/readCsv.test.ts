/** CSV reader: real data sets (GB18030 medical dialogue, pima), RFC 4180 cases, encodings, errors. */
import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import iconv from "iconv-lite";
import { CsvParser, DataError, detectEncoding, parseCsv, readCsv, streamCsv } from "../../src/data/readers/index.ts";

const repo = fileURLToPath(new URL("../../", import.meta.url));
const shared = join(repo, "../shared/data");
const MEDICAL_FULL = join(shared, "medical-dialogue/样例_内科5000-6000.csv");
const MEDICAL_300 = join(repo, "data/medical-dialogue/internal-medicine-300.csv");
const PIMA = join(repo, "data/pima-diabetes/pima-indians-diabetes.csv");
const PIMA_SHARED = join(shared, "pima-diabetes/pima-indians-diabetes.csv");
const noShared = existsSync(MEDICAL_FULL) ? false : "../shared/data is not present";

const tmp = mkdtempSync(join(tmpdir(), "graft-csv-"));
process.on("exit", () => rmSync(tmp, { recursive: true, force: true }));
let nTmp = 0;
function tmpFile(content: string | Uint8Array, name = `t${nTmp++}.csv`): string {
  const p = join(tmp, name);
  writeFileSync(p, content);
  return p;
}

/** Runs fn and checks it throws a DataError whose message matches. */
async function rejectsData(fn: () => Promise<unknown> | unknown, message: RegExp): Promise<void> {
  await assert.rejects(async () => fn(), (e: unknown) => {
    assert.ok(e instanceof DataError, `expected a DataError, got ${String(e)}`);
    assert.match(e.message, message);
    return true;
  });
}

const FIRST_ASK = "我有高血压这两天女婿来的时候给我拿了些党参泡水喝，您好高血压可以吃党参吗？";

test("medical dialogue (full, GB18030): header, 7,644 rows, readable Chinese", { skip: noShared }, async () => {
  assert.equal(detectEncoding(readFileSync(MEDICAL_FULL)), "gb18030");
  const rows = await readCsv(MEDICAL_FULL);
  assert.equal(rows.length, 7644);
  assert.deepEqual(Object.keys(rows[0]!), ["department", "title", "ask", "answer"]);
  assert.equal(rows[0]!.department, "心血管科");
  assert.equal(rows[0]!.title, "高血压患者能吃党参吗？");
  assert.equal(rows[0]!.ask, FIRST_ASK);
  assert.match(rows[0]!.answer!, /^高血压病人可以口服党参的。/);
  assert.ok(rows.every((r) => !r.ask!.includes("\uFFFD") && !r.answer!.includes("\uFFFD")), "no replacement characters");
  assert.ok(rows.some((r) => /[\r\n]/.test(r.answer!) || /[\r\n]/.test(r.ask!)), "some fields hold quoted line breaks");

  const explicit = await readCsv(MEDICAL_FULL, { encoding: "GB18030", columns: ["ask", "answer"] });
  assert.deepEqual(explicit[7643], { ask: rows[7643]!.ask, answer: rows[7643]!.answer });
  let n = 0;
  let last: Record<string, string> | undefined;
  for await (const r of streamCsv(MEDICAL_FULL)) {
    n++;
    last = r;
  }
  assert.equal(n, 7644);
  assert.deepEqual(last, rows[7643]);
  await rejectsData(() => readCsv(MEDICAL_FULL, { encoding: "utf-8" }), /样例_内科5000-6000\.csv:2: invalid UTF-8 at byte \d+/);
});

test("medical dialogue slice in data/ is the first 300 rows, still GB18030", async () => {
  const bytes = readFileSync(MEDICAL_300);
  assert.equal(detectEncoding(bytes), "gb18030");
  assert.throws(() => new TextDecoder("utf-8", { fatal: true }).decode(bytes));
  const rows = await readCsv(MEDICAL_300);
  assert.equal(rows.length, 300);
  assert.equal(rows[0]!.ask, FIRST_ASK);
  assert.deepEqual([rows[299]!.department, rows[299]!.title], ["神经科", "癫痫病怎么治疗，能改善吗？"]);
  if (!noShared) assert.deepEqual(rows, (await readCsv(MEDICAL_FULL)).slice(0, 300));
});

test("pima diabetes: 768 rows of 9 numbers", async () => {
  const rows = await readCsv(PIMA, { header: false, numeric: true });
  assert.equal(rows.length, 768);
  assert.ok(rows.every((r) => r.length === 9 && r.every((v) => typeof v === "number" && Number.isFinite(v))));
  assert.deepEqual(rows[0], [6, 148, 72, 35, 0, 33.6, 0.627, 50, 1]);
  assert.deepEqual(rows[767], [1, 93, 70, 31, 0, 30.4, 0.315, 23, 0]);
  assert.equal(rows.reduce((s, r) => s + r[8]!, 0), 268, "268 positive cases");
  if (existsSync(PIMA_SHARED)) assert.deepEqual(await readCsv(PIMA_SHARED, { header: false, numeric: true }), rows);

  const named = await readCsv(PIMA, { header: false, numeric: true, columns: ["preg", "plas", "pres", "skin", "insu", "mass", "pedi", "age", "class"] });
  assert.deepEqual(named[0], { preg: 6, plas: 148, pres: 72, skin: 35, insu: 0, mass: 33.6, pedi: 0.627, age: 50, class: 1 });
});

test("RFC 4180: quotes, doubled quotes, line breaks in quotes, CRLF, empty fields", () => {
  const text = 'a,b,c\r\n"x, y","say ""hi""","line1\r\nline2"\r\n,,\r\n"",plain"quote,"end"';
  assert.deepEqual(parseCsv(text, { header: false }), [
    ["a", "b", "c"],
    ["x, y", 'say "hi"', "line1\r\nline2"],
    ["", "", ""],
    ["", 'plain"quote', "end"],
  ]);
  assert.deepEqual(parseCsv(text), [
    { a: "x, y", b: 'say "hi"', c: "line1\r\nline2" },
    { a: "", b: "", c: "" },
    { a: "", b: 'plain"quote', c: "end" },
  ]);
});

test("BOM, LF / CR / CRLF endings, blank lines, trailing delimiter, tab delimiter", () => {
  assert.deepEqual(parseCsv("\uFEFFid,name\n1,ann\n"), [{ id: "1", name: "ann" }]);
  assert.deepEqual(parseCsv("a\rb\r\nc\n\nd\n\n", { header: false }), [["a"], ["b"], ["c"], ["d"]]);
  assert.deepEqual(parseCsv('a\n""\n', { header: false }), [["a"], [""]], "a quoted empty field is a record, not a blank line");
  assert.deepEqual(parseCsv("a\n\nb", { header: false, skipEmptyLines: false }), [["a"], [""], ["b"]]);
  assert.deepEqual(parseCsv("x,\n1,", { header: false }), [["x", ""], ["1", ""]]);
  assert.deepEqual(parseCsv('k\tv\n"a\tb"\t2\n', { delimiter: "\t" }), [{ k: "a\tb", v: "2" }]);
  assert.deepEqual(parseCsv("", { header: false }), []);
  assert.deepEqual(parseCsv("a,b\n"), []);
});

test("the incremental parser gives the same records for every chunking", () => {
  const text = 'h1,h2\r\n"a\r\nb","c""d"\r\ne,f\rg,"h\r"\n"",x\n"tail';
  const endAll = (p: CsvParser, parts: string[]) => {
    const out = parts.flatMap((s) => p.push(s));
    return p.end(out);
  };
  const expected = endAll(new CsvParser("t.csv"), [text, '"']);
  assert.deepEqual(expected.map((r) => r.fields), [["h1", "h2"], ["a\r\nb", 'c"d'], ["e", "f"], ["g", "h\r"], ["", "x"], ["tail"]]);
  for (let cut = 0; cut <= text.length; cut++) {
    assert.deepEqual(endAll(new CsvParser("t.csv"), [text.slice(0, cut), text.slice(cut), '"']), expected, `cut at ${cut}`);
  }
  assert.deepEqual(endAll(new CsvParser("t.csv"), [...text, '"']), expected, "one character per chunk");
  assert.deepEqual(
    expected.map((r) => r.line),
    [1, 2, 4, 5, 7, 8],
    "records carry the physical line they start on",
  );
});

test("header options: columns selects and orders, missing / duplicate names throw", async () => {
  const text = "a,b,c\n1,2,3\n";
  assert.deepEqual(parseCsv(text, { columns: ["c", "a"] }), [{ c: "3", a: "1" }]);
  assert.deepEqual(parseCsv(text, { numeric: true }), [{ a: 1, b: 2, c: 3 }]);
  await rejectsData(() => parseCsv(text, { columns: ["a", "z"] }, "t.csv"), /^t\.csv:1: column "z" is not in the header \(a, b, c\)$/);
  await rejectsData(() => parseCsv("a,b,a\n1,2,3\n", {}, "t.csv"), /^t\.csv:1: duplicate column name "a" in the header$/);
  const proto = parseCsv("__proto__,x\n1,2\n");
  assert.equal(Object.getPrototypeOf(proto[0]), Object.prototype);
  assert.equal(proto[0]!["__proto__"], "1");
});

test("numbers: signs, exponents, nan/inf words; anything else names file, line and column", async () => {
  assert.deepEqual(parseCsv(" 1 ,-2.5,+3e2,.5,1.,NaN,-inf\n", { header: false, numeric: true }), [[1, -2.5, 300, 0.5, 1, NaN, -Infinity]]);
  const p = tmpFile("x,y\n1,2\n3,\n");
  await rejectsData(() => readCsv(p, { numeric: true }), new RegExp(`^${escape(p)}:3: column "y": "" is not a number$`));
  await rejectsData(() => parseCsv("1,0x10\n", { header: false, numeric: true }, "n.csv"), /^n\.csv:1: field 2: "0x10" is not a number$/);
});

test("malformed files: wrong field count and unterminated quotes name the file and line", async () => {
  const short = tmpFile('department,title,ask,answer\nA,"multi\nline",q,a\nB,t,q\n', "data.csv");
  await rejectsData(() => readCsv(short), /data\.csv:4: expected 4 fields, got 3$/);
  await rejectsData(async () => {
    for await (const _ of streamCsv(short));
  }, /data\.csv:4: expected 4 fields, got 3$/);
  const long = tmpFile("1,2\n3,4\n5,6,7\n");
  await rejectsData(() => readCsv(long, { header: false }), /:3: expected 2 fields \(as on line 1\), got 3$/);
  await rejectsData(() => readCsv(long, { header: false, columns: ["a", "b"] }), /:3: expected 2 fields \(from the columns option\), got 3$/);

  const open = tmpFile('a,b\n1,2\n3,"never\nclosed\n', "open.csv");
  await rejectsData(() => readCsv(open), /open\.csv:3: unterminated quoted field: the quote opened here \(field 2 of the record on line 3\) is never closed$/);
  await rejectsData(() => parseCsv('a,b\n"x"y,2\n', {}, "junk.csv"), /^junk\.csv:2: unexpected "y" after the closing quote of field 1/);
  await rejectsData(() => readCsv(tmpFile("a\n1\n"), { encoding: "klingon" }), /unknown encoding "klingon"/);
  await rejectsData(() => parseCsv("a", { delimiter: ";;" }), /single characters/);
});

test("encodings: UTF-8 with and without BOM, GB18030, UTF-16 BOM, explicit labels", async () => {
  const text = "名字,城市\n张三,北京\n";
  const want = [{ 名字: "张三", 城市: "北京" }];
  const utf8 = Buffer.from(text, "utf8");
  const bom = Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), utf8]);
  const gb = iconv.encode(text, "gb18030");
  const u16 = iconv.encode(text, "utf-16le", { addBOM: true });
  assert.equal(detectEncoding(utf8), "utf-8");
  assert.equal(detectEncoding(bom), "utf-8");
  assert.equal(detectEncoding(gb), "gb18030");
  assert.equal(detectEncoding(u16), "utf-16le");
  assert.equal(detectEncoding(new Uint8Array(0)), "utf-8");
  for (const bytes of [utf8, bom, gb, u16]) {
    const p = tmpFile(bytes);
    assert.deepEqual(await readCsv(p), want);
    const streamed = [];
    for await (const r of streamCsv(p)) streamed.push(r);
    assert.deepEqual(streamed, want);
  }
  assert.deepEqual(await readCsv(tmpFile(gb), { encoding: "gbk" }), want);
  assert.deepEqual(await readCsv(tmpFile(Buffer.from("a\ncafé\n", "latin1")), { encoding: "latin1" }), [{ a: "café" }]);
});

test("streamCsv with encoding auto: GB18030 after 64 KiB of ASCII asks for the encoding", async () => {
  const ascii = "id,text\n" + Array.from({ length: 3000 }, (_, i) => `${i},plain ascii row number ${i}`).join("\n") + "\n";
  assert.ok(ascii.length > 1 << 16);
  const p = tmpFile(Buffer.concat([Buffer.from(ascii), iconv.encode("3000,中文\n", "gb18030")]), "late.csv");
  assert.equal((await readCsv(p)).at(-1)!.text, "中文", "whole-file read sees all bytes");
  await rejectsData(async () => {
    for await (const _ of streamCsv(p));
  }, /late\.csv: invalid UTF-8 .*encoding "auto" chose UTF-8 .*gb18030/);
  let last: Record<string, string> | undefined;
  for await (const r of streamCsv(p, { encoding: "gb18030" })) last = r;
  assert.equal(last!.text, "中文");
});

function escape(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}
