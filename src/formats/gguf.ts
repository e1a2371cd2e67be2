/**
 * GGUF v2/v3 reader: header, typed metadata (every value type, nested arrays), tensor infos and
 * aligned data, read lazily by offset. Shapes are in PyTorch order (GGUF stores them reversed).
 * F16 reads as float32, BF16 as bfloat16 bits, Q8_0 / Q4_0 dequantize to float32. The writer is in
 * ggufWriter.ts.
 */
import { ByteReader, openSource, type ByteSource } from "./ByteSource.ts";
import { GgufError } from "./FormatError.ts";
import { GGML_TYPES, dequantizeQ4_0, dequantizeQ8_0, ggmlByteLength, type GgmlTypeInfo } from "./ggmlQuant.ts";
import { decodeTensorBytes, numelOf, type TensorDType, type TensorEntry, type TensorInfo, type TensorReader } from "./tensorData.ts";

export const GGUF_MAGIC = 0x46554747; // "GGUF" little-endian
export const GGUF_VERSION = 3;
export const GGUF_DEFAULT_ALIGNMENT = 32;
/** ggml's GGML_MAX_DIMS. */
export const GGUF_MAX_DIMS = 4;

/** GGUF metadata value type ids, by name. */
export const GGUF_VALUE_TYPES = {
  uint8: 0,
  int8: 1,
  uint16: 2,
  int16: 3,
  uint32: 4,
  int32: 5,
  float32: 6,
  bool: 7,
  string: 8,
  array: 9,
  uint64: 10,
  int64: 11,
  float64: 12,
} as const;

export type GgufScalarType = Exclude<keyof typeof GGUF_VALUE_TYPES, "array">;
/** A metadata value's type: a scalar, or an array of a type (nested arrays allowed). */
export type GgufType = GgufScalarType | { array: GgufType };
/** A metadata value: uint64/int64 are bigint, other numbers are number, arrays are JS arrays. */
export type GgufValue = number | bigint | boolean | string | GgufValue[];

const TYPE_NAMES = new Map<number, keyof typeof GGUF_VALUE_TYPES>(Object.entries(GGUF_VALUE_TYPES).map(([k, v]) => [v, k as keyof typeof GGUF_VALUE_TYPES]));

/** Smallest encoded size of one value of each type (to bound array lengths before allocating). */
const MIN_SIZE: Record<keyof typeof GGUF_VALUE_TYPES, number> = {
  uint8: 1, int8: 1, bool: 1, uint16: 2, int16: 2, uint32: 4, int32: 4, float32: 4,
  uint64: 8, int64: 8, float64: 8, string: 8, array: 12,
};

/** The dtype `read` returns for each ggml type graft decodes. */
const READ_DTYPE: Record<string, TensorDType> = {
  F32: "float32", F16: "float32", BF16: "bfloat16", F64: "float64",
  I8: "int8", I16: "int16", I32: "int32", I64: "int64", Q8_0: "float32", Q4_0: "float32",
};
const RAW_DTYPE: Record<string, TensorDType> = {
  F32: "float32", F16: "float16", BF16: "bfloat16", F64: "float64", I8: "int8", I16: "int16", I32: "int32", I64: "int64",
};

/** A GGUF tensor: TensorInfo plus its ggml type. `dtype` is float32 for types graft cannot decode. */
export interface GgufTensorInfo extends TensorInfo {
  ggmlType: number;
  /** Offset relative to the start of the data section, as stored. */
  relativeOffset: number;
}

/** A GGUF file opened lazily: header, metadata and tensor infos parsed, data read on demand. */
export class GgufFile implements TensorReader {
  readonly path: string;
  readonly version: number;
  readonly metadata: Readonly<Record<string, GgufValue>>;
  readonly metadataTypes: Readonly<Record<string, GgufType>>;
  readonly tensors: readonly GgufTensorInfo[];
  readonly alignment: number;
  /** Absolute offset of the data section. */
  readonly dataOffset: number;
  private readonly byName: Map<string, GgufTensorInfo>;

  private constructor(
    private readonly src: ByteSource,
    parsed: ReturnType<typeof parseGguf>,
  ) {
    this.path = src.name;
    this.version = parsed.version;
    this.metadata = parsed.metadata;
    this.metadataTypes = parsed.types;
    this.tensors = parsed.tensors;
    this.alignment = parsed.alignment;
    this.dataOffset = parsed.dataOffset;
    this.byName = new Map(parsed.tensors.map((t) => [t.name, t]));
  }

