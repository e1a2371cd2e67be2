/**
 * `graft prepare`: a raw dialogue file → train.json / val.json for SFT, as the classic exercise does
 * with the medical CSV (department,title,ask,answer): rows become {question, answer}, are shuffled
 * with a seed and split 5,000 / 2,000. Other inputs: alpaca ({instruction, input, output}),
 * sharegpt ({conversations: [{from, value}]}) and messages ({messages: [{role, content}]}) as JSON
 * arrays or JSON Lines; multi-turn conversations are kept as {messages}. Rows that cannot be used
 * (wrong field count, empty question or answer, invalid JSON, missing keys) are skipped and
 * reported with their line number (CSV, JSONL) or record index (JSON).
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { GraftError } from "../core/errors.ts";
import { Generator } from "../core/rng.ts";
import { writeFileAtomic } from "../formats/index.ts";
import type { ChatMessage } from "../tokenizers/index.ts";
import { CsvParser } from "./readers/CsvParser.ts";
import { DataError } from "./readers/DataError.ts";
import { type DetectedEncoding, type TextEncoding, decodeText, detectEncoding } from "./readers/encoding.ts";
import type { SftRecord } from "./sft.ts";

export type PrepareFormat = "medical" | "alpaca" | "sharegpt" | "messages";

export interface PrepareOptions {
  /** .csv, .json or .jsonl. */
  input: string;
  outDir: string;
  /** Rows in train.json (default 5000) and val.json (default 2000). */
  train?: number;
  val?: number;
  encoding?: TextEncoding;
  /** Default: medical for CSV; for JSON, from the first record's keys. */
  format?: PrepareFormat;
  /** Shuffle seed (default 42). */
  seed?: number;
}

export interface BadRow {
  /** 1-based line (CSV: where the record starts; JSONL: its line). */
  line?: number;
  /** 0-based index in a JSON array. */
  record?: number;
  reason: string;
}

export interface PrepareResult {
  format: PrepareFormat;
  encoding: DetectedEncoding | string;
  /** Usable rows read. */
  total: number;
  train: number;
  val: number;
  trainPath: string;
  valPath: string;
  bad: BadRow[];
}

interface Located {
  value: unknown;
  line?: number;
  record?: number;
}

/** Reads and converts the rows of a file; bad rows are collected, not thrown. */
export function readDialogueRows(file: string, opts: { encoding?: TextEncoding; format?: PrepareFormat } = {}): { rows: SftRecord[]; bad: BadRow[]; format: PrepareFormat; encoding: string } {
  if (!fs.existsSync(file)) throw new DataError(file, undefined, "file does not exist");
  const bytes = fs.readFileSync(file);
  const enc = opts.encoding && opts.encoding !== "auto" ? opts.encoding : detectEncoding(bytes);
  const text = decodeText(bytes, enc, file);
  const ext = path.extname(file).toLowerCase();
  const bad: BadRow[] = [];
  let items: Located[];
  let format = opts.format;
  if (ext === ".csv" || ext === ".tsv") {
    items = csvItems(file, text, ext === ".tsv" ? "\t" : ",", bad);
    format ??= "medical";
  } else if (ext === ".jsonl") {
    items = [];
    text.split("\n").forEach((raw, i) => {
      const s = i === 0 && raw.charCodeAt(0) === 0xfeff ? raw.slice(1) : raw;
      if (s.trim() === "") return;
      try {
        items.push({ value: JSON.parse(s), line: i + 1 });
      } catch (e) {
        bad.push({ line: i + 1, reason: `invalid JSON: ${(e as Error).message}` });
      }
    });
  } else if (ext === ".json") {
    let v: unknown;
    try {
      v = JSON.parse(text.charCodeAt(0) === 0xfeff ? text.slice(1) : text);
    } catch (e) {
      throw new DataError(file, undefined, `invalid JSON: ${(e as Error).message}`);
    }
    const arr = Array.isArray(v) ? v : (v as { data?: unknown })?.data;
    if (!Array.isArray(arr)) throw new DataError(file, undefined, 'expected a JSON array of records (or {"data": [...]})');
    items = arr.map((value, record) => ({ value, record }));
  } else {
    throw new DataError(file, undefined, `unsupported extension "${ext}" (use .csv, .json or .jsonl)`);
  }
  format ??= guessFormat(items.find((x) => x.value && typeof x.value === "object")?.value, file);
  const rows: SftRecord[] = [];
  for (const it of items) {
    const r = convert(it.value, format);
    if (typeof r === "string") bad.push({ line: it.line, record: it.record, reason: r });
    else rows.push(r);
  }
  return { rows, bad, format, encoding: enc };
}

function csvItems(file: string, text: string, delimiter: string, bad: BadRow[]): Located[] {
  const parser = new CsvParser(file, { delimiter });
  const recs = parser.end(parser.push(text));
  if (recs.length === 0) throw new DataError(file, undefined, "the CSV is empty");
  const header = recs[0]!.fields.map((h) => h.trim());
  const out: Located[] = [];
  for (const rec of recs.slice(1)) {
    if (rec.fields.length !== header.length) {
      bad.push({ line: rec.line, reason: `expected ${header.length} fields, got ${rec.fields.length}` });
      continue;
    }
    out.push({ value: Object.fromEntries(header.map((h, i) => [h, rec.fields[i]!])), line: rec.line });
  }
  return out;
}

