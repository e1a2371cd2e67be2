/**
 * safetensors: u64 LE header length, a JSON header `{name: {dtype, shape, data_offsets}, __metadata__}`,
 * then the data buffer. Reading is lazy (header first, each tensor read by offset on demand);
 * writing is atomic. Sharded checkpoints (`model.safetensors.index.json`) are in safetensorsIndex.ts.
 */
import { ByteReader, openSource, type ByteSource } from "./ByteSource.ts";
import { SafetensorsError } from "./FormatError.ts";
import { writeAtomic } from "./atomicWrite.ts";
import {
  checkEntry,
  decodeTensorBytes,
  elementSize,
  encodeTensorBytes,
  numelOf,
  isValidShape,
  type TensorDType,
  type TensorEntry,
  type TensorInfo,
  type TensorMap,
  type TensorReader,
} from "./tensorData.ts";

/** The safetensors dtype names we read and write, and the TensorDType each maps to. */
export const SAFETENSORS_DTYPES: Readonly<Record<string, TensorDType>> = {
  F64: "float64",
  F32: "float32",
  F16: "float16",
  BF16: "bfloat16",
  I64: "int64",
  I32: "int32",
  I16: "int16",
  I8: "int8",
  U8: "uint8",
  BOOL: "bool",
};

const TO_FILE_DTYPE: Readonly<Record<TensorDType, string>> = {
  float64: "F64",
  float32: "F32",
  float16: "F16",
  bfloat16: "BF16",
  int64: "I64",
  int32: "I32",
  int16: "I16",
  int8: "I8",
  uint8: "U8",
  bool: "BOOL",
};

/** Header size limit, as in the reference implementation. */
export const MAX_HEADER_BYTES = 100_000_000;

/** A safetensors file opened lazily: header parsed, tensors read by offset on demand. */
export class SafetensorsFile implements TensorReader {
  readonly path: string;
  readonly tensors: readonly TensorInfo[];
  /** The `__metadata__` string map (empty when absent). */
  readonly metadata: Readonly<Record<string, string>>;
  /** Byte offset where the data buffer starts (8 + header length). */
  readonly dataStart: number;
  private readonly byName: Map<string, TensorInfo>;
  private readonly src: ByteSource;

  private constructor(src: ByteSource, tensors: TensorInfo[], metadata: Record<string, string>, dataStart: number) {
    this.src = src;
    this.path = src.name;
    this.tensors = tensors;
    this.metadata = metadata;
    this.dataStart = dataStart;
    this.byName = new Map(tensors.map((t) => [t.name, t]));
  }

  /** Opens a path (read by offset) or in-memory bytes; only the header is read. */
  static open(input: string | Uint8Array, name?: string): SafetensorsFile {
    const src = openSource(input, name);
    try {
      const { tensors, metadata, dataStart } = parseHeader(src);
      return new SafetensorsFile(src, tensors, metadata, dataStart);
    } catch (e) {
      src.close();
      throw e;
    }
  }

  has(name: string): boolean {
    return this.byName.has(name);
  }

  info(name: string): TensorInfo {
    const t = this.byName.get(name);
    if (!t) throw new SafetensorsError(this.path, `no tensor named "${name}"`);
    return t;
  }

  readBytes(name: string): Uint8Array {
    const t = this.info(name);
    return this.src.read(t.byteOffset, t.byteLength);
  }

  read(name: string): TensorEntry {
    const t = this.info(name);
    const { dtype, data } = decodeTensorBytes(this.readBytes(name), SAFETENSORS_DTYPES[t.fileDType]!, numelOf(t.shape));
    return { dtype, shape: [...t.shape], data };
  }

  /** Reads every tensor into memory. */
  readAll(): TensorMap {
    const out: TensorMap = {};
    for (const t of this.tensors) out[t.name] = this.read(t.name);
    return out;
  }

  close(): void {
    this.src.close();
  }
}

/** Opens a safetensors file lazily (see SafetensorsFile). */
export function openSafetensors(input: string | Uint8Array, name?: string): SafetensorsFile {
  return SafetensorsFile.open(input, name);
}

