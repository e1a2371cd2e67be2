import { test } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { gguf as hfGguf, GGMLQuantizationType } from "@huggingface/gguf";
import { GraftError } from "../../src/core/errors.ts";
import {
  GgufError,
  dequantizeQ4_0,
  dequantizeQ8_0,
  f16ToF32,
  f32ToF16,
  openGguf,
  quantizeQ4_0,
  quantizeQ8_0,
  serializeGguf,
  writeGguf,
  type GgufTypedValue,
  type GgufValue,
} from "../../src/formats/index.ts";
import { bytesOf, fuzz, tmpDir } from "./helpers.ts";

const METADATA: Record<string, GgufValue | GgufTypedValue> = {
  "general.architecture": "qwen2",
  "general.name": "tiny ünïcode 🚀",
  u8: { type: "uint8", value: 255 },
  i8: { type: "int8", value: -128 },
  u16: { type: "uint16", value: 65535 },
  i16: { type: "int16", value: -32768 },
  u32: { type: "uint32", value: 4294967295 },
  i32: { type: "int32", value: -2147483648 },
  f32: { type: "float32", value: 1000000 },
  f64: { type: "float64", value: Math.PI },
  u64: { type: "uint64", value: 2n ** 64n - 1n },
  i64: { type: "int64", value: -(2n ** 63n) },
  yes: true,
  no: false,
  empty_str: "",
  tokens: ["<|endoftext|>", "a", "Ġb"],
  token_type: [1, 3, 1],
  scores: [0.5, -1.25],
  empty_arr: { type: { array: "string" }, value: [] },
  nested: { type: { array: { array: "uint16" } }, value: [[1, 2], [], [3]] },
  bools: [true, false],
  big_arr: { type: { array: "int64" }, value: [-1n, 2n] },
};

const EXPECTED_TYPES: Record<string, unknown> = {
  "general.architecture": "string", u8: "uint8", i8: "int8", u16: "uint16", i16: "int16", u32: "uint32", i32: "int32",
  f32: "float32", f64: "float64", u64: "uint64", i64: "int64", yes: "bool", tokens: { array: "string" }, token_type: { array: "int32" },
  scores: { array: "float32" }, nested: { array: { array: "uint16" } }, bools: { array: "bool" }, big_arr: { array: "int64" },
};

function sampleTensors() {
  const n = 64;
  const f = Float32Array.from({ length: 2 * n }, (_, i) => Math.sin(i * 0.37) * (i % 7) - 0.25);
  return {
    "token_embd.weight": { dtype: "float32" as const, shape: [2, n], data: f },
    "blk.0.attn_q.weight": { dtype: "float32" as const, shape: [2, n], data: f, type: "Q8_0" as const },
    "blk.0.attn_k.weight": { dtype: "float32" as const, shape: [2, n], data: f, type: "Q4_0" as const },
    "blk.0.attn_v.weight": { dtype: "bfloat16" as const, shape: [3], data: Uint16Array.from([0x3f80, 0xffff, 0x0001]) },
    "blk.0.attn_norm.weight": { dtype: "float16" as const, shape: [2, 2], data: Uint16Array.from([0x3c00, 0x8000, 0x7bff, 0x0001]) },
    f64: { dtype: "float64" as const, shape: [1, 2, 1], data: Float64Array.from([NaN, -0]) },
    i8: { dtype: "int8" as const, shape: [2], data: Int8Array.from([-128, 127]) },
    i16: { dtype: "int16" as const, shape: [2], data: Int16Array.from([-32768, 7]) },
    i32: { dtype: "int32" as const, shape: [2, 1, 1, 1], data: Int32Array.from([-5, 2 ** 31 - 1]) },
    i64: { dtype: "int64" as const, shape: [1], data: BigInt64Array.from([-(2n ** 63n)]) },
  };
}

test("gguf: metadata of every value type round-trips with its type", () => {
  const f = openGguf(serializeGguf({ metadata: METADATA }), "meta.gguf");
  assert.equal(f.version, 3);
  for (const [k, v] of Object.entries(METADATA)) {
    const want = typeof v === "object" && v !== null && !Array.isArray(v) ? (v as GgufTypedValue).value : v;
    assert.deepEqual(f.metadata[k], want, k);
  }
  for (const [k, t] of Object.entries(EXPECTED_TYPES)) assert.deepEqual(f.metadataTypes[k], t, k);
  assert.equal(f.tensors.length, 0);
});

