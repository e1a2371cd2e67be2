/**
 * JSON and JSON Lines files → records.
 *
 *   const rows = await readJson("alpaca.json");            // a top-level array, or {"data": [...]}
 *   const chats = await readJsonl("train.jsonl");           // one JSON value per line
 *   for await (const r of streamJsonl("big.jsonl")) { ... }
 *
 * Errors name the file and line: `train.jsonl:12: invalid JSON: Unexpected token ...`.
 * Blank lines in JSON Lines are skipped. Encoding as for CSV ("auto" by default, BOM stripped).
 */
import { readFile } from "node:fs/promises";
import { DataError } from "./DataError.ts";
import { decodeFileChunks, decodeText, type TextEncoding } from "./encoding.ts";

export interface JsonReadOptions {
  encoding?: TextEncoding;
}

/** Reads a JSON file holding an array of records, or an object whose "data" field is that array. */
export async function readJson<T = Record<string, unknown>>(path: string, opts: JsonReadOptions = {}): Promise<T[]> {
  const text = decodeText(await readFile(path), opts.encoding ?? "auto", path);
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (e) {
    const msg = (e as Error).message;
    throw new DataError(path, lineOfJsonError(text, msg), `invalid JSON: ${msg}`);
  }
  if (Array.isArray(value)) return value as T[];
  if (value !== null && typeof value === "object" && Array.isArray((value as { data?: unknown }).data)) {
    return (value as { data: T[] }).data;
  }
  const got = value === null ? "null" : Array.isArray(value) ? "array" : typeof value === "object" ? `an object with keys [${Object.keys(value).slice(0, 10).join(", ")}]` : typeof value;
  throw new DataError(path, undefined, `expected a JSON array of records or an object with a "data" array, got ${got}`);
}

/** Reads a JSON Lines file: one JSON value per non-blank line. */
export async function readJsonl<T = Record<string, unknown>>(path: string, opts: JsonReadOptions = {}): Promise<T[]> {
  const text = decodeText(await readFile(path), opts.encoding ?? "auto", path);
  const out: T[] = [];
  let line = 0;
  let start = 0;
  while (start <= text.length) {
    let end = text.indexOf("\n", start);
    if (end === -1) end = text.length;
    line++;
    const v = parseJsonLine<T>(text.slice(start, end), path, line);
    if (v !== undefined) out.push(v.value);
    start = end + 1;
  }
  return out;
}

/** Streams a JSON Lines file value by value (constant memory). */
export async function* streamJsonl<T = Record<string, unknown>>(path: string, opts: JsonReadOptions = {}): AsyncGenerator<T> {
  let rest = "";
  let line = 0;
  for await (const chunk of decodeFileChunks(path, opts.encoding ?? "auto")) {
    rest += chunk;
    let start = 0;
    let end: number;
    while ((end = rest.indexOf("\n", start)) !== -1) {
      line++;
      const v = parseJsonLine<T>(rest.slice(start, end), path, line);
      if (v !== undefined) yield v.value;
      start = end + 1;
    }
    rest = rest.slice(start);
  }
  line++;
  const v = parseJsonLine<T>(rest, path, line);
  if (v !== undefined) yield v.value;
}

function parseJsonLine<T>(raw: string, file: string, line: number): { value: T } | undefined {
  let s = raw;
  if (line === 1 && s.charCodeAt(0) === 0xfeff) s = s.slice(1);
  if (s.trim() === "") return undefined;
  try {
    return { value: JSON.parse(s) as T };
  } catch (e) {
    throw new DataError(file, line, `invalid JSON: ${(e as Error).message}`);
  }
}

/** Best effort: V8 messages sometimes carry "position N" or "(line L column C)". */
function lineOfJsonError(text: string, message: string): number | undefined {
  const lc = /\(line (\d+) column \d+\)/.exec(message);
  if (lc) return Number(lc[1]);
  const pos = /at position (\d+)/.exec(message);
  if (!pos) return undefined;
  const p = Number(pos[1]);
  let line = 1;
  for (let i = 0; i < p && i < text.length; i++) if (text.charCodeAt(i) === 10) line++;
  return line;
}