/** Reads a whole safetensors file: every tensor plus `__metadata__`. */
export function loadSafetensors(input: string | Uint8Array): { tensors: TensorMap; metadata: Record<string, string> } {
  const f = SafetensorsFile.open(input);
  try {
    return { tensors: f.readAll(), metadata: { ...f.metadata } };
  } finally {
    f.close();
  }
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function parseHeader(src: ByteSource): { tensors: TensorInfo[]; metadata: Record<string, string>; dataStart: number } {
  const fail = (m: string) => new SafetensorsError(src.name, m);
  const r = new ByteReader(src, fail, 0, 8);
  if (src.size < 8) throw fail(`file is ${src.size} bytes, too short for the 8-byte header length`);
  const headerLen = r.u64("header length");
  if (headerLen > BigInt(src.size - 8)) throw fail(`header length ${headerLen} exceeds file size ${src.size}`);
  if (headerLen > BigInt(MAX_HEADER_BYTES)) throw fail(`header length ${headerLen} exceeds the ${MAX_HEADER_BYTES}-byte limit`);
  const n = Number(headerLen);
  if (n < 2) throw fail(`header length ${n} is too small for a JSON object`);
  const text = r.string(n, "JSON header");
  let header: unknown;
  try {
    header = JSON.parse(text);
  } catch (e) {
    throw fail(`header is not valid JSON: ${(e as Error).message}`);
  }
  if (!isPlainObject(header)) throw fail("header is not a JSON object");
  const dataStart = 8 + n;
  const dataSize = src.size - dataStart;
  const metadata: Record<string, string> = {};
  const tensors: TensorInfo[] = [];
  for (const [key, value] of Object.entries(header)) {
    if (key === "__metadata__") {
      if (!isPlainObject(value)) throw fail(`"__metadata__" is not an object of strings`);
      for (const [mk, mv] of Object.entries(value)) {
        if (typeof mv !== "string") throw fail(`"__metadata__" key "${mk}" is a ${typeof mv}, not a string`);
        metadata[mk] = mv;
      }
      continue;
    }
    if (!isPlainObject(value)) throw fail(`tensor "${key}": entry is not an object`);
    const { dtype: fileDType, shape, data_offsets: offsets } = value;
    if (typeof fileDType !== "string") throw fail(`tensor "${key}": missing dtype`);
    const dtype = Object.hasOwn(SAFETENSORS_DTYPES, fileDType) ? SAFETENSORS_DTYPES[fileDType]! : undefined;
    if (!dtype) throw fail(`tensor "${key}": dtype ${fileDType} is not supported (supported: ${Object.keys(SAFETENSORS_DTYPES).join(", ")})`);
    if (!isValidShape(shape)) throw fail(`tensor "${key}": invalid shape ${JSON.stringify(shape)}`);
    if (!Array.isArray(offsets) || offsets.length !== 2 || !offsets.every((o) => Number.isSafeInteger(o) && o >= 0)) {
      throw fail(`tensor "${key}": invalid data_offsets ${JSON.stringify(offsets)}`);
    }
    const [begin, end] = offsets as [number, number];
    if (end < begin) throw fail(`tensor "${key}": data_offsets [${begin}, ${end}] end before they begin`);
    if (end > dataSize) throw fail(`tensor "${key}": data_offsets [${begin}, ${end}] run past the data buffer (${dataSize} bytes)`);
    const expected = numelOf(shape) * elementSize(dtype);
    if (end - begin !== expected) {
      throw fail(`tensor "${key}": data_offsets [${begin}, ${end}] hold ${end - begin} bytes but ${fileDType} [${shape.join(", ")}] needs ${expected}`);
    }
    tensors.push({ name: key, dtype: dtype === "float16" ? "float32" : dtype, fileDType, shape: [...shape], byteOffset: dataStart + begin, byteLength: end - begin });
  }
  const sorted = [...tensors].sort((a, b) => a.byteOffset - b.byteOffset);
  for (let i = 1; i < sorted.length; i++) {
    const prev = sorted[i - 1]!;
    const cur = sorted[i]!;
    if (cur.byteOffset < prev.byteOffset + prev.byteLength) throw fail(`tensor "${cur.name}" overlaps tensor "${prev.name}"`);
  }
  return { tensors, metadata, dataStart };
}

/** Builds the header bytes (padded with spaces to a multiple of 8) and the data layout for a writer. */
export function buildSafetensorsHeader(
  file: string,
  tensors: TensorMap,
  metadata: Record<string, string> = {},
): { header: Uint8Array; order: string[]; dataBytes: number } {
  const fail = (m: string) => new SafetensorsError(file, m);
  const json: Record<string, unknown> = {};
  const meta = Object.entries(metadata);
  if (meta.length) {
    for (const [k, v] of meta) if (typeof v !== "string") throw fail(`metadata key "${k}" must be a string, got ${typeof v}`);
    json["__metadata__"] = metadata;
  }
  // Larger elements first (then by name), as the reference writer does: every tensor stays aligned
  // to its element size, so its bytes can be viewed in place.
  const order = Object.keys(tensors).sort((a, b) => elementSize(tensors[b]!.dtype) - elementSize(tensors[a]!.dtype) || (a < b ? -1 : a > b ? 1 : 0));
  let offset = 0;
  for (const name of order) {
    if (name === "__metadata__") throw fail(`"__metadata__" cannot be a tensor name`);
    const t = tensors[name]!;
    checkEntry(name, t, fail);
    const len = numelOf(t.shape) * elementSize(t.dtype);
    json[name] = { dtype: TO_FILE_DTYPE[t.dtype], shape: t.shape, data_offsets: [offset, offset + len] };
    offset += len;
  }
  let text = JSON.stringify(json);
  const raw = new TextEncoder().encode(text);
  const padded = Math.ceil(raw.length / 8) * 8;
  text += " ".repeat(padded - raw.length);
  const header = new Uint8Array(8 + padded);
  new DataView(header.buffer).setBigUint64(0, BigInt(padded), true);
  header.set(new TextEncoder().encode(text), 8);
  return { header, order, dataBytes: offset };
}

/**
 * Writes tensors (and optional `__metadata__` strings) to a safetensors file atomically
 * (temp file in the same directory, fsync, rename). float16 accepts Uint16Array bits or Float32Array.
 */
export function writeSafetensors(file: string, tensors: TensorMap, metadata: Record<string, string> = {}): void {
  const { header, order } = buildSafetensorsHeader(file, tensors, metadata);
  writeAtomic(file, (write) => {
    write(header);
    for (const name of order) {
      const t = tensors[name]!;
      write(encodeTensorBytes(t.dtype, t.data));
    }
  });
}

/** Serializes tensors to safetensors bytes in memory. */
export function serializeSafetensors(tensors: TensorMap, metadata: Record<string, string> = {}): Uint8Array {
  const { header, order, dataBytes } = buildSafetensorsHeader("<buffer>", tensors, metadata);
  const out = new Uint8Array(header.length + dataBytes);
  out.set(header, 0);
  let off = header.length;
  for (const name of order) {
    const t = tensors[name]!;
    const b = encodeTensorBytes(t.dtype, t.data);
    out.set(b, off);
    off += b.length;
  }
  return out;
}