test("gguf: tensors round-trip bit-exact (F32/F16/BF16/F64/I8..I64), shapes in PyTorch order; Q8_0/Q4_0 blocks exact", () => {
  const dir = tmpDir("gguf");
  const file = path.join(dir, "m.gguf");
  const tensors = sampleTensors();
  writeGguf(file, { metadata: METADATA, tensors });
  assert.deepEqual(fs.readdirSync(dir), ["m.gguf"]);
  const g = openGguf(file);
  assert.equal(g.alignment, 32);
  for (const [name, t] of Object.entries(tensors)) {
    const info = g.info(name);
    assert.deepEqual(info.shape, t.shape, name);
    assert.equal((info.byteOffset - g.dataOffset) % 32, 0, `${name} aligned`);
    const r = g.read(name);
    const type = "type" in t ? t.type : undefined;
    if (type === "Q8_0") {
      assert.deepEqual(bytesOf(g.readBytes(name)), bytesOf(quantizeQ8_0(t.data as Float32Array)));
      assert.deepEqual(r.data, dequantizeQ8_0(quantizeQ8_0(t.data as Float32Array), 128));
    } else if (type === "Q4_0") {
      assert.deepEqual(bytesOf(g.readBytes(name)), bytesOf(quantizeQ4_0(t.data as Float32Array)));
      assert.deepEqual(r.data, dequantizeQ4_0(quantizeQ4_0(t.data as Float32Array), 128));
    } else if (t.dtype === "float16") {
      assert.equal(r.dtype, "float32");
      assert.deepEqual(bytesOf(g.readBytes(name)), bytesOf(t.data));
      assert.deepEqual([...(r.data as Float32Array)], [...(t.data as Uint16Array)].map(f16ToF32));
    } else {
      assert.equal(r.dtype, t.dtype, name);
      assert.deepEqual(bytesOf(r.data), bytesOf(t.data), name);
    }
  }
  g.close();
});

test("gguf: writer output parses with @huggingface/gguf (keys, names, reversed dims, types, alignment)", async () => {
  const dir = tmpDir("gguf-hf");
  const file = path.join(dir, "m.gguf");
  writeGguf(file, { metadata: { ...METADATA, "general.alignment": { type: "uint32", value: 64 } }, tensors: sampleTensors() });
  const parsed = await hfGguf(file, { allowLocalFile: true, typedMetadata: true });
  const md = parsed.metadata as Record<string, unknown>;
  assert.equal(md["general.architecture"], "qwen2");
  assert.equal(md["general.name"], "tiny ünïcode 🚀");
  assert.deepEqual(md["tokens"], ["<|endoftext|>", "a", "Ġb"]);
  assert.deepEqual(md["nested"], [[1, 2], [], [3]]);
  assert.equal(md["u64"], 2n ** 64n - 1n);
  assert.equal(md["f32"], 1000000);
  assert.equal(md["general.alignment"], 64);
  assert.equal(parsed.typedMetadata["f32"]!.type, 6);
  assert.equal(parsed.typedMetadata["i16"]!.type, 3);
  const infos = new Map(parsed.tensorInfos.map((t) => [t.name, t]));
  assert.deepEqual([...infos.keys()], Object.keys(sampleTensors()));
  assert.deepEqual(infos.get("token_embd.weight")!.shape, [64n, 2n]);
  assert.deepEqual(infos.get("i32")!.shape, [1n, 1n, 1n, 2n]);
  assert.equal(infos.get("token_embd.weight")!.dtype, GGMLQuantizationType.F32);
  assert.equal(infos.get("blk.0.attn_q.weight")!.dtype, GGMLQuantizationType.Q8_0);
  assert.equal(infos.get("blk.0.attn_k.weight")!.dtype, GGMLQuantizationType.Q4_0);
  assert.equal(infos.get("blk.0.attn_v.weight")!.dtype, GGMLQuantizationType.BF16);
  assert.equal(infos.get("blk.0.attn_norm.weight")!.dtype, GGMLQuantizationType.F16);
  assert.equal(Number(parsed.tensorDataOffset) % 64, 0);
  for (const t of parsed.tensorInfos) assert.equal(Number(t.offset) % 64, 0, t.name);
  const ours = openGguf(file);
  assert.equal(ours.alignment, 64);
  assert.equal(ours.dataOffset, Number(parsed.tensorDataOffset));
  ours.close();
});

