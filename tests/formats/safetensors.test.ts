import { test } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import fsDefault from "node:fs";
import { syncBuiltinESMExports } from "node:module";
import * as path from "node:path";
import { GraftError } from "../../src/core/errors.ts";
import {
  SafetensorsError,
  ShardedSafetensors,
  elementSize,
  f16ToF32,
  f32ToF16,
  loadSafetensors,
  openSafetensors,
  openSafetensorsModel,
  serializeSafetensors,
  writeSafetensors,
  writeShardedSafetensors,
} from "../../src/formats/index.ts";
import { bytesOf, everyDtype, fuzz, tmpDir } from "./helpers.ts";

test("safetensors: write → read is bit-exact for every dtype, with __metadata__", () => {
  const dir = tmpDir("st");
  const file = path.join(dir, "model.safetensors");
  const tensors = everyDtype();
  writeSafetensors(file, tensors, { format: "pt", note: "ünïcode" });
  assert.deepEqual(fs.readdirSync(dir), ["model.safetensors"], "no temp file left behind");
  const f = openSafetensors(file);
  assert.deepEqual(f.metadata, { format: "pt", note: "ünïcode" });
  assert.equal(f.tensors.length, Object.keys(tensors).length);
  for (const [name, t] of Object.entries(tensors)) {
    const info = f.info(name);
    assert.deepEqual(info.shape, t.shape, name);
    assert.equal(info.byteOffset % elementSize(t.dtype), 0, `${name} is aligned to its element size`);
    if (t.dtype === "float16") {
      const r = f.read(name);
      assert.equal(r.dtype, "float32");
      assert.deepEqual([...(r.data as Float32Array)].map(f32ToF16), [...(t.data as Uint16Array)]);
      assert.deepEqual(bytesOf(f.readBytes(name)), bytesOf(t.data));
    } else {
      const r = f.read(name);
      assert.equal(r.dtype, t.dtype, name);
      assert.equal(r.data.constructor, t.data.constructor, name);
      assert.deepEqual(bytesOf(r.data), bytesOf(t.data), name);
    }
  }
  f.close();
  // Memory and file serializations agree byte for byte.
  assert.deepEqual(Buffer.from(serializeSafetensors(tensors, { format: "pt", note: "ünïcode" })), fs.readFileSync(file));
});

test("safetensors: byte layout matches the reference (u64 length, space-padded JSON, packed data)", () => {
  const bytes = serializeSafetensors({ a: { dtype: "float32", shape: [2], data: Float32Array.from([1, 2]) } });
  const json = '{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}';
  const padded = json + " ".repeat((8 - (json.length % 8)) % 8);
  const expected = Buffer.concat([Buffer.from(new BigUint64Array([BigInt(padded.length)]).buffer), Buffer.from(padded), Buffer.from(Float32Array.from([1, 2]).buffer)]);
  assert.deepEqual(Buffer.from(bytes), expected);
});

test("safetensors: float16 conversion is exact for every finite half and rounds to nearest even", () => {
  for (let h = 0; h < 65536; h++) {
    if ((h & 0x7c00) === 0x7c00 && (h & 0x3ff) !== 0) continue; // NaN
    assert.equal(f32ToF16(f16ToF32(h)), h);
  }
  assert.equal(f32ToF16(0.1), 0x2e66);
  assert.equal(f32ToF16(65504), 0x7bff);
  assert.equal(f32ToF16(65520), 0x7c00);
  assert.equal(f32ToF16(1e-8), 0);
  assert.equal(f32ToF16(3e-8), 1);
  assert.equal(f32ToF16(1 + 2 ** -11), 0x3c00); // tie → even
  assert.equal(f32ToF16(1 + 3 * 2 ** -11), 0x3c02);
  assert.ok(Number.isNaN(f16ToF32(f32ToF16(NaN))));
  // Writing float16 from float32 data rounds once.
  const r = loadSafetensors(serializeSafetensors({ h: { dtype: "float16", shape: [2], data: Float32Array.from([0.1, -65504]) } }));
  assert.deepEqual([...(r.tensors.h!.data as Float32Array)], [f16ToF32(0x2e66), -65504]);
});

test("safetensors: lazy — only the header is read at open; tensors by offset", () => {
  const dir = tmpDir("st-lazy");
  const file = path.join(dir, "big.safetensors");
  const n = 1 << 20;
  writeSafetensors(file, {
    a: { dtype: "float32", shape: [n], data: new Float32Array(n).fill(1) },
    b: { dtype: "int32", shape: [2], data: Int32Array.from([5, 6]) },
  });
  const readSync = fsDefault.readSync;
  let bytesRead = 0;
  fsDefault.readSync = ((...args: unknown[]) => {
    const got = (readSync as (...a: unknown[]) => number)(...args);
    bytesRead += got;
    return got;
  }) as typeof fs.readSync;
  syncBuiltinESMExports();
  try {
    const f = openSafetensors(file);
    assert.ok(bytesRead < 4096, `open read ${bytesRead} bytes`);
    assert.deepEqual([...(f.read("b").data as Int32Array)], [5, 6]);
    assert.ok(bytesRead < 4096 + 8, `read ${bytesRead} bytes`);
    f.close();
  } finally {
    fsDefault.readSync = readSync;
    syncBuiltinESMExports();
  }
});