function guessFormat(first: unknown, file: string): PrepareFormat {
  const o = (first ?? {}) as Record<string, unknown>;
  if (Array.isArray(o["messages"])) return "messages";
  if (Array.isArray(o["conversations"])) return "sharegpt";
  if ("instruction" in o && "output" in o) return "alpaca";
  if ("ask" in o && "answer" in o) return "medical";
  if ("question" in o && "answer" in o) return "medical";
  throw new DataError(file, undefined, `cannot tell the format from the keys [${Object.keys(o).join(", ")}]; pass --format medical|alpaca|sharegpt|messages`);
}

const str = (v: unknown) => (typeof v === "string" ? v.trim() : typeof v === "number" ? String(v) : "");

/** One raw row → a record, or the reason it is unusable. */
function convert(v: unknown, format: PrepareFormat): SftRecord | string {
  if (!v || typeof v !== "object" || Array.isArray(v)) return "not an object";
  const o = v as Record<string, unknown>;
  // A prepared file may mix {question, answer} rows with multi-turn {messages} rows.
  if (format === "medical" && Array.isArray(o["messages"])) format = "messages";
  if (format === "medical") {
    if (!("answer" in o) || !("ask" in o || "question" in o)) return 'needs "ask" (or "question") and "answer"';
    const question = str(o["ask"] ?? o["question"]) || str(o["title"]);
    const answer = str(o["answer"]);
    if (!question) return "empty question (ask and title)";
    if (!answer) return "empty answer";
    return { question, answer };
  }
  if (format === "alpaca") {
    const instruction = str(o["instruction"]);
    const input = str(o["input"]);
    const answer = str(o["output"]);
    if (!instruction && !input) return "empty instruction and input";
    if (!answer) return "empty output";
    const question = instruction && input ? `${instruction}\n${input}` : instruction || input;
    const system = str(o["system"]);
    return system ? { question, answer, system } : { question, answer };
  }
  let messages: ChatMessage[];
  if (format === "sharegpt") {
    const conv = o["conversations"];
    if (!Array.isArray(conv)) return 'needs a "conversations" array';
    const roles: Record<string, string> = { human: "user", user: "user", gpt: "assistant", assistant: "assistant", chatgpt: "assistant", bing: "assistant", bard: "assistant", system: "system" };
    messages = [];
    if (str(o["system"])) messages.push({ role: "system", content: str(o["system"]) });
    for (const [i, t] of conv.entries()) {
      const turn = t as Record<string, unknown>;
      const role = roles[str(turn?.["from"]).toLowerCase()];
      if (!role) return `conversations[${i}]: unknown "from" ${JSON.stringify(turn?.["from"])}`;
      messages.push({ role, content: str(turn["value"]) });
    }
  } else {
    const msgs = o["messages"];
    if (!Array.isArray(msgs)) return 'needs a "messages" array';
    messages = [];
    for (const [i, m] of msgs.entries()) {
      const role = str((m as Record<string, unknown>)?.["role"]);
      if (!["system", "user", "assistant", "tool"].includes(role)) return `messages[${i}]: bad role ${JSON.stringify(role)}`;
      messages.push({ role, content: str((m as Record<string, unknown>)["content"]) });
    }
  }
  const turns = messages.filter((m) => m.role !== "system");
  if (!turns.some((m) => m.role === "assistant")) return "no assistant turn";
  const empty = messages.findIndex((m) => m.role !== "system" && !m.content);
  if (empty >= 0) return `turn ${empty} is empty`;
  const sys = messages[0]?.role === "system" ? messages[0].content : undefined;
  if (turns.length === 2 && turns[0]!.role === "user" && turns[1]!.role === "assistant") {
    return sys ? { question: turns[0]!.content, answer: turns[1]!.content, system: sys } : { question: turns[0]!.content, answer: turns[1]!.content };
  }
  return { messages };
}

/** Reads, converts, shuffles (seeded) and writes outDir/train.json and outDir/val.json. */
export function prepareDataset(opts: PrepareOptions): PrepareResult {
  const nTrain = opts.train ?? 5000;
  const nVal = opts.val ?? 2000;
  for (const [k, n] of [["train", nTrain], ["val", nVal]] as const) {
    if (!Number.isInteger(n) || n < 0) throw new GraftError(`--${k} must be a non-negative integer, got ${n}`);
  }
  const { rows, bad, format, encoding } = readDialogueRows(opts.input, opts);
  if (rows.length < nTrain + nVal) {
    throw new GraftError(`${opts.input}: ${rows.length} usable rows (${bad.length} bad), fewer than --train ${nTrain} + --val ${nVal} = ${nTrain + nVal}`);
  }
  const order = new Generator(opts.seed ?? 42).permutation(rows.length);
  const train = order.slice(0, nTrain).map((i) => rows[i]!);
  const val = order.slice(nTrain, nTrain + nVal).map((i) => rows[i]!);
  fs.mkdirSync(opts.outDir, { recursive: true });
  const trainPath = path.join(opts.outDir, "train.json");
  const valPath = path.join(opts.outDir, "val.json");
  writeFileAtomic(trainPath, JSON.stringify(train, null, 2) + "\n");
  writeFileAtomic(valPath, JSON.stringify(val, null, 2) + "\n");
  return { format, encoding, total: rows.length, train: train.length, val: val.length, trainPath, valPath, bad };
}

/** Reads a prepared train.json / val.json (or any JSON / JSONL of records) as SFT records. */
export function readSftRecords(file: string): SftRecord[] {
  const { rows, bad } = readDialogueRows(file);
  if (bad.length) {
    const b = bad[0]!;
    throw new DataError(file, b.line, `${b.record !== undefined ? `record ${b.record}: ` : ""}${b.reason}${bad.length > 1 ? ` (and ${bad.length - 1} more bad rows)` : ""}`);
  }
  return rows;
}
