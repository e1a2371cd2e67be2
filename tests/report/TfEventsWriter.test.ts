/**
 * TensorBoard event files, checked by readers that share no code with the writer: the `tfrecord`
 * package's RecordReader (its own masked CRC-32C on every length and record), a bitwise CRC-32C
 * written here, and a hand-rolled protobuf decoder of the Event message.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { hostname, tmpdir } from "node:os";
import { basename, join } from "node:path";
import { RecordReader } from "tfrecord";
import { TfEventsWriter, crc32c, maskedCrc32c } from "../../src/report/index.ts";

const tmp = mkdtempSync(join(tmpdir(), "graft-tfevents-"));
process.on("exit", () => rmSync(tmp, { recursive: true, force: true }));
let nDir = 0;
const newDir = () => join(tmp, `run${nDir++}`);

/** Bitwise CRC-32C (no table), independent of src/report/crc32c.ts. */
function crc32cBitwise(bytes: Uint8Array): number {
  let crc = ~0;
  for (const b of bytes) {
    crc ^= b;
    for (let k = 0; k < 8; k++) crc = (crc >>> 1) ^ (0x82f63b78 & -(crc & 1));
  }
  return ~crc >>> 0;
}
const mask = (c: number) => ((((c >>> 15) | (c << 17)) >>> 0) + 0xa282ead8) % 2 ** 32;

interface DecodedEvent {
  wallTime?: number;
  step?: bigint;
  fileVersion?: string;
  values: { tag: string; simpleValue?: number }[];
}

/** Decodes protobuf fields: field number → list of raw values (bigint varints, byte slices, numbers). */
function decodeFields(buf: Uint8Array): Map<number, (bigint | Uint8Array | number)[]> {
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const out = new Map<number, (bigint | Uint8Array | number)[]>();
  let i = 0;
  const varint = (): bigint => {
    let v = 0n;
    for (let shift = 0n; ; shift += 7n) {
      const b = buf[i++]!;
      v |= BigInt(b & 0x7f) << shift;
      if (b < 0x80) return v;
    }
  };
  while (i < buf.length) {
    const key = Number(varint());
    const field = key >>> 3;
    const wire = key & 7;
    let value: bigint | Uint8Array | number;
    if (wire === 0) value = varint();
    else if (wire === 1) {
      value = view.getFloat64(i, true);
      i += 8;
    } else if (wire === 2) {
      const n = Number(varint());
      value = buf.subarray(i, i + n);
      i += n;
    } else if (wire === 5) {
      value = view.getFloat32(i, true);
      i += 4;
    } else throw new Error(`unexpected wire type ${wire}`);
    out.set(field, [...(out.get(field) ?? []), value]);
  }
  assert.equal(i, buf.length, "fields end exactly at the message end");
  return out;
}

function decodeEvent(bytes: Uint8Array): DecodedEvent {
  const f = decodeFields(bytes);
  const text = (b: unknown) => new TextDecoder().decode(b as Uint8Array);
  const ev: DecodedEvent = { values: [] };
  if (f.has(1)) ev.wallTime = f.get(1)![0] as number;
  if (f.has(2)) ev.step = BigInt.asIntN(64, f.get(2)![0] as bigint);
  if (f.has(3)) ev.fileVersion = text(f.get(3)![0]);
  for (const summary of f.get(5) ?? []) {
    for (const v of decodeFields(summary as Uint8Array).get(1) ?? []) {
      const vf = decodeFields(v as Uint8Array);
      ev.values.push({ tag: text(vf.get(1)![0]), simpleValue: vf.get(2)?.[0] as number | undefined });
    }
  }
  return ev;
}

/** Reads every record with tfrecord's reader (throws on a bad CRC). */
async function readWithTfrecord(path: string): Promise<Uint8Array[]> {
  const reader = await RecordReader.create(path);
  const records: Uint8Array[] = [];
  try {
    for (let r = await reader.readRecord(); r !== null; r = await reader.readRecord()) records.push(Uint8Array.from(r));
  } finally {
    await reader.close();
  }
  return records;
}

/** Splits the framing by hand and checks both CRCs with the bitwise CRC. */
function readFramed(bytes: Uint8Array): Uint8Array[] {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const out: Uint8Array[] = [];
  let off = 0;
  while (off < bytes.length) {
    const len = Number(view.getBigUint64(off, true));
    assert.equal(view.getUint32(off + 8, true), mask(crc32cBitwise(bytes.subarray(off, off + 8))), "length CRC");
    const data = bytes.subarray(off + 12, off + 12 + len);
    assert.equal(view.getUint32(off + 12 + len, true), mask(crc32cBitwise(data)), "data CRC");
    out.push(Uint8Array.from(data));
    off += 16 + len;
  }
  assert.equal(off, bytes.length);
  return out;
}

