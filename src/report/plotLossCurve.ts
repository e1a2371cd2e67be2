/**
 * Loss curves as SVG or PNG, without a browser: a Vega-Lite line chart compiled to Vega, rendered
 * headless to SVG (`renderer: "none"` + `toSVG()`), and rasterised with resvg.
 *
 *   await writeLossCurve("runs/exp1/loss.png", [
 *     { name: "train", points: trainLoss },           // points: { step, value }[]
 *     { name: "eval", points: evalLoss },
 *   ], { title: "Qwen2.5-0.5B LoRA", yLabel: "loss" });
 *
 * Text needs a font: resvg loads the system fonts and uses DejaVu Sans (Debian's fonts-dejavu-core,
 * which fontconfig depends on) for Vega's "sans-serif". Pass `fontFiles` for other scripts (a CJK
 * font for Chinese titles, say); with no fonts at all the chart is drawn without its text.
 * vega, vega-lite and resvg are loaded on first use, so importing src/report stays cheap.
 */
import { writeFile } from "node:fs/promises";
import { createRequire } from "node:module";
import { extname } from "node:path";
import type { ResvgRenderOptions } from "@resvg/resvg-js";
import type { TopLevelSpec } from "vega-lite";
import { GraftError } from "../core/errors.ts";

export interface LossPoint {
  step: number;
  value: number;
}

export interface LossSeries {
  name: string;
  points: readonly LossPoint[];
}

export interface LossCurveOptions {
  title?: string;
  /** Default "step". */
  xLabel?: string;
  /** Default "loss". */
  yLabel?: string;
  /** Size of the whole image in pixels, axes and legend included (default 800 × 500). */
  width?: number;
  height?: number;
  /** Logarithmic y axis (non-positive values are dropped). */
  logY?: boolean;
}

export interface RenderPngOptions {
  /** Extra font files (TTF/OTF) to load next to the system fonts. */
  fontFiles?: string[];
  /** Pixel density multiplier (default 1: the SVG's own size). */
  scale?: number;
  /** Background colour (default: the chart's own white background). */
  background?: string;
}

export interface LossCurve {
  svg: string;
  /** The Vega-Lite spec the SVG was rendered from. */
  spec: TopLevelSpec;
  width: number;
  height: number;
}

/** Builds the Vega-Lite spec of a loss-curve chart (one coloured line per series). */
export function lossCurveSpec(series: readonly LossSeries[], opts: LossCurveOptions = {}): TopLevelSpec {
  const width = opts.width ?? 800;
  const height = opts.height ?? 500;
  for (const [k, v] of [["width", width], ["height", height]] as const) {
    if (!Number.isInteger(v) || v < 50 || v > 16384) throw new GraftError(`plotLossCurve: ${k} must be an integer in [50, 16384], got ${v}`);
  }
  if (series.length === 0) throw new GraftError("plotLossCurve: needs at least one series");
  const names = series.map((s) => s.name);
  if (new Set(names).size !== names.length) throw new GraftError(`plotLossCurve: series names must be unique, got ${names.join(", ")}`);
  const values: { step: number; value: number; series: string }[] = [];
  for (const s of series) {
    for (const p of s.points) {
      if (!Number.isFinite(p.step) || !Number.isFinite(p.value) || (opts.logY && p.value <= 0)) continue;
      values.push({ step: p.step, value: p.value, series: s.name });
    }
  }
  const spec: TopLevelSpec = {
    $schema: "https://vega.github.io/schema/vega-lite/v6.json",
    width,
    height,
    autosize: { type: "fit", contains: "padding" },
    background: "white",
    padding: 8,
    data: { values },
    mark: { type: "line", strokeWidth: 1.5, interpolate: "linear" },
    encoding: {
      x: { field: "step", type: "quantitative", title: opts.xLabel ?? "step", scale: { nice: false } },
      y: {
        field: "value",
        type: "quantitative",
        title: opts.yLabel ?? "loss",
        scale: opts.logY ? { type: "log" } : { zero: false },
      },
      color: { field: "series", type: "nominal", title: null, scale: { domain: names }, legend: { orient: "top-right" } },
      order: { field: "step", type: "quantitative" },
    },
    config: { font: "sans-serif", axis: { labelFontSize: 11, titleFontSize: 12 }, legend: { labelFontSize: 12 } },
  };
  if (opts.title) spec.title = { text: opts.title, fontSize: 15 };
  return spec;
}

/** Renders a loss-curve chart to SVG. */
export async function plotLossCurve(series: readonly LossSeries[], opts: LossCurveOptions = {}): Promise<LossCurve> {
  const spec = lossCurveSpec(series, opts);
  const [vl, vega] = await Promise.all([import("vega-lite"), import("vega")]);
  const view = new vega.View(vega.parse(vl.compile(spec).spec), { renderer: "none" });
  try {
    const svg = await view.toSVG();
    const size = /<svg[^>]*\swidth="([\d.]+)"[^>]*\sheight="([\d.]+)"/.exec(svg);
    return { svg, spec, width: size ? Number(size[1]) : opts.width ?? 800, height: size ? Number(size[2]) : opts.height ?? 500 };
  } finally {
    view.finalize();
  }
}

let resvg: typeof import("@resvg/resvg-js") | undefined;

/** Rasterises an SVG to PNG bytes with resvg. */
export function renderPng(svg: string, opts: RenderPngOptions = {}): Buffer {
  resvg ??= createRequire(import.meta.url)("@resvg/resvg-js") as typeof import("@resvg/resvg-js");
  const scale = opts.scale ?? 1;
  if (!(scale > 0 && scale <= 16)) throw new GraftError(`renderPng: scale must be in (0, 16], got ${scale}`);
  const options: ResvgRenderOptions = {
    font: {
      loadSystemFonts: true,
      fontFiles: opts.fontFiles ?? [],
      defaultFontFamily: "DejaVu Sans",
      sansSerifFamily: "DejaVu Sans",
      serifFamily: "DejaVu Serif",
      monospaceFamily: "DejaVu Sans Mono",
    },
    fitTo: scale === 1 ? { mode: "original" } : { mode: "zoom", value: scale },
    shapeRendering: 2,
    textRendering: 1,
    logLevel: "off",
  };
  if (opts.background) options.background = opts.background;
  return new resvg.Resvg(svg, options).render().asPng();
}

/** Plots and writes a chart; the format follows the extension (.png or .svg). */
export async function writeLossCurve(path: string, series: readonly LossSeries[], opts: LossCurveOptions & RenderPngOptions = {}): Promise<LossCurve> {
  const ext = extname(path).toLowerCase();
  if (ext !== ".png" && ext !== ".svg") throw new GraftError(`writeLossCurve: ${path}: the file must end in .png or .svg`);
  const curve = await plotLossCurve(series, opts);
  await writeFile(path, ext === ".svg" ? curve.svg : renderPng(curve.svg, opts));
  return curve;
}