test("gguf: Q4_0 / Q8_0 block layout matches ggml (known answers, error bounds)", () => {
  // x_j = j - 16: max |x| is x_0 = -16, so d = -16 / -8 = 2 and q_j = min(15, trunc(x_j / 2 + 8.5)).
  const x = Float32Array.from({ length: 32 }, (_, j) => j - 16);
  const q4 = quantizeQ4_0(x);
  assert.equal(q4.length, 18);
  assert.equal(f16ToF32(q4[0]! | (q4[1]! << 8)), 2);
  const q = (j: number) => Math.min(15, Math.trunc((j - 16) / 2 + 8.5));
  for (let j = 0; j < 16; j++) assert.equal(q4[2 + j], q(j) | (q(j + 16) << 4), `byte ${j}: low nibble = element ${j}, high = element ${j + 16}`);
  const d4 = dequantizeQ4_0(q4, 32);
  for (let j = 0; j < 32; j++) assert.equal(d4[j], (q(j) - 8) * 2);
  const q8 = quantizeQ8_0(x);
  assert.equal(q8.length, 34);
  const d8scale = f16ToF32(q8[0]! | (q8[1]! << 8));
  assert.equal(d8scale, f16ToF32(f32ToF16(Math.fround(16 / 127))));
  assert.equal((q8[2]! << 24) >> 24, -127);
  assert.equal(q8[2 + 16], 0);
  assert.equal(q8[2 + 24], Math.round(8 * (127 / 16)) & 0xff);
  // Random data: error within half a step.
  const r = Float32Array.from({ length: 4096 }, (_, i) => Math.sin(i * 12.9898) * 43758.5453 % 3);
  const e8 = dequantizeQ8_0(quantizeQ8_0(r), r.length);
  const e4 = dequantizeQ4_0(quantizeQ4_0(r), r.length);
  for (let b = 0; b < r.length / 32; b++) {
    let amax = 0;
    for (let j = 0; j < 32; j++) amax = Math.max(amax, Math.abs(r[b * 32 + j]!));
    for (let j = 0; j < 32; j++) {
      const i = b * 32 + j;
      assert.ok(Math.abs(e8[i]! - r[i]!) <= (amax / 127) * 0.51 + 1e-3 * amax, `q8 ${i}`);
      assert.ok(Math.abs(e4[i]! - r[i]!) <= (amax / 8) * 1.01 + 1e-3 * amax, `q4 ${i}`);
    }
  }
});

test("gguf: named errors for bad files and bad writer input", () => {
  const valid = serializeGguf({ metadata: { a: 1 }, tensors: { w: { dtype: "float32", shape: [4], data: new Float32Array(4) } } });
  const patch = (at: number, bytes: number[]) => {
    const b = valid.slice();
    b.set(bytes, at);
    return b;
  };
  const cases: [Uint8Array, RegExp][] = [
    [patch(0, [0x47, 0x47, 0x55, 0x47]), /bad magic/],
    [patch(4, [1, 0, 0, 0]), /GGUF version 1 is not supported/],
    [valid.subarray(0, 10), /too short/],
    [valid.subarray(0, 40), /unexpected end of file/],
    [patch(8, [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f]), /tensor count \d+ exceeds/],
    [patch(16, [0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0]), /metadata count \d+ exceeds/],
    [patch(24, [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0, 0]), /metadata key #0 length \d+ exceeds/],
    [patch(33, [99, 0, 0, 0]), /metadata "a": unknown value type 99/],
  ];
  for (const [bytes, re] of cases) {
    assert.throws(() => openGguf(bytes, "bad.gguf"), (e: unknown) => e instanceof GgufError && /^bad\.gguf: /.test((e as Error).message) && re.test((e as Error).message), String(re));
  }
  assert.throws(() => serializeGguf({ metadata: { x: { type: "uint8", value: 300 } } }), /metadata "x": 300 is not a valid uint8/);
  assert.throws(() => serializeGguf({ metadata: { x: [] } }), /empty array needs an explicit/);
  assert.throws(() => serializeGguf({ tensors: { w: { dtype: "float32", shape: [2, 33], data: new Float32Array(66), type: "Q8_0" } } }), /last dim 33 is not a multiple of the Q8_0 block size 32/);
  assert.throws(() => serializeGguf({ tensors: { w: { dtype: "bool", shape: [1], data: new Uint8Array(1) } } }), /dtype bool has no GGUF type/);
  assert.throws(() => serializeGguf({ tensors: { w: { dtype: "float32", shape: [1, 1, 1, 1, 1], data: new Float32Array(1) } } }), /5 dims exceed/);
  assert.throws(() => serializeGguf({ metadata: { "general.alignment": { type: "uint32", value: 48 } } }), /not a positive power of two/);
});

test("gguf: fuzz (byte flips + truncation) gives only named errors", () => {
  const valid = serializeGguf({ metadata: METADATA, tensors: sampleTensors() });
  const res = fuzz(valid, (b) => {
    const g = openGguf(b, "fuzz.gguf");
    for (const t of g.tensors) g.read(t.name);
  }, (e) => e instanceof GgufError || e instanceof GraftError, { iterations: 400, ms: 2500, headerBytes: 700 });
  assert.ok(res.named > 50, JSON.stringify(res));
});
