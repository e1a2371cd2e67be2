/**
 * PyTorch `.bin` / `.pth` (torch.save zip archives: `<prefix>/data.pkl`, `<prefix>/data/<key>`,
 * `<prefix>/version`) read with a restricted unpickler. Only the globals a torch state dict uses are
 * resolved (OrderedDict, _rebuild_tensor_v2, _rebuild_parameter, the typed storage classes, ...);
 * any other global raises UnsafePickleError before anything could be called, and nothing from the
 * pickle is ever executed — the allowed globals are our own small TypeScript functions that build
 * plain records. Tensor data is read lazily by offset from the zip.
 */
import { Parser } from "pickleparser";
import { openSource, type ByteSource } from "./ByteSource.ts";
import { FormatError, TorchPickleError, UnsafePickleError } from "./FormatError.ts";
import { ZipArchive } from "./zipReader.ts";
import { decodeTensorBytes, elementSize, numelOf, type TensorDType, type TensorEntry, type TensorInfo, type TensorReader } from "./tensorData.ts";

/** torch storage class → dtype of its elements. */
export const TORCH_STORAGE_DTYPES: Readonly<Record<string, TensorDType>> = {
  DoubleStorage: "float64",
  FloatStorage: "float32",
  HalfStorage: "float16",
  BFloat16Storage: "bfloat16",
  LongStorage: "int64",
  IntStorage: "int32",
  ShortStorage: "int16",
  CharStorage: "int8",
  ByteStorage: "uint8",
  BoolStorage: "bool",
  UntypedStorage: "uint8",
};

/** torch dtype globals (may appear in pickled metadata); resolved to inert markers. */
const TORCH_DTYPES = ["float64", "float32", "float16", "bfloat16", "int64", "int32", "int16", "int8", "uint8", "bool", "float", "double", "half", "long", "int", "short"];

/** The full allowlist of `module.name` globals the unpickler resolves. */
export const TORCH_PICKLE_ALLOWLIST: readonly string[] = [
  "collections.OrderedDict",
  "torch._utils._rebuild_tensor",
  "torch._utils._rebuild_tensor_v2",
  "torch._utils._rebuild_parameter",
  "torch._utils._rebuild_parameter_with_state",
  "torch.Size",
  "torch.device",
  ...Object.keys(TORCH_STORAGE_DTYPES).map((s) => `torch.${s}`),
  ...TORCH_DTYPES.map((d) => `torch.${d}`),
];

/** An OrderedDict from the pickle (BUILD state such as `_metadata` is kept in `attributes`). */
export class PickleDict extends Map<unknown, unknown> {
  attributes: unknown = null;
  __setstate__(state: unknown): void {
    this.attributes = state;
  }
}

class StorageType {
  constructor(readonly name: string, readonly dtype: TensorDType) {}
}

class StorageRef {
  constructor(readonly dtype: TensorDType, readonly key: string, readonly numel: number) {}
}

/** A tensor as the pickle describes it: a strided view of a storage. */
export class TensorRef {
  constructor(
    readonly storage: StorageRef,
    readonly storageOffset: number,
    readonly shape: number[],
    readonly stride: number[],
  ) {}
}

const MAX_LINE = 1 << 16;

/**
 * The byte reader pickleparser parses through, with every length checked against the bytes left
 * (negative or oversized lengths fail instead of moving backwards or allocating), so a corrupt
 * pickle always ends in an error, never a loop or a huge allocation.
 */