  static open(input: string | Uint8Array, name?: string): GgufFile {
    const src = openSource(input, name);
    try {
      return new GgufFile(src, parseGguf(src));
    } catch (e) {
      src.close();
      throw e;
    }
  }

  has(name: string): boolean {
    return this.byName.has(name);
  }

  info(name: string): GgufTensorInfo {
    const t = this.byName.get(name);
    if (!t) throw new GgufError(this.path, `no tensor named "${name}"`);
    return t;
  }

  readBytes(name: string): Uint8Array {
    const t = this.info(name);
    return this.src.read(t.byteOffset, t.byteLength);
  }

  /** Reads a tensor in our dtypes (F16 → float32, Q8_0/Q4_0 dequantized to float32). */
  read(name: string): TensorEntry {
    const t = this.info(name);
    const n = numelOf(t.shape);
    const bytes = this.readBytes(name);
    const shape = [...t.shape];
    if (t.fileDType === "Q8_0") return { dtype: "float32", shape, data: dequantizeQ8_0(bytes, n) };
    if (t.fileDType === "Q4_0") return { dtype: "float32", shape, data: dequantizeQ4_0(bytes, n) };
    const raw = RAW_DTYPE[t.fileDType];
    if (!raw) throw new GgufError(this.path, `tensor "${name}": ggml type ${t.fileDType} cannot be decoded (graft reads ${Object.keys(READ_DTYPE).join(", ")}); use readBytes for the raw blocks`);
    const { dtype, data } = decodeTensorBytes(bytes, raw, n);
    return { dtype, shape, data };
  }

  close(): void {
    this.src.close();
  }
}

/** Opens a GGUF file lazily (see GgufFile). */
export function openGguf(input: string | Uint8Array, name?: string): GgufFile {
  return GgufFile.open(input, name);
}

function parseGguf(src: ByteSource) {
  const fail = (m: string) => new GgufError(src.name, m);
  const r = new ByteReader(src, fail);
  if (src.size < 24) throw fail(`file is ${src.size} bytes, too short for a GGUF header`);
  const magic = r.u32("magic");
  if (magic !== GGUF_MAGIC) throw fail(`bad magic 0x${magic.toString(16).padStart(8, "0")}, expected "GGUF"`);
  const version = r.u32("version");
  if (version !== 2 && version !== 3) throw fail(`GGUF version ${version} is not supported (2 or 3)`);
  // A tensor info takes at least 8 (name) + 4 + 4 + 8 bytes; a kv pair at least 8 + 4 + 1.
  const tensorCount = r.count("tensor count", Math.floor(r.remaining / 24));
  const kvCount = r.count("metadata count", Math.floor(r.remaining / 13));

  const metadata: Record<string, GgufValue> = {};
  const types: Record<string, GgufType> = {};
  for (let i = 0; i < kvCount; i++) {
    const key = readString(r, `metadata key #${i}`);
    if (Object.hasOwn(metadata, key)) throw fail(`duplicate metadata key "${key}"`);
    const typeId = r.u32(`type of "${key}"`);
    const { value, type } = readValue(r, typeId, key, 0);
    metadata[key] = value;
    types[key] = type;
  }

  let alignment = GGUF_DEFAULT_ALIGNMENT;
  if (Object.hasOwn(metadata, "general.alignment")) {
    const a = metadata["general.alignment"];
    if (typeof a !== "number" || !Number.isInteger(a) || a <= 0 || a > 1 << 30 || (a & (a - 1)) !== 0) {
      throw fail(`"general.alignment" = ${String(a)} is not a positive power of two`);
    }
    alignment = a;
  }

  const pending: { name: string; dims: number[]; type: GgmlTypeInfo; rel: number }[] = [];
  const names = new Set<string>();
  for (let i = 0; i < tensorCount; i++) {
    const name = readString(r, `tensor #${i} name`);
    if (names.has(name)) throw fail(`duplicate tensor name "${name}"`);
    names.add(name);
    const nDims = r.u32(`tensor "${name}" n_dims`);
    if (nDims > GGUF_MAX_DIMS) throw fail(`tensor "${name}": n_dims ${nDims} exceeds ${GGUF_MAX_DIMS}`);
    const dims: number[] = [];
    for (let d = 0; d < nDims; d++) {
      const v = r.u64(`tensor "${name}" dim ${d}`);
      if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw fail(`tensor "${name}": dim ${d} = ${v} is too large`);
      dims.push(Number(v));
    }
    const typeId = r.u32(`tensor "${name}" type`);
    const type = GGML_TYPES.get(typeId);
    if (!type) throw fail(`tensor "${name}": unknown ggml type ${typeId}`);
    const rel = r.u64(`tensor "${name}" offset`);
    if (rel > BigInt(src.size)) throw fail(`tensor "${name}": offset ${rel} is past the end of the file (${src.size} bytes)`);
    if (Number(rel) % alignment !== 0) throw fail(`tensor "${name}": offset ${rel} is not a multiple of the alignment ${alignment}`);
    pending.push({ name, dims, type, rel: Number(rel) });
  }
  const dataOffset = Math.ceil(r.pos / alignment) * alignment;
  if (pending.length > 0 && dataOffset > src.size) throw fail(`data section at offset ${dataOffset} starts past the end of the file (${src.size} bytes)`);

  const tensors: GgufTensorInfo[] = pending.map(({ name, dims, type, rel }) => {
    const n = numelOf(dims);
    if (!Number.isSafeInteger(n)) throw fail(`tensor "${name}": ${dims.join(" x ")} elements is too many`);
    if (dims.length > 0 && dims[0]! % type.blockSize !== 0) {
      throw fail(`tensor "${name}": first dim ${dims[0]} is not a multiple of the ${type.name} block size ${type.blockSize}`);
    }
    if (n % type.blockSize !== 0) throw fail(`tensor "${name}": ${n} elements is not a multiple of the ${type.name} block size ${type.blockSize}`);
    const byteLength = ggmlByteLength(type, n);
    const byteOffset = dataOffset + rel;
    if (byteOffset + byteLength > src.size) {
      throw fail(`tensor "${name}": ${byteLength} bytes at offset ${byteOffset} run past the end of the file (${src.size} bytes)`);
    }
    return {
      name,
      dtype: READ_DTYPE[type.name] ?? "float32",
      fileDType: type.name,
      shape: [...dims].reverse(),
      byteOffset,
      byteLength,
      ggmlType: type.id,
      relativeOffset: rel,
    };
  });
  return { version, metadata, types, tensors, alignment, dataOffset };
}

