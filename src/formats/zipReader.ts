/**
 * A minimal zip reader for PyTorch archives: central directory (with zip64), entries read by offset
 * on demand. Stored entries (what torch.save writes) are read in place; deflated ones go through
 * fflate. Every offset and size is checked against the file before it is used.
 */
import { inflateSync } from "fflate";
import { ByteReader, type ByteSource } from "./ByteSource.ts";
import { ZipError } from "./FormatError.ts";

export interface ZipEntry {
  name: string;
  method: number;
  compressedSize: number;
  size: number;
  crc32: number;
  localHeaderOffset: number;
}

const EOCD_SIG = 0x06054b50;
const ZIP64_LOCATOR_SIG = 0x07064b50;
const ZIP64_EOCD_SIG = 0x06064b50;
const CDH_SIG = 0x02014b50;
const LFH_SIG = 0x04034b50;

export class ZipArchive {
  readonly entries: ReadonlyMap<string, ZipEntry>;

  constructor(readonly src: ByteSource) {
    this.entries = readCentralDirectory(src);
  }

  private fail(m: string): ZipError {
    return new ZipError(this.src.name, m);
  }

  entry(name: string): ZipEntry {
    const e = this.entries.get(name);
    if (!e) throw this.fail(`archive has no entry "${name}"`);
    return e;
  }

  /** Absolute byte range of an entry's (compressed) data, from its local header. */
  dataRange(name: string): { offset: number; length: number } {
    const e = this.entry(name);
    const r = new ByteReader(this.src, (m) => this.fail(`entry "${name}": ${m}`), e.localHeaderOffset, 64);
    if (r.u32("local header signature") !== LFH_SIG) throw this.fail(`entry "${name}": bad local header signature at offset ${e.localHeaderOffset}`);
    r.skip(22, "local header");
    const nameLen = r.u16("name length");
    const extraLen = r.u16("extra length");
    const offset = e.localHeaderOffset + 30 + nameLen + extraLen;
    if (offset + e.compressedSize > this.src.size) {
      throw this.fail(`entry "${name}": ${e.compressedSize} bytes at offset ${offset} run past the end of the file (${this.src.size} bytes)`);
    }
    return { offset, length: e.compressedSize };
  }

  /** Reads and (if needed) inflates an entry. */
  read(name: string): Uint8Array {
    const e = this.entry(name);
    const { offset, length } = this.dataRange(name);
    const raw = this.src.read(offset, length);
    if (e.method === 0) {
      if (e.size !== e.compressedSize) throw this.fail(`entry "${name}": stored entry has size ${e.size} but ${e.compressedSize} stored bytes`);
      return raw;
    }
    if (e.method !== 8) throw this.fail(`entry "${name}": compression method ${e.method} is not supported (stored or deflate only)`);
    let out: Uint8Array;
    try {
      out = inflateSync(raw, { out: new Uint8Array(e.size) });
    } catch (err) {
      throw this.fail(`entry "${name}": corrupt deflate data (${(err as Error).message})`);
    }
    if (out.length !== e.size) throw this.fail(`entry "${name}": inflated to ${out.length} bytes, expected ${e.size}`);
    return out;
  }
}