class SafePickleReader {
  private pos = 0;
  private readonly view: DataView;
  private readonly utf8 = new TextDecoder("utf-8");
  private readonly ascii = new TextDecoder("latin1");
  constructor(private readonly buf: Uint8Array, private readonly fail: (m: string) => Error) {
    this.view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  }
  private take(n: number): number {
    if (!Number.isSafeInteger(n) || n < 0 || n > this.buf.length - this.pos) {
      throw this.fail(`pickle truncated or corrupt: need ${n} bytes at offset ${this.pos}, ${this.buf.length - this.pos} left`);
    }
    const at = this.pos;
    this.pos += n;
    return at;
  }
  byte(): number { return this.view.getUint8(this.take(1)); }
  bytes(n: number): Uint8Array { const at = this.take(n); return this.buf.subarray(at, at + n); }
  uint16(): number { return this.view.getUint16(this.take(2), true); }
  int32(): number { return this.view.getInt32(this.take(4), true); }
  uint32(): number { return this.view.getUint32(this.take(4), true); }
  uint64(): number {
    const v = this.view.getBigUint64(this.take(8), true);
    if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw this.fail(`pickle length ${v} is too large`);
    return Number(v);
  }
  float64(): number { return this.view.getFloat64(this.take(8), false); }
  skip(n: number): void { this.take(n); }
  string(n: number, encoding: "ascii" | "utf-8"): string {
    const b = this.bytes(n);
    return encoding === "utf-8" ? this.utf8.decode(b) : this.ascii.decode(b);
  }
  line(): string {
    const end = this.buf.indexOf(0x0a, this.pos);
    if (end < 0 || end - this.pos > MAX_LINE) throw this.fail(`pickle line at offset ${this.pos} has no end`);
    const s = this.string(end - this.pos, "ascii");
    this.pos += 1;
    return s;
  }
  hasNext(): boolean { return this.pos < this.buf.length; }
}

function isIntArray(v: unknown): v is number[] {
  return Array.isArray(v) && v.every((x) => typeof x === "number" && Number.isSafeInteger(x) && x >= 0);
}

/**
 * Unpickles bytes with the torch allowlist. Storages named by persistent ids become StorageRefs,
 * tensors TensorRefs; refusals are UnsafePickleError and every other failure a TorchPickleError.
 */
export function unpickleTorch(bytes: Uint8Array, file = "<pickle>"): unknown {
  const fail = (m: string) => new TorchPickleError(file, m);
  // Fresh functions per call: nothing a pickle does to them (BUILD on a global) outlives the parse.
  function OrderedDict(this: unknown): PickleDict {
    return new PickleDict();
  }
  function rebuildTensor(storage: unknown, offset: unknown, size: unknown, stride: unknown): TensorRef {
    if (!(storage instanceof StorageRef)) throw fail("_rebuild_tensor: first argument is not a storage");
    if (typeof offset !== "number" || !Number.isSafeInteger(offset) || offset < 0) throw fail(`_rebuild_tensor: bad storage offset ${String(offset)}`);
    if (!isIntArray(size) || !isIntArray(stride) || size.length !== stride.length) throw fail("_rebuild_tensor: bad size or stride");
    return new TensorRef(storage, offset, [...size], [...stride]);
  }
  const globals = new Map<string, unknown>([
    ["collections.OrderedDict", OrderedDict],
    ["torch._utils._rebuild_tensor", rebuildTensor],
    ["torch._utils._rebuild_tensor_v2", rebuildTensor],
    ["torch._utils._rebuild_parameter", function rebuildParameter(data: unknown) { return data; }],
    ["torch._utils._rebuild_parameter_with_state", function rebuildParameterWithState(data: unknown) { return data; }],
    ["torch.Size", function Size(dims: unknown) { return dims; }],
    ["torch.device", function device(...args: unknown[]) { return args.join(":"); }],
  ]);
  for (const [name, dtype] of Object.entries(TORCH_STORAGE_DTYPES)) globals.set(`torch.${name}`, new StorageType(name, dtype));
  for (const d of TORCH_DTYPES) globals.set(`torch.${d}`, { torchDtype: d });

  const parser = new Parser({
    nameResolver: {
      resolve(module: string, name: string) {
        const key = `${module}.${name}`;
        const v = globals.get(key);
        if (v === undefined) throw new UnsafePickleError(file, key);
        return v as () => unknown;
      },
    },
    persistentResolver: {
      resolve(pid: unknown) {
        if (!Array.isArray(pid) || pid[0] !== "storage" || pid.length < 5) throw fail(`unsupported persistent id ${JSON.stringify(pid)?.slice(0, 80)}`);
        const [, type, key, , numel] = pid as unknown[];
        if (!(type instanceof StorageType)) throw fail("persistent id does not name a storage class");
        if (typeof key !== "string" || !/^[0-9A-Za-z_.-]{1,64}$/.test(key)) throw fail(`bad storage key ${JSON.stringify(key)}`);
        if (typeof numel !== "number" || !Number.isSafeInteger(numel) || numel < 0) throw fail(`storage "${key}": bad element count ${String(numel)}`);
        return new StorageRef(type.dtype, key, numel);
      },
    },
    extensionResolver: {
      resolve(code: number) {
        throw new UnsafePickleError(file, `extension code ${code}`);
      },
    },
    unpicklingTypeOfDictionary: "Map",
    unpicklingTypeOfSet: "array",
  });
  try {
    return parser.read(new SafePickleReader(bytes, fail) as unknown as Parameters<Parser["read"]>[0]);
  } catch (e) {
    if (e instanceof FormatError) throw e;
    throw fail(`corrupt pickle: ${(e as Error)?.message ?? String(e)}`);
  }
}