test("safetensors: named errors for bad headers", () => {
  const good = serializeSafetensors({ w: { dtype: "float32", shape: [2, 2], data: new Float32Array(4) } });
  const withHeader = (json: string) => {
    const h = Buffer.from(json);
    return Buffer.concat([Buffer.from(new BigUint64Array([BigInt(h.length)]).buffer), h, Buffer.alloc(16)]);
  };
  const huge = Buffer.from(good);
  huge.writeBigUInt64LE(999999999n, 0);
  const cases: [Uint8Array, RegExp][] = [
    [huge, /model\.safetensors: header length 999999999 exceeds file size/],
    [good.subarray(0, 5), /too short/],
    [withHeader("{not json"), /not valid JSON/],
    [withHeader("[1,2]"), /not a JSON object/],
    [withHeader('{"w":{"dtype":"F8_E4M3","shape":[2],"data_offsets":[0,2]}}'), /tensor "w": dtype F8_E4M3 is not supported/],
    [withHeader('{"w":{"dtype":"F32","shape":[2,2],"data_offsets":[0,12]}}'), /tensor "w": data_offsets \[0, 12\] hold 12 bytes but F32 \[2, 2\] needs 16/],
    [withHeader('{"w":{"dtype":"F32","shape":[8],"data_offsets":[0,32]}}'), /tensor "w": data_offsets \[0, 32\] run past the data buffer \(16 bytes\)/],
    [withHeader('{"w":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}}'), /tensor "w": invalid shape/],
    [withHeader('{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}'), /overlaps/],
    [withHeader('{"__metadata__":{"k":1}}'), /"__metadata__" key "k" is a number/],
  ];
  for (const [bytes, re] of cases) {
    assert.throws(() => openSafetensors(bytes, "model.safetensors"), (e: unknown) => e instanceof SafetensorsError && re.test((e as Error).message), String(re));
  }
  const f = openSafetensors(good, "m.safetensors");
  assert.throws(() => f.read("nope"), /m\.safetensors: no tensor named "nope"/);
  assert.throws(() => writeSafetensors(path.join(tmpDir("st-bad"), "x.safetensors"), { w: { dtype: "float32", shape: [3], data: new Float32Array(2) } }), SafetensorsError);
  assert.throws(() => writeSafetensors(path.join(tmpDir("st-bad"), "x.safetensors"), { w: { dtype: "int32", shape: [2], data: new Float32Array(2) } }), /cannot hold dtype int32/);
});

test("safetensors: sharded write + read through model.safetensors.index.json", () => {
  const dir = tmpDir("st-shard");
  const tensors = everyDtype();
  const files = writeShardedSafetensors(dir, tensors, { maxShardBytes: 64, metadata: { format: "pt" } });
  assert.ok(files.length > 2);
  assert.ok(fs.existsSync(path.join(dir, "model.safetensors.index.json")));
  assert.ok(fs.existsSync(path.join(dir, `model-00001-of-${String(files.length - 1).padStart(5, "0")}.safetensors`)));
  const m = openSafetensorsModel(dir);
  assert.ok(m instanceof ShardedSafetensors);
  assert.equal(m.tensors.length, Object.keys(tensors).length);
  for (const [name, t] of Object.entries(tensors)) assert.deepEqual(bytesOf(m.readBytes(name)), bytesOf(t.data), name);
  assert.deepEqual(m.read("i32").data, tensors.i32!.data);
  const idx = JSON.parse(fs.readFileSync(path.join(dir, "model.safetensors.index.json"), "utf8"));
  assert.equal(typeof idx.metadata.total_size, "number");
  m.close();
  // A single shard is written as model.safetensors without an index.
  const one = tmpDir("st-one");
  writeShardedSafetensors(one, { a: tensors.f32! });
  assert.deepEqual(fs.readdirSync(one), ["model.safetensors"]);
  // A hostile shard name in an index is refused.
  fs.writeFileSync(path.join(dir, "evil.index.json"), JSON.stringify({ weight_map: { a: "../../etc/passwd" } }));
  assert.throws(() => new ShardedSafetensors(path.join(dir, "evil.index.json")), /not a plain file name/);
});

test("safetensors: fuzz (byte flips + truncation) gives only named errors", () => {
  const valid = serializeSafetensors(everyDtype(), { format: "pt" });
  const res = fuzz(valid, (b) => {
    const f = openSafetensors(b, "fuzz.safetensors");
    for (const t of f.tensors) f.read(t.name);
  }, (e) => e instanceof SafetensorsError || e instanceof GraftError, { iterations: 400, ms: 2000, headerBytes: valid.length - 64 });
  assert.ok(res.named > 50, JSON.stringify(res));
});