function readCentralDirectory(src: ByteSource): Map<string, ZipEntry> {
  const fail = (m: string) => new ZipError(src.name, m);
  if (src.size < 22) throw fail(`file is ${src.size} bytes, too short for a zip archive`);
  const tailLen = Math.min(src.size, 22 + 0xffff);
  const tail = src.read(src.size - tailLen, tailLen);
  const tv = new DataView(tail.buffer, tail.byteOffset, tail.byteLength);
  let eocd = -1;
  for (let i = tailLen - 22; i >= 0; i--) {
    if (tv.getUint32(i, true) === EOCD_SIG && i + 22 + tv.getUint16(i + 20, true) <= tailLen) {
      eocd = i;
      break;
    }
  }
  if (eocd < 0) throw fail("no end-of-central-directory record: not a zip archive, or truncated");
  let count: number = tv.getUint16(eocd + 10, true);
  let cdSize: number = tv.getUint32(eocd + 12, true);
  let cdOffset: number = tv.getUint32(eocd + 16, true);
  const eocdAbs = src.size - tailLen + eocd;
  if (count === 0xffff || cdSize === 0xffffffff || cdOffset === 0xffffffff) {
    if (eocdAbs < 20) throw fail("zip64 archive without a zip64 locator");
    const loc = new ByteReader(src, fail, eocdAbs - 20, 20);
    if (loc.u32("zip64 locator signature") !== ZIP64_LOCATOR_SIG) throw fail("zip64 archive without a zip64 locator");
    loc.u32("zip64 disk");
    const z64 = loc.count("zip64 end record offset", src.size - 56);
    const r = new ByteReader(src, fail, z64, 56);
    if (r.u32("zip64 end record signature") !== ZIP64_EOCD_SIG) throw fail(`bad zip64 end record signature at offset ${z64}`);
    r.skip(20, "zip64 end record");
    r.u64("entries on disk");
    count = r.count("entry count", src.size);
    cdSize = r.count("central directory size", src.size);
    cdOffset = r.count("central directory offset", src.size);
  }
  if (cdOffset + cdSize > src.size) throw fail(`central directory (${cdSize} bytes at offset ${cdOffset}) runs past the end of the file (${src.size} bytes)`);
  if (count * 46 > cdSize) throw fail(`${count} entries cannot fit in a ${cdSize}-byte central directory`);
  const r = new ByteReader(src, fail, cdOffset);
  const end = cdOffset + cdSize;
  const entries = new Map<string, ZipEntry>();
  const utf8 = new TextDecoder("utf-8");
  for (let i = 0; i < count; i++) {
    if (r.pos + 46 > end) throw fail(`central directory entry #${i} runs past the directory`);
    if (r.u32("central header signature") !== CDH_SIG) throw fail(`bad central directory signature for entry #${i} at offset ${r.pos - 4}`);
    r.skip(6, "central header");
    const method = r.u16("method");
    r.skip(4, "time/date");
    const crc32 = r.u32("crc32");
    let compressedSize = r.u32("compressed size");
    let size = r.u32("size");
    const nameLen = r.u16("name length");
    const extraLen = r.u16("extra length");
    const commentLen = r.u16("comment length");
    r.skip(8, "central header");
    let localHeaderOffset = r.u32("local header offset");
    const name = utf8.decode(r.bytes(nameLen, "entry name"));
    const extraEnd = r.pos + extraLen;
    while (r.pos + 4 <= extraEnd) {
      const id = r.u16("extra id");
      const len = r.u16("extra length");
      const fieldEnd = r.pos + len;
      if (fieldEnd > extraEnd) throw fail(`entry "${name}": extra field runs past its header`);
      if (id === 0x0001) {
        if (size === 0xffffffff) size = r.count(`entry "${name}" zip64 size`, Number.MAX_SAFE_INTEGER);
        if (compressedSize === 0xffffffff) compressedSize = r.count(`entry "${name}" zip64 compressed size`, src.size);
        if (localHeaderOffset === 0xffffffff) localHeaderOffset = r.count(`entry "${name}" zip64 offset`, src.size);
        if (r.pos > fieldEnd) throw fail(`entry "${name}": zip64 extra field is too short`);
      }
      r.pos = fieldEnd;
    }
    r.pos = extraEnd;
    r.skip(commentLen, "entry comment");
    if (localHeaderOffset + 30 > src.size) throw fail(`entry "${name}": local header offset ${localHeaderOffset} is past the end of the file`);
    if (method === 0 && compressedSize > src.size) throw fail(`entry "${name}": size ${compressedSize} exceeds the file size`);
    if (method !== 0 && size > 1100 * compressedSize + 1024) throw fail(`entry "${name}": claims ${size} bytes from ${compressedSize} compressed bytes`);
    entries.set(name, { name, method, compressedSize, size, crc32, localHeaderOffset });
  }
  return entries;
}
