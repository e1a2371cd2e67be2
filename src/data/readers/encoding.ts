/**
 * Text decoding for the readers: encoding detection ("auto"), BOM stripping, and whole-file or
 * streamed decoding through TextDecoder (UTF-8) or iconv-lite (everything else, e.g. GB18030).
 *
 * "auto" means: a UTF-16 BOM → that UTF-16; bytes that decode as strict UTF-8 (with or without a
 * BOM) → UTF-8; anything else → GB18030 (the superset of GBK/GB2312 that Chinese data sets use).
 * Other legacy encodings (latin1, shift_jis, big5, ...) must be named explicitly.
 */
import { createReadStream } from "node:fs";
import iconv from "iconv-lite";
import { DataError } from "./DataError.ts";

/** "auto", or any label iconv-lite knows ("utf-8", "gb18030", "gbk", "latin1", "utf-16le", ...). */
export type TextEncoding = "auto" | "utf-8" | "gb18030" | (string & {});

export type DetectedEncoding = "utf-8" | "utf-16le" | "utf-16be" | "gb18030";

/** Picks the encoding of a file's bytes (see the module comment for the rule). */
export function detectEncoding(bytes: Uint8Array): DetectedEncoding {
  const bom = bomEncoding(bytes);
  if (bom) return bom;
  return isUtf8(bytes, false) ? "utf-8" : "gb18030";
}

/** Decodes a whole file's bytes; strips a BOM. Invalid UTF-8 under an explicit "utf-8" throws naming the line. */
export function decodeText(bytes: Uint8Array, encoding: TextEncoding = "auto", file?: string): string {
  const enc = resolveEncoding(encoding, file) ?? detectEncoding(bytes);
  if (enc === "utf-8") {
    try {
      return new TextDecoder("utf-8", { fatal: true }).decode(bytes);
    } catch {
      const offset = firstInvalidUtf8(bytes);
      throw new DataError(file, lineAtByte(bytes, offset), `invalid UTF-8 at byte ${offset}; pass the file's encoding (e.g. { encoding: "gb18030" }) or "auto"`);
    }
  }
  return iconv.decode(bytes, enc, { stripBOM: true });
}

/**
 * Streams a file as decoded text chunks. With "auto" the encoding is chosen from the first chunk
 * (64 KiB); if later bytes turn out not to be UTF-8 the error says to name the encoding.
 */
export async function* decodeFileChunks(path: string, encoding: TextEncoding = "auto", chunkBytes = 1 << 16): AsyncGenerator<string> {
  let enc = resolveEncoding(encoding, path);
  const auto = enc === undefined;
  let decode: ((bytes: Uint8Array) => string) | undefined;
  let finish: (() => string) | undefined;
  let bytesSeen = 0;
  const stream = createReadStream(path, { highWaterMark: chunkBytes });
  for await (const chunk of stream as AsyncIterable<Buffer>) {
    if (!decode) {
      enc ??= bomEncoding(chunk) ?? (isUtf8(chunk, true) ? "utf-8" : "gb18030");
      [decode, finish] = makeDecoder(enc, path, auto, () => bytesSeen);
    }
    const text = decode(chunk);
    bytesSeen += chunk.length;
    if (text) yield text;
  }
  if (!finish) return; // empty file
  const tail = finish();
  if (tail) yield tail;
}

function makeDecoder(enc: string, file: string, auto: boolean, offset: () => number): [(b: Uint8Array) => string, () => string] {
  if (enc === "utf-8") {
    const td = new TextDecoder("utf-8", { fatal: true });
    const fail = (): never => {
      const hint = auto ? `encoding "auto" chose UTF-8 from the start of the file; pass { encoding: "gb18030" } (or the right one)` : `pass the file's encoding`;
      throw new DataError(file, undefined, `invalid UTF-8 in the bytes after offset ${offset()}; ${hint}`);
    };
    return [
      (b) => {
        try {
          return td.decode(b, { stream: true });
        } catch {
          return fail();
        }
      },
      () => {
        try {
          return td.decode();
        } catch {
          return fail();
        }
      },
    ];
  }
  const dec = iconv.getDecoder(enc, { stripBOM: true });
  return [(b) => dec.write(Buffer.from(b.buffer, b.byteOffset, b.byteLength)), () => dec.end() ?? ""];
}

/** Normalises an encoding label; undefined means "auto". Unknown labels throw. */
function resolveEncoding(encoding: TextEncoding, file: string | undefined): string | undefined {
  const e = encoding.toLowerCase();
  if (e === "auto") return undefined;
  if (e === "utf-8" || e === "utf8") return "utf-8";
  if (!iconv.encodingExists(e)) throw new DataError(file, undefined, `unknown encoding "${encoding}" (use "auto", "utf-8", "gb18030", or another label iconv-lite supports)`);
  return e;
}

function bomEncoding(b: Uint8Array): DetectedEncoding | undefined {
  if (b.length >= 3 && b[0] === 0xef && b[1] === 0xbb && b[2] === 0xbf) return "utf-8";
  if (b.length >= 2 && b[0] === 0xff && b[1] === 0xfe) return "utf-16le";
  if (b.length >= 2 && b[0] === 0xfe && b[1] === 0xff) return "utf-16be";
  return undefined;
}

/** Strict UTF-8 check; with `partial` a sequence cut off at the end of the bytes is allowed. */
function isUtf8(bytes: Uint8Array, partial: boolean): boolean {
  try {
    new TextDecoder("utf-8", { fatal: true }).decode(bytes, { stream: partial });
    return true;
  } catch {
    return false;
  }
}

/** Byte offset of the first byte that starts an invalid UTF-8 sequence, or -1. */
export function firstInvalidUtf8(b: Uint8Array): number {
  let i = 0;
  while (i < b.length) {
    const c = b[i]!;
    if (c < 0x80) {
      i++;
      continue;
    }
    let n: number;
    let lo = 0x80;
    let hi = 0xbf;
    if (c >= 0xc2 && c <= 0xdf) n = 1;
    else if (c >= 0xe0 && c <= 0xef) {
      n = 2;
      if (c === 0xe0) lo = 0xa0; // no overlong forms
      if (c === 0xed) hi = 0x9f; // no surrogates
    } else if (c >= 0xf0 && c <= 0xf4) {
      n = 3;
      if (c === 0xf0) lo = 0x90;
      if (c === 0xf4) hi = 0x8f; // ≤ U+10FFFF
    } else return i;
    if (i + n >= b.length) return i; // truncated sequence
    const c1 = b[i + 1]!;
    if (c1 < lo || c1 > hi) return i;
    for (let k = 2; k <= n; k++) if ((b[i + k]! & 0xc0) !== 0x80) return i;
    i += n + 1;
  }
  return -1;
}

/** 1-based line number of a byte offset (counts LF bytes before it). */
function lineAtByte(b: Uint8Array, offset: number): number {
  let line = 1;
  for (let i = 0; i < offset && i < b.length; i++) if (b[i] === 0x0a) line++;
  return line;
}
