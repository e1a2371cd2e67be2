/**
 * Builds torch.save-style archives byte by byte, the way torch >= 1.6 lays them out: a zip of
 * stored entries `<prefix>/data.pkl` (pickle protocol 2), `<prefix>/data/<key>`, `<prefix>/version`,
 * `<prefix>/byteorder`. Used by the tests and by scripts/makeFormatFixtures.ts.
 */
import { zipSync } from "fflate";

export class PickleWriter {
  private out: number[] = [0x80, 0x02];
  private memo = new Map<string, number>();
  private enc = new TextEncoder();

  op(...bytes: number[]): this {
    this.out.push(...bytes);
    return this;
  }
  private u32(v: number): number[] {
    return [v & 0xff, (v >>> 8) & 0xff, (v >>> 16) & 0xff, (v >>> 24) & 0xff];
  }
  str(s: string): this {
    const b = this.enc.encode(s);
    return this.op(0x58, ...this.u32(b.length), ...b); // BINUNICODE
  }
  int(v: number): this {
    if (v >= 0 && v < 256) return this.op(0x4b, v); // BININT1
    if (v >= 0 && v < 65536) return this.op(0x4d, v & 0xff, v >> 8); // BININT2
    return this.op(0x4a, ...this.u32(v)); // BININT
  }
  bool(b: boolean): this {
    return this.op(b ? 0x88 : 0x89);
  }
  /** GLOBAL with memoization (BINPUT on first use, BINGET after), as pickle does. */
  global(module: string, name: string): this {
    const key = `${module}\n${name}\n`;
    const idx = this.memo.get(key);
    if (idx !== undefined) return this.op(0x68, idx); // BINGET
    const id = this.memo.size;
    this.memo.set(key, id);
    return this.op(0x63, ...this.enc.encode(key), 0x71, id); // GLOBAL, BINPUT
  }
  mark(): this {
    return this.op(0x28);
  }
  tuple(): this {
    return this.op(0x74);
  }
  intTuple(xs: number[]): this {
    if (xs.length === 0) return this.op(0x29);
    this.mark();
    for (const x of xs) this.int(x);
    return this.tuple();
  }
  reduce(): this {
    return this.op(0x52);
  }
  emptyOrderedDict(): this {
    return this.global("collections", "OrderedDict").op(0x29).reduce();
  }
  bytes(): Uint8Array {
    return Uint8Array.from([...this.out, 0x2e]); // STOP
  }
}

export interface FixtureTensor {
  storage: string;
  storageClass: string;
  storageNumel: number;
  offset: number;
  shape: number[];
  stride: number[];
  parameter?: boolean;
}

/** The pickle torch.save writes for an OrderedDict state dict (with the `_metadata` attribute). */
export function stateDictPickle(tensors: Record<string, FixtureTensor>): Uint8Array {
  const p = new PickleWriter();
  p.emptyOrderedDict();
  p.mark();
  for (const [name, t] of Object.entries(tensors)) {
    p.str(name);
    if (t.parameter) p.global("torch._utils", "_rebuild_parameter").mark();
    p.global("torch._utils", "_rebuild_tensor_v2").mark();
    p.mark().str("storage").global("torch", t.storageClass).str(t.storage).str("cpu").int(t.storageNumel).tuple().op(0x51); // BINPERSID
    p.int(t.offset).intTuple(t.shape).intTuple(t.stride).bool(false).emptyOrderedDict().tuple().reduce();
    if (t.parameter) p.bool(true).emptyOrderedDict().tuple().reduce();
  }
  p.op(0x75); // SETITEMS
  // BUILD with {"_metadata": OrderedDict([("", {"version": 1})])}, as nn.Module.state_dict() has.
  p.op(0x7d).str("_metadata").emptyOrderedDict().str("").op(0x7d).str("version").int(1).op(0x73).op(0x73).op(0x73).op(0x62);
  return p.bytes();
}