test("crc32c matches the standard check values", () => {
  const enc = new TextEncoder();
  assert.equal(crc32c(enc.encode("123456789")), 0xe3069283);
  assert.equal(crc32c(new Uint8Array(0)), 0);
  assert.equal(crc32c(new Uint8Array(32)), 0x8a9136aa); // RFC 3720 B.4
  assert.equal(crc32c(new Uint8Array(32).fill(0xff)), 0x62a8ab43);
  const rnd = Uint8Array.from({ length: 1000 }, (_, i) => (i * 7919 + 13) & 0xff);
  assert.equal(crc32c(rnd), crc32cBitwise(rnd));
  assert.equal(maskedCrc32c(rnd), mask(crc32cBitwise(rnd)));
});

test("event file: name, file_version first, scalars readable by tfrecord and a hand decoder", async () => {
  const dir = newDir();
  const w = new TfEventsWriter(dir);
  const scalars: [string, number, number][] = [
    ["train/loss", 2.3125, 0],
    ["train/loss", 1.75, 1],
    ["train/lr", 3e-4, 1],
    ["eval/困惑度", -0.1, 2 ** 40 + 3],
    ["train/loss", NaN, 7],
  ];
  for (const [tag, value, step] of scalars) w.addScalar(tag, value, step, 1700000000.5 + step);
  w.close();
  w.close();

  const files = readdirSync(dir);
  assert.deepEqual(files, [basename(w.path)]);
  const m = /^events\.out\.tfevents\.(\d{10})\.(.+)$/.exec(files[0]!);
  assert.ok(m, files[0]);
  assert.ok(Math.abs(Number(m[1]) - Date.now() / 1000) < 60);
  assert.equal(m[2], hostname());

  const records = await readWithTfrecord(w.path);
  assert.deepEqual(readFramed(readFileSync(w.path)), records, "hand-split framing agrees with tfrecord");
  assert.equal(records.length, 1 + scalars.length);
  const [head, ...rest] = records.map(decodeEvent);
  assert.equal(head!.fileVersion, "brain.Event:2");
  assert.ok(Math.abs(head!.wallTime! - Date.now() / 1000) < 60);
  assert.deepEqual(head!.values, []);
  rest.forEach((ev, i) => {
    const [tag, value, step] = scalars[i]!;
    assert.equal(ev.step, BigInt(step));
    assert.equal(ev.wallTime, 1700000000.5 + step);
    assert.equal(ev.values.length, 1);
    assert.equal(ev.values[0]!.tag, tag);
    if (Number.isNaN(value)) assert.ok(Number.isNaN(ev.values[0]!.simpleValue));
    else assert.equal(ev.values[0]!.simpleValue, Math.fround(value));
  });
});

test("tfrecord's reader rejects a corrupted record (so the check above means something)", async () => {
  const dir = newDir();
  const w = new TfEventsWriter(dir);
  w.addScalar("loss", 1, 1);
  w.close();
  const bytes = readFileSync(w.path);
  bytes[bytes.length - 6] ^= 0x01;
  const bad = join(dir, "corrupt.tfevents");
  writeFileSync(bad, bytes);
  await assert.rejects(readWithTfrecord(bad), /CRC32C/);
});

test("flush writes buffered events; writers in one directory and second get their own files", async () => {
  const dir = newDir();
  const a = new TfEventsWriter(dir);
  const b = new TfEventsWriter(dir, { filenameSuffix: ".eval" });
  const c = new TfEventsWriter(dir);
  assert.equal(new Set([a.path, b.path, c.path]).size, 3);
  assert.match(basename(b.path), /\.eval$/);
  const size0 = statSync(a.path).size;
  a.addScalar("loss", 0.5, 10);
  a.flush();
  assert.ok(statSync(a.path).size > size0);
  assert.equal((await readWithTfrecord(a.path)).length, 2);
  for (const w of [a, b, c]) w.close();
  assert.deepEqual((await readWithTfrecord(c.path)).map(decodeEvent).map((e) => e.fileVersion), ["brain.Event:2"]);
});

test("bad arguments and use after close throw", () => {
  const w = new TfEventsWriter(newDir());
  assert.throws(() => w.addScalar("", 1, 0), /tag must be a non-empty string/);
  assert.throws(() => w.addScalar("loss", 1, 1.5), /step must be an integer, got 1.5/);
  assert.throws(() => w.addScalar("loss", "1" as unknown as number, 1), /value must be a number, got string/);
  w.close();
  assert.throws(() => w.addScalar("loss", 1, 2), /is closed/);
});
