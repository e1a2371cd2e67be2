/**
 * CSV files → rows. Decoding (encoding "auto" by default, BOM stripped) is in encoding.ts, the
 * RFC 4180 parsing in CsvParser.ts; this file turns records into rows and checks their shape.
 *
 *   const rows = await readCsv("qa.csv", { encoding: "gb18030" });        // [{department, title, ...}]
 *   const xs = await readCsv("pima.csv", { header: false, numeric: true }); // number[][]
 *   for await (const row of streamCsv("big.csv")) { ... }
 *
 * Every record must have as many fields as the header (or `columns`, or the first record when
 * there is neither); otherwise a DataError names the file and line: `data.csv:17: expected 4
 * fields, got 3`.
 */
import { readFile } from "node:fs/promises";
import { CsvParser, type CsvParserOptions, type CsvRecord } from "./CsvParser.ts";
import { DataError } from "./DataError.ts";
import { decodeFileChunks, decodeText, type TextEncoding } from "./encoding.ts";

export interface CsvOptions extends CsvParserOptions {
  /** Default "auto": UTF-8 when the bytes are valid UTF-8, else GB18030. */
  encoding?: TextEncoding;
  /** The first record names the columns and rows are records (default true). */
  header?: boolean;
  /**
   * With a header: keep only these columns, in this order (each must be in the header).
   * Without a header: names for the fields, so rows become records.
   */
  columns?: readonly string[];
  /** Parse every field as a number (NaN/inf words allowed); anything else throws naming file:line. */
  numeric?: boolean;
}

// (No all-optional "weak" object types on the right of `extends`: an options literal sharing no
// property with them would fail the check.)
type Cell<O> = O extends { numeric: true } ? number : O extends { numeric: false } ? string : "numeric" extends keyof O ? string | number : string;

/**
 * The row type for an options literal: arrays for `header: false` without `columns`, records
 * otherwise; a union when the options are not literal enough to tell.
 */
export type CsvRow<O extends CsvOptions = CsvOptions> = O extends { columns: readonly string[] }
  ? Record<string, Cell<O>>
  : O extends { header: false }
    ? "columns" extends keyof O
      ? Cell<O>[] | Record<string, Cell<O>>
      : Cell<O>[]
    : O extends { header: true }
      ? Record<string, Cell<O>>
      : "header" extends keyof O
        ? Cell<O>[] | Record<string, Cell<O>>
        : Record<string, Cell<O>>;

/** Reads a whole CSV file. */
export async function readCsv<const O extends CsvOptions = Record<never, never>>(path: string, opts?: O): Promise<CsvRow<O>[]> {
  const text = decodeText(await readFile(path), opts?.encoding ?? "auto", path);
  return parseCsv(text, opts, path);
}

/** Parses CSV text that is already decoded; `file` only names the source in errors. */
export function parseCsv<const O extends CsvOptions = Record<never, never>>(text: string, opts?: O, file?: string): CsvRow<O>[] {
  const parser = new CsvParser(file, opts);
  const shaper = new RowShaper(file, opts ?? {});
  const rows: unknown[] = [];
  for (const rec of parser.end(parser.push(text))) {
    const row = shaper.shape(rec);
    if (row !== undefined) rows.push(row);
  }
  return rows as CsvRow<O>[];
}

/** Streams a CSV file row by row (constant memory); "auto" decides the encoding from the first 64 KiB. */
export async function* streamCsv<const O extends CsvOptions = Record<never, never>>(path: string, opts?: O): AsyncGenerator<CsvRow<O>> {
  const parser = new CsvParser(path, opts);
  const shaper = new RowShaper(path, opts ?? {});
  const batch: CsvRecord[] = [];
  const drain = function* (): Generator<CsvRow<O>> {
    for (const rec of batch) {
      const row = shaper.shape(rec);
      if (row !== undefined) yield row as CsvRow<O>;
    }
    batch.length = 0;
  };
  for await (const chunk of decodeFileChunks(path, opts?.encoding ?? "auto")) {
    parser.push(chunk, batch);
    yield* drain();
  }
  parser.end(batch);
  yield* drain();
}

const NUMBER = /^[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?$/;
const SPECIAL: Record<string, number> = { nan: NaN, "+nan": NaN, "-nan": NaN, inf: Infinity, "+inf": Infinity, "-inf": -Infinity, infinity: Infinity, "+infinity": Infinity, "-infinity": -Infinity };

/** Turns parsed records into rows: header handling, column selection, field-count checks, numbers. */
class RowShaper {
  private names: string[] | undefined;
  /** Index in the record of each output column (records), or undefined (arrays). */
  private pick: number[] | undefined;
  private width: number | undefined;
  private widthLine = 0;
  private awaitingHeader: boolean;

  constructor(
    private readonly file: string | undefined,
    private readonly opts: CsvOptions,
  ) {
    this.awaitingHeader = opts.header ?? true;
    if (!this.awaitingHeader && opts.columns) {
      this.names = [...opts.columns];
      this.pick = this.names.map((_, i) => i);
      this.width = this.names.length;
      checkUnique(file, undefined, this.names, "columns option");
    }
  }

  shape(rec: CsvRecord): unknown {
    if (this.awaitingHeader) {
      this.awaitingHeader = false;
      this.setHeader(rec);
      return undefined;
    }
    const f = rec.fields;
    if (this.width === undefined) {
      this.width = f.length;
      this.widthLine = rec.line;
    } else if (f.length !== this.width) {
      const basis = (this.opts.header ?? true) ? "" : this.opts.columns ? " (from the columns option)" : ` (as on line ${this.widthLine})`;
      throw new DataError(this.file, rec.line, `expected ${this.width} fields${basis}, got ${f.length}`);
    }
    if (!this.names) return this.opts.numeric ? f.map((s, k) => this.toNumber(s, k, rec.line)) : f;
    const row: Record<string, string | number> = {};
    for (let k = 0; k < this.names.length; k++) {
      const idx = this.pick![k]!;
      const value = this.opts.numeric ? this.toNumber(f[idx]!, idx, rec.line) : f[idx]!;
      const name = this.names[k]!;
      if (name === "__proto__") Object.defineProperty(row, name, { value, enumerable: true, writable: true, configurable: true });
      else row[name] = value;
    }
    return row;
  }

  private setHeader(rec: CsvRecord): void {
    const header = rec.fields;
    checkUnique(this.file, rec.line, header, "header");
    this.width = header.length;
    this.widthLine = rec.line;
    const wanted = this.opts.columns ?? header;
    checkUnique(this.file, undefined, wanted, "columns option");
    this.pick = wanted.map((name) => {
      const idx = header.indexOf(name);
      if (idx < 0) throw new DataError(this.file, rec.line, `column "${name}" is not in the header (${header.join(", ")})`);
      return idx;
    });
    this.names = [...wanted];
  }

  private toNumber(s: string, idx: number, line: number): number {
    const t = s.trim();
    if (NUMBER.test(t)) return Number(t);
    const special = SPECIAL[t.toLowerCase()];
    if (special !== undefined) return special;
    const col = this.names ? `column "${this.names[this.pick!.indexOf(idx)] ?? idx + 1}"` : `field ${idx + 1}`;
    throw new DataError(this.file, line, `${col}: ${JSON.stringify(s)} is not a number`);
  }
}

function checkUnique(file: string | undefined, line: number | undefined, names: readonly string[], what: string): void {
  const seen = new Set<string>();
  for (const n of names) {
    if (seen.has(n)) throw new DataError(file, line, `duplicate column name "${n}" in the ${what}`);
    seen.add(n);
  }
}