/** A torch.save zip: stored entries under `prefix/`. */
export function torchZip(pickle: Uint8Array, storages: Record<string, Uint8Array>, prefix = "archive"): Uint8Array {
  const files: Record<string, Uint8Array> = {
    [`${prefix}/data.pkl`]: pickle,
    [`${prefix}/byteorder`]: new TextEncoder().encode("little"),
    [`${prefix}/version`]: new TextEncoder().encode("3\n"),
  };
  for (const [k, v] of Object.entries(storages)) files[`${prefix}/data/${k}`] = v;
  return zipSync(files, { level: 0, mtime: new Date("2024-01-01T00:00:00Z") });
}

/** The small state dict committed as tests/fixtures/formats/tiny_state_dict.bin. */
export function tinyStateDict(): { bytes: Uint8Array; expected: Record<string, { dtype: string; shape: number[]; values: number[] | bigint[] }> } {
  const w = Float32Array.from({ length: 12 }, (_, i) => i * 0.5 - 2);
  const bias = Uint16Array.from([0x3f80, 0xbf80, 0x4000]); // bf16 1, -1, 2
  const half = Uint16Array.from([0x3c00, 0xc000, 0x3800, 0x7c00]); // f16 1, -2, 0.5, inf
  const ids = BigInt64Array.from([1n, -2n, 9007199254740993n]);
  const pickle = stateDictPickle({
    "linear.weight": { storage: "0", storageClass: "FloatStorage", storageNumel: 12, offset: 0, shape: [3, 4], stride: [4, 1], parameter: true },
    "linear.weight_t": { storage: "0", storageClass: "FloatStorage", storageNumel: 12, offset: 0, shape: [4, 3], stride: [1, 4] },
    "linear.row1": { storage: "0", storageClass: "FloatStorage", storageNumel: 12, offset: 4, shape: [4], stride: [1] },
    "linear.bias": { storage: "1", storageClass: "BFloat16Storage", storageNumel: 3, offset: 0, shape: [3], stride: [1] },
    "norm.half": { storage: "2", storageClass: "HalfStorage", storageNumel: 4, offset: 0, shape: [2, 2], stride: [2, 1] },
    "ids": { storage: "3", storageClass: "LongStorage", storageNumel: 3, offset: 0, shape: [3], stride: [1] },
  });
  const bytes = torchZip(pickle, {
    "0": new Uint8Array(w.buffer),
    "1": new Uint8Array(bias.buffer),
    "2": new Uint8Array(half.buffer),
    "3": new Uint8Array(ids.buffer),
  });
  const wt: number[] = [];
  for (let c = 0; c < 4; c++) for (let r = 0; r < 3; r++) wt.push(w[r * 4 + c]!);
  return {
    bytes,
    expected: {
      "linear.weight": { dtype: "float32", shape: [3, 4], values: [...w] },
      "linear.weight_t": { dtype: "float32", shape: [4, 3], values: wt },
      "linear.row1": { dtype: "float32", shape: [4], values: [...w.subarray(4, 8)] },
      "linear.bias": { dtype: "bfloat16", shape: [3], values: [...bias] },
      "norm.half": { dtype: "float32", shape: [2, 2], values: [1, -2, 0.5, Infinity] },
      ids: { dtype: "int64", shape: [3], values: [...ids] },
    },
  };
}

/** A pickle that would run `os.system(cmd)` (GLOBAL posix system + REDUCE) if it were executed. */
export function systemPickle(cmd: string, module = "posix"): Uint8Array {
  return new PickleWriter().global(module, "system").mark().str(cmd).tuple().reduce().bytes();
}

/** Same payload through STACK_GLOBAL (protocol 4 style). */
export function stackGlobalPickle(module: string, name: string, arg: string): Uint8Array {
  const p = new PickleWriter();
  const enc = new TextEncoder();
  const short = (s: string) => p.op(0x8c, enc.encode(s).length, ...enc.encode(s)); // SHORT_BINUNICODE
  short(module);
  short(name);
  p.op(0x93); // STACK_GLOBAL
  p.mark().str(arg).tuple().reduce();
  return p.bytes();
}
