/** Loss-curve plots: SVG content and size, PNG signature and IHDR size, files, argument errors. */
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { lossCurveSpec, plotLossCurve, renderPng, writeLossCurve, type LossSeries } from "../../src/report/index.ts";

const tmp = mkdtempSync(join(tmpdir(), "graft-plot-"));
process.on("exit", () => rmSync(tmp, { recursive: true, force: true }));

function curve(n: number, every: number, offset: number): { step: number; value: number }[] {
  return Array.from({ length: n }, (_, i) => ({ step: i * every, value: 2.5 * Math.exp((-i * every) / 300) + 0.6 + offset + 0.05 * Math.sin(i) }));
}
const series: LossSeries[] = [
  { name: "train", points: curve(120, 5, 0) },
  { name: "eval", points: curve(12, 50, 0.15) },
];

/** Width and height from a PNG's IHDR chunk (after checking the signature). */
function pngSize(png: Uint8Array): { width: number; height: number } {
  assert.deepEqual([...png.subarray(0, 8)], [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a], "PNG signature");
  assert.equal(Buffer.from(png.subarray(12, 16)).toString("latin1"), "IHDR");
  const view = new DataView(png.buffer, png.byteOffset, png.byteLength);
  return { width: view.getUint32(16), height: view.getUint32(20) };
}

test("plotLossCurve: an SVG of the requested size with one line per series, labels and title", async () => {
  const { svg, width, height } = await plotLossCurve(series, { title: "LoRA fine-tune", xLabel: "optimizer step", yLabel: "cross-entropy", width: 640, height: 400 });
  assert.deepEqual([width, height], [640, 400]);
  assert.match(svg, /^<svg[^>]* width="640" height="400"/);
  const lines = [...svg.matchAll(/<path[^>]*aria-roledescription="line mark"[^>]*\sd="(M[^"]+)"/g)];
  assert.equal(lines.length, 2, "two line marks");
  const vertices = lines.map((m) => m[1]!.split(/[ML]/).filter(Boolean).length).sort((a, b) => a - b);
  assert.deepEqual(vertices, [12, 120], "every point is a vertex of its series' path");
  for (const text of ["LoRA fine-tune", "optimizer step", "cross-entropy", "train", "eval"]) {
    assert.ok(svg.includes(`>${text}</text>`), `SVG has the text ${text}`);
  }
});

test("renderPng: PNG with the requested size (and scale), several KB", async () => {
  const { svg } = await plotLossCurve(series, { title: "loss", width: 500, height: 300 });
  const png = renderPng(svg);
  assert.deepEqual(pngSize(png), { width: 500, height: 300 });
  assert.ok(png.length > 5000, `PNG is ${png.length} bytes`);
  assert.deepEqual(pngSize(renderPng(svg, { scale: 2 })), { width: 1000, height: 600 });
  assert.throws(() => renderPng(svg, { scale: 0 }), /scale must be in/);
});

test("writeLossCurve writes .png or .svg by extension", async () => {
  const png = join(tmp, "loss.png");
  const svg = join(tmp, "loss.svg");
  await writeLossCurve(png, series, { width: 800, height: 500 });
  await writeLossCurve(svg, series);
  assert.deepEqual(pngSize(readFileSync(png)), { width: 800, height: 500 });
  assert.match(readFileSync(svg, "utf8"), /^<svg[^>]* width="800" height="500"/);
  await assert.rejects(writeLossCurve(join(tmp, "loss.jpg"), series), /must end in \.png or \.svg/);
});

test("non-finite points are dropped; logY drops non-positive ones; bad arguments throw", () => {
  const spec = lossCurveSpec([{ name: "train", points: [{ step: 0, value: 1 }, { step: 1, value: NaN }, { step: 2, value: 0 }, { step: 3, value: Infinity }] }], { logY: true });
  assert.deepEqual((spec.data as { values: unknown[] }).values, [{ step: 0, value: 1, series: "train" }]);
  assert.throws(() => lossCurveSpec([]), /at least one series/);
  assert.throws(() => lossCurveSpec([series[0]!, series[0]!]), /series names must be unique/);
  assert.throws(() => lossCurveSpec(series, { width: 10 }), /width must be an integer in \[50, 16384\], got 10/);
});