function readString(r: ByteReader, what: string): string {
  const n = r.count(`${what} length`);
  return r.string(n, what);
}

const MAX_NESTING = 16;

function readValue(r: ByteReader, typeId: number, key: string, depth: number): { value: GgufValue; type: GgufType } {
  const name = TYPE_NAMES.get(typeId);
  const what = `value of "${key}"`;
  switch (name) {
    case "uint8":
      return { value: r.u8(what), type: name };
    case "int8":
      return { value: r.i8(what), type: name };
    case "uint16":
      return { value: r.u16(what), type: name };
    case "int16":
      return { value: r.i16(what), type: name };
    case "uint32":
      return { value: r.u32(what), type: name };
    case "int32":
      return { value: r.i32(what), type: name };
    case "float32":
      return { value: r.f32(what), type: name };
    case "float64":
      return { value: r.f64(what), type: name };
    case "uint64":
      return { value: r.u64(what), type: name };
    case "int64":
      return { value: r.i64(what), type: name };
    case "bool": {
      const b = r.u8(what);
      if (b > 1) throw new GgufError(r.src.name, `metadata "${key}": bool byte is ${b}, not 0 or 1`);
      return { value: b === 1, type: name };
    }
    case "string":
      return { value: readString(r, what), type: name };
    case "array": {
      if (depth >= MAX_NESTING) throw new GgufError(r.src.name, `metadata "${key}": arrays nested deeper than ${MAX_NESTING}`);
      const itemId = r.u32(`array item type of "${key}"`);
      const itemName = TYPE_NAMES.get(itemId);
      if (!itemName) throw new GgufError(r.src.name, `metadata "${key}": unknown array item type ${itemId}`);
      const len = r.count(`array length of "${key}"`, Math.floor(r.remaining / MIN_SIZE[itemName]));
      const items: GgufValue[] = new Array(len);
      let itemType: GgufType = itemName === "array" ? { array: "uint8" } : itemName;
      for (let i = 0; i < len; i++) {
        const v = readValue(r, itemId, `${key}[${i}]`, depth + 1);
        items[i] = v.value;
        if (i === 0) itemType = v.type;
      }
      return { value: items, type: { array: itemType } };
    }
    default:
      throw new GgufError(r.src.name, `metadata "${key}": unknown value type ${typeId}`);
  }
}