/** Collects the tensors of an unpickled object: a state dict, or dicts nested in one (keys joined by "."). */
function collectTensors(root: unknown, fail: (m: string) => Error): Map<string, TensorRef> {
  const out = new Map<string, TensorRef>();
  const seen = new Set<unknown>();
  const visit = (v: unknown, prefix: string) => {
    if (v instanceof TensorRef) {
      if (out.has(prefix)) throw fail(`duplicate tensor name "${prefix}"`);
      out.set(prefix, v);
      return;
    }
    if (!(v instanceof Map) || seen.has(v)) return;
    seen.add(v);
    for (const [k, x] of v) {
      if (typeof k !== "string" && typeof k !== "number") continue;
      visit(x, prefix ? `${prefix}.${k}` : String(k));
    }
  };
  visit(root, "");
  return out;
}

/** A torch.save archive opened lazily: the pickle is parsed up front, tensor data read on demand. */
export class TorchFile implements TensorReader {
  readonly path: string;
  readonly tensors: readonly TensorInfo[];
  /** The unpickled object (dicts as Map/PickleDict, tensors as TensorRef). */
  readonly root: unknown;
  private readonly zip: ZipArchive;
  private readonly prefix: string;
  private readonly refs: Map<string, TensorRef>;
  private readonly byName: Map<string, TensorInfo>;

  private constructor(private readonly src: ByteSource) {
    this.path = src.name;
    const fail = (m: string) => new TorchPickleError(src.name, m);
    const head = src.read(0, Math.min(src.size, 4));
    if (head.length >= 2 && head[0] === 0x80 && head[1]! <= 5) {
      throw fail("legacy (pre-1.6, non-zip) torch.save format is not supported; re-save it with torch >= 1.6");
    }
    if (head.length < 4 || head[0] !== 0x50 || head[1] !== 0x4b) throw fail("not a torch.save zip archive (no PK signature)");
    this.zip = new ZipArchive(src);
    const pkls = [...this.zip.entries.keys()].filter((n) => /^([^/]+\/)?data\.pkl$/.test(n));
    if (pkls.length !== 1) throw fail(pkls.length ? `archive has ${pkls.length} data.pkl entries` : "archive has no data.pkl");
    this.prefix = pkls[0]!.slice(0, -"data.pkl".length);
    const order = this.zip.entries.get(`${this.prefix}byteorder`);
    if (order) {
      const text = new TextDecoder().decode(this.zip.read(order.name));
      if (text !== "little") throw fail(`byteorder is "${text.slice(0, 16)}"; only little-endian archives are supported`);
    }
    this.root = unpickleTorch(this.zip.read(pkls[0]!), src.name);
    this.refs = collectTensors(this.root, fail);
    const storageSizes = new Map<string, number>();
    const infos: TensorInfo[] = [];
    for (const [name, ref] of this.refs) {
      const { storage, storageOffset, shape, stride } = ref;
      const el = elementSize(storage.dtype);
      const entryName = `${this.prefix}data/${storage.key}`;
      let range = storageSizes.get(entryName);
      if (range === undefined) {
        const e = this.zip.entries.get(entryName);
        if (!e) throw fail(`tensor "${name}": storage ${storage.key} is missing from the archive (${entryName})`);
        if (e.method !== 0) throw fail(`tensor "${name}": storage ${storage.key} is compressed; torch writes storages uncompressed`);
        range = e.size;
        storageSizes.set(entryName, range);
      }
      if (storage.numel * el > range) throw fail(`tensor "${name}": storage ${storage.key} holds ${range} bytes, less than ${storage.numel} x ${el}`);
      const n = numelOf(shape);
      let extent = n === 0 ? 0 : 1;
      if (n > 0) for (let d = 0; d < shape.length; d++) extent += (shape[d]! - 1) * stride[d]!;
      if (!Number.isSafeInteger(extent) || storageOffset + extent > storage.numel) {
        throw fail(`tensor "${name}": shape [${shape.join(", ")}] with stride [${stride.join(", ")}] at offset ${storageOffset} runs past its storage of ${storage.numel} elements`);
      }
      const { offset } = this.zip.dataRange(entryName);
      infos.push({
        name,
        dtype: storage.dtype === "float16" ? "float32" : storage.dtype,
        fileDType: storage.dtype,
        shape: [...shape],
        byteOffset: offset + storageOffset * el,
        byteLength: extent * el,
      });
    }
    this.tensors = infos;
    this.byName = new Map(infos.map((t) => [t.name, t]));
  }

