import { test } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { GraftError } from "../../src/core/errors.ts";
import { TORCH_PICKLE_ALLOWLIST, TorchPickleError, UnsafePickleError, openTensorFile, openTorchFile, unpickleTorch, PickleDict, ZipArchive, BufferSource } from "../../src/formats/index.ts";
import { PickleWriter, stackGlobalPickle, systemPickle, tinyStateDict, torchZip } from "./torchFixture.ts";
import { fuzz, tmpDir } from "./helpers.ts";

const FIXTURES = path.join(import.meta.dirname, "..", "fixtures", "formats");

test("torch .bin: the committed fixture reads (params, strided views, bf16, f16 → f32, int64)", () => {
  const file = path.join(FIXTURES, "tiny_state_dict.bin");
  const { bytes, expected } = tinyStateDict();
  assert.deepEqual(fs.readFileSync(file), Buffer.from(bytes), "fixture is up to date with scripts/makeFormatFixtures.ts");
  const f = openTorchFile(file);
  assert.deepEqual(f.tensors.map((t) => t.name), Object.keys(expected));
  for (const [name, want] of Object.entries(expected)) {
    const r = f.read(name);
    assert.equal(r.dtype, want.dtype, name);
    assert.deepEqual(r.shape, want.shape, name);
    assert.deepEqual([...(r.data as ArrayLike<number | bigint> & Iterable<number | bigint>)], want.values, name);
  }
  assert.ok(f.root instanceof PickleDict);
  const attrs = (f.root as PickleDict).attributes as Map<string, Map<string, Map<string, number>>>;
  assert.equal(attrs.get("_metadata")!.get("")!.get("version"), 1);
  f.close();
  const viaAuto = openTensorFile(file);
  assert.equal(viaAuto.tensors.length, 6);
  viaAuto.close();
});

test("torch .bin: any archive prefix, and deflated pickles, read the same", () => {
  const { expected } = tinyStateDict();
  const w = Float32Array.from([1, 2, 3, 4]);
  const p = new PickleWriter();
  p.op(0x7d).mark(); // plain dict (EMPTY_DICT), not OrderedDict
  p.str("w").global("torch._utils", "_rebuild_tensor_v2").mark();
  p.mark().str("storage").global("torch", "FloatStorage").str("0").str("cpu").int(4).tuple().op(0x51);
  p.int(0).intTuple([2, 2]).intTuple([2, 1]).bool(false).emptyOrderedDict().tuple().reduce().op(0x75);
  const f = openTorchFile(torchZip(p.bytes(), { "0": new Uint8Array(w.buffer) }, "pytorch_model"), "x.bin");
  assert.deepEqual(f.read("w").data, w);
  assert.ok(Object.keys(expected).length > 0);
});

test("torch .bin: os.system pickle is refused by name and never runs", () => {
  const dir = tmpDir("pickle");
  const marker = path.join(dir, "pwned");
  const variants: [string, Uint8Array][] = [
    ["posix.system", systemPickle(`touch ${marker}`)],
    ["os.system", systemPickle(`touch ${marker}`, "os")],
    ["builtins.eval", stackGlobalPickle("builtins", "eval", `require('fs').writeFileSync('${marker}', 'x')`)],
    ["subprocess.Popen", stackGlobalPickle("subprocess", "Popen", `touch ${marker}`)],
    ["torch.storage._load_from_bytes", stackGlobalPickle("torch.storage", "_load_from_bytes", "x")],
    ["builtins.getattr", stackGlobalPickle("builtins", "getattr", "x")],
  ];
  for (const [global, pkl] of variants) {
    assert.throws(() => unpickleTorch(pkl, "evil.pkl"), (e: unknown) => e instanceof UnsafePickleError && e.global === global && /evil\.pkl: refusing to load global/.test((e as Error).message), global);
    assert.throws(() => openTorchFile(torchZip(pkl, {}), "evil.bin"), UnsafePickleError);
  }
  assert.throws(() => unpickleTorch(Uint8Array.from([0x80, 0x02, 0x82, 0x01, 0x2e]), "ext.pkl"), UnsafePickleError); // EXT1
  // The committed fixture (GLOBAL posix system + REDUCE of "touch /tmp/graft-pickle-pwned").
  fs.rmSync("/tmp/graft-pickle-pwned", { force: true });
  assert.throws(() => openTorchFile(path.join(FIXTURES, "malicious.bin")), (e: unknown) => e instanceof UnsafePickleError && e.global === "posix.system");
  assert.equal(fs.existsSync(marker), false, "side effect did not happen");
  assert.equal(fs.existsSync("/tmp/graft-pickle-pwned"), false, "side effect did not happen");
  assert.ok(!TORCH_PICKLE_ALLOWLIST.includes("torch.storage._load_from_bytes"));
});

test("torch .bin: named errors for broken archives and pickles", () => {
  const { bytes } = tinyStateDict();
  const cases: [Uint8Array, RegExp][] = [
    [Uint8Array.from([0x80, 0x02, 0x8a, 0x0a]), /legacy \(pre-1\.6/],
    [new TextEncoder().encode("hello world, not a zip"), /not a torch\.save zip/],
    [bytes.subarray(0, bytes.length - 30), /end-of-central-directory|central directory/],
    [torchZip(new PickleWriter().op(0x42, 0xff, 0xff, 0xff, 0xff).bytes(), {}), /pickle truncated or corrupt/], // BINBYTES with length -1
    [torchZip(Uint8Array.from([0x80, 0x02, 0x4b]), {}), /pickle truncated or corrupt/],
    [torchZip(new PickleWriter().op(0xff).bytes(), {}), /corrupt pickle: Unsupported opcode/],
  ];
  for (const [b, re] of cases) {
    assert.throws(() => openTorchFile(b, "bad.bin"), (e: unknown) => e instanceof TorchPickleError && re.test((e as Error).message), String(re));
  }
  // A tensor that runs past its storage.
  const p = new PickleWriter();
  p.op(0x7d).str("w").global("torch._utils", "_rebuild_tensor_v2").mark();
  p.mark().str("storage").global("torch", "FloatStorage").str("0").str("cpu").int(4).tuple().op(0x51);
  p.int(2).intTuple([4]).intTuple([1]).bool(false).emptyOrderedDict().tuple().reduce().op(0x73);
  assert.throws(() => openTorchFile(torchZip(p.bytes(), { "0": new Uint8Array(16) }), "oob.bin"), /tensor "w": shape \[4\] with stride \[1\] at offset 2 runs past its storage of 4 elements/);
  assert.throws(() => openTorchFile(torchZip(p.bytes(), {}), "missing.bin"), /storage 0 is missing from the archive/);
});

test("torch .bin: fuzz (byte flips + truncation) gives only named errors, never runs anything", () => {
  const { bytes } = tinyStateDict();
  const res = fuzz(bytes, (b) => {
    const f = openTorchFile(b, "fuzz.bin");
    for (const t of f.tensors) f.read(t.name);
  }, (e) => e instanceof TorchPickleError || e instanceof GraftError, { iterations: 400, ms: 2500 });
  assert.ok(res.named > 50, JSON.stringify(res));
  // Fuzz the pickle alone, where every flip lands in opcodes or their arguments.
  const pickle = new ZipArchive(new BufferSource(bytes)).read("archive/data.pkl").slice();
  const res2 = fuzz(pickle, (b) => void unpickleTorch(b, "fuzz.pkl"), (e) => e instanceof TorchPickleError, { iterations: 600, ms: 2000 });
  assert.ok(res2.named > 50, JSON.stringify(res2));
});
