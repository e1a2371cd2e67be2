/**
 * Incremental RFC 4180 parser over decoded text: push chunks, collect complete records, end().
 *
 * - Fields may be quoted; inside quotes, delimiters and line breaks are data and `""` is one quote.
 * - Records end at CRLF, LF or a lone CR (outside quotes). A final line break is optional.
 * - A quote inside an unquoted field is kept as data (as Python's csv and pandas do); text after
 *   the closing quote of a quoted field other than a delimiter or line break is an error.
 * - A leading BOM (U+FEFF) is skipped. Each record carries the 1-based line it starts on.
 */
import { DataError } from "./DataError.ts";

export interface CsvRecord {
  fields: string[];
  /** 1-based line number on which the record starts. */
  line: number;
}

export interface CsvParserOptions {
  /** One character; default ",". */
  delimiter?: string;
  /** One character; default '"'. */
  quote?: string;
  /** Skip lines that are completely empty (default true). */
  skipEmptyLines?: boolean;
}

const CR = 13;
const LF = 10;

const enum State {
  FieldStart,
  Unquoted,
  Quoted,
  /** Just saw a quote inside a quoted field: either `""` or the closing quote. */
  QuoteInQuoted,
}

export class CsvParser {
  private readonly delim: number;
  private readonly quoteChar: string;
  private readonly quote: number;
  private readonly skipEmpty: boolean;

  private row: string[] = [];
  private field = "";
  private fieldQuoted = false;
  private state = State.FieldStart;
  private started = false;
  /** A CR ended the last record; an LF right after it belongs to the same line break. */
  private pendingCr = false;
  /** A CR inside quotes ended the last chunk; whether it is a CRLF is decided by the next chunk. */
  private quotedCr = false;
  private line = 1;
  private recordLine = 1;
  private quoteLine = 1;

  constructor(
    readonly file?: string,
    opts: CsvParserOptions = {},
  ) {
    const delimiter = opts.delimiter ?? ",";
    const quote = opts.quote ?? '"';
    if (delimiter.length !== 1 || quote.length !== 1) {
      throw new DataError(file, undefined, `CSV delimiter and quote must be single characters, got ${JSON.stringify(delimiter)} and ${JSON.stringify(quote)}`);
    }
    if (delimiter === quote || delimiter === "\n" || delimiter === "\r") {
      throw new DataError(file, undefined, `CSV delimiter ${JSON.stringify(delimiter)} cannot be the quote or a line break`);
    }
    this.delim = delimiter.charCodeAt(0);
    this.quoteChar = quote;
    this.quote = quote.charCodeAt(0);
    this.skipEmpty = opts.skipEmptyLines ?? true;
  }

  /** Parses a chunk; complete records are appended to `out` (returned). */
  push(text: string, out: CsvRecord[] = []): CsvRecord[] {
    let i = 0;
    const n = text.length;
    if (!this.started && n > 0) {
      this.started = true;
      if (text.charCodeAt(0) === 0xfeff) i = 1;
    }
    while (i < n) {
      const c = text.charCodeAt(i);
      if (this.pendingCr) {
        this.pendingCr = false;
        if (c === LF) {
          i++;
          continue;
        }
      }
      switch (this.state) {
        case State.FieldStart:
        case State.Unquoted: {
          if (this.state === State.FieldStart && c === this.quote) {
            this.state = State.Quoted;
            this.fieldQuoted = true;
            this.quoteLine = this.line;
            i++;
            break;
          }
          let j = i;
          while (j < n) {
            const d = text.charCodeAt(j);
            if (d === this.delim || d === LF || d === CR) break;
            j++;
          }
          if (j > i) this.field += text.slice(i, j);
          if (j === n) {
            this.state = State.Unquoted;
            i = n;
          } else i = this.terminator(text.charCodeAt(j), j, out);
          break;
        }
        case State.Quoted: {
          const j = text.indexOf(this.quoteChar, i);
          const end = j === -1 ? n : j;
          this.countBreaks(text, i, end);
          if (end > i) this.field += text.slice(i, end);
          if (j === -1) i = n;
          else {
            this.state = State.QuoteInQuoted;
            i = j + 1;
          }
          break;
        }
        case State.QuoteInQuoted: {
          if (c === this.quote) {
            this.field += this.quoteChar;
            this.state = State.Quoted;
            i++;
          } else if (c === this.delim || c === LF || c === CR) {
            i = this.terminator(c, i, out);
          } else {
            throw new DataError(
              this.file,
              this.line,
              `unexpected ${JSON.stringify(text[i])} after the closing quote of field ${this.row.length + 1} (a quote inside a quoted field must be doubled: "")`,
            );
          }
          break;
        }
      }
    }
    return out;
  }

  /** Flushes the last record (a file need not end with a line break). Throws on an open quote. */
  end(out: CsvRecord[] = []): CsvRecord[] {
    if (this.state === State.Quoted) {
      throw new DataError(this.file, this.quoteLine, `unterminated quoted field: the quote opened here (field ${this.row.length + 1} of the record on line ${this.recordLine}) is never closed`);
    }
    if (this.state !== State.FieldStart || this.row.length > 0) this.endRecord(out);
    this.state = State.FieldStart;
    return out;
  }

  /** Handles a delimiter or line break at index i; returns the next index. */
  private terminator(c: number, i: number, out: CsvRecord[]): number {
    if (c === this.delim) {
      this.row.push(this.field);
      this.field = "";
      this.fieldQuoted = false;
      this.state = State.FieldStart;
      return i + 1;
    }
    this.endRecord(out);
    this.line++;
    this.recordLine = this.line;
    if (c === CR) this.pendingCr = true;
    return i + 1;
  }

  private endRecord(out: CsvRecord[]): void {
    const blank = this.row.length === 0 && this.field === "" && !this.fieldQuoted;
    this.row.push(this.field);
    if (!(blank && this.skipEmpty)) out.push({ fields: this.row, line: this.recordLine });
    this.row = [];
    this.field = "";
    this.fieldQuoted = false;
    this.state = State.FieldStart;
  }

  /** Counts line breaks (LF, CRLF, lone CR) inside quoted text [from, to). */
  private countBreaks(text: string, from: number, to: number): void {
    if (this.quotedCr) {
      this.quotedCr = false;
      if (from >= to || text.charCodeAt(from) !== LF) this.line++;
    }
    for (let k = from; k < to; k++) {
      const c = text.charCodeAt(k);
      if (c === LF) this.line++;
      else if (c === CR) {
        if (k + 1 < to) {
          if (text.charCodeAt(k + 1) !== LF) this.line++;
        } else if (to < text.length) this.line++; // CR right before a quote
        else this.quotedCr = true; // chunk ends with CR: decided by the next chunk
      }
    }
  }
}