  /** Opens a `.bin` / `.pth` path or bytes; refuses (UnsafePickleError) any global outside the allowlist. */
  static open(input: string | Uint8Array, name?: string): TorchFile {
    const src = openSource(input, name);
    try {
      return new TorchFile(src);
    } catch (e) {
      src.close();
      if (e instanceof FormatError && !(e instanceof TorchPickleError)) throw new TorchPickleError(src.name, e.message.slice(src.name.length + 2));
      throw e;
    }
  }

  has(name: string): boolean {
    return this.byName.has(name);
  }

  info(name: string): TensorInfo {
    const t = this.byName.get(name);
    if (!t) throw new TorchPickleError(this.path, `no tensor named "${name}"`);
    return t;
  }

  /** The bytes the tensor spans in its storage (for a non-contiguous view, the covering range). */
  readBytes(name: string): Uint8Array {
    const t = this.info(name);
    return this.src.read(t.byteOffset, t.byteLength);
  }

  /** Reads a tensor contiguously in our dtypes (float16 → float32); strided views are gathered. */
  read(name: string): TensorEntry {
    const t = this.info(name);
    const ref = this.refs.get(name)!;
    const raw = ref.storage.dtype;
    const el = elementSize(raw);
    const n = numelOf(t.shape);
    let bytes = this.readBytes(name);
    if (!isContiguous(ref.shape, ref.stride) && n > 0) {
      const gathered = new Uint8Array(n * el);
      const idx = new Array<number>(ref.shape.length).fill(0);
      for (let i = 0; i < n; i++) {
        let off = 0;
        for (let d = 0; d < idx.length; d++) off += idx[d]! * ref.stride[d]!;
        gathered.set(bytes.subarray(off * el, off * el + el), i * el);
        for (let d = idx.length - 1; d >= 0; d--) {
          if (++idx[d]! < ref.shape[d]!) break;
          idx[d] = 0;
        }
      }
      bytes = gathered;
    }
    const { dtype, data } = decodeTensorBytes(bytes, raw, n);
    return { dtype, shape: [...t.shape], data };
  }

  close(): void {
    this.src.close();
  }
}

function isContiguous(shape: readonly number[], stride: readonly number[]): boolean {
  let s = 1;
  for (let i = shape.length - 1; i >= 0; i--) {
    if (shape[i] !== 1 && stride[i] !== s) return false;
    s *= shape[i]!;
  }
  return true;
}

/** Opens a PyTorch `.bin` / `.pth` state dict lazily (see TorchFile). */
export function openTorchFile(input: string | Uint8Array, name?: string): TorchFile {
  return TorchFile.open(input, name);
}
